/**
 * Transport benchmark page (driven by e2e/p2p/bench-transport.ts, `npm run bench:transport`).
 * Two tabs of one browser context open it; they signal over a BroadcastChannel and, between the
 * same two tabs in one run, move the same model bytes two ways:
 *
 * - raw: one RTCDataChannel, the float32 parameters cut into block-sized messages, sent with
 *   the usual bufferedAmount / bufferedamountlow flow control;
 * - meshgrad: the volunteer page's own PeerMesh (simple-peer behind PeerLink) carrying state
 *   messages, each block encoded (f32, f16 or int8 with its header and CRC) on the sending side
 *   and checked by AsgdWorker.receive (size, header, CRC, finite values, norm bound, mailbox)
 *   on the receiving side.
 *
 * Both use the same backlog thresholds, so the difference is meshgrad's own cost.
 */
import {
  AsgdWorker,
  BACKLOG_HARD_LIMIT_BYTES,
  BACKLOG_LOW_WATER_BYTES,
  blockRange,
  CpuBackend,
  encodeStateMessage,
  idHash,
  initParameters,
  parameterLayout,
  type Encoding,
  type ParameterLayout,
  type SignalData,
} from '@meshgrad/core';
import { PeerMesh } from '../../apps/client/src/volunteer/peers.ts';
import { expose, log } from './_common.ts';

export type TrialKind = 'raw' | Encoding;

export interface TransportBenchOptions {
  /** Hidden layer sizes of the MNIST MLP whose parameters are moved (784-…-10). */
  readonly hidden: readonly number[];
  readonly blockSize: number;
  /** Copies of the whole model per trial. */
  readonly modelsPerTrial: number;
  /** Rounds; each round runs every kind once, in turn, so drift hits all kinds alike. */
  readonly rounds: number;
}

export interface TrialResult {
  readonly kind: TrialKind;
  readonly round: number;
  /** Bytes on the wire (raw payload, or state messages with headers). */
  readonly wireBytes: number;
  /** The float32 bytes of the parameters those messages carry (P × 4 × models). */
  readonly usefulBytes: number;
  readonly messages: number;
  readonly seconds: number;
  /** Messages the receiving AsgdWorker accepted (meshgrad trials). */
  readonly accepted: number;
}

export interface TransportBenchResult {
  readonly parameters: number;
  readonly blocks: number;
  readonly trials: TrialResult[];
}

type Control =
  | { type: 'raw-signal'; to: Role; data: RTCSessionDescriptionInit | RTCIceCandidateInit }
  | { type: 'mesh-signal'; to: Role; data: SignalData }
  | { type: 'trial'; kind: TrialKind; round: number; messages: number }
  | { type: 'ready'; kind: TrialKind; round: number }
  | {
      type: 'done';
      kind: TrialKind;
      round: number;
      seconds: number;
      bytes: number;
      accepted: number;
    };

type Role = 'a' | 'b';

const JOB_ID = 'bench-transport';
const channel = new BroadcastChannel('meshgrad-bench-transport');
const listeners = new Set<(m: Control) => void>();
channel.onmessage = (e: MessageEvent<Control>) => {
  for (const l of [...listeners]) l(e.data);
};
const post = (m: Control) => channel.postMessage(m);

function next<T extends Control['type']>(
  type: T,
  match: (m: Extract<Control, { type: T }>) => boolean = () => true,
): Promise<Extract<Control, { type: T }>> {
  return new Promise((resolve) => {
    const l = (m: Control) => {
      if (m.type === type && match(m as Extract<Control, { type: T }>)) {
        listeners.delete(l);
        resolve(m as Extract<Control, { type: T }>);
      }
    };
    listeners.add(l);
  });
}

/** A plain RTCPeerConnection with one data channel to the other tab ('a' offers). */
async function rawChannel(role: Role): Promise<RTCDataChannel> {
  const other: Role = role === 'a' ? 'b' : 'a';
  const pc = new RTCPeerConnection();
  pc.onicecandidate = (e) => {
    if (e.candidate) post({ type: 'raw-signal', to: other, data: e.candidate.toJSON() });
  };
  listeners.add((m) => {
    if (m.type !== 'raw-signal' || m.to !== role) return;
    if ('candidate' in m.data) void pc.addIceCandidate(m.data);
    else
      void pc.setRemoteDescription(m.data as RTCSessionDescriptionInit).then(async () => {
        if (role === 'b') {
          await pc.setLocalDescription();
          post({ type: 'raw-signal', to: other, data: pc.localDescription!.toJSON() });
        }
      });
  });
  let dc: RTCDataChannel;
  if (role === 'a') {
    dc = pc.createDataChannel('raw');
    await pc.setLocalDescription();
    post({ type: 'raw-signal', to: other, data: pc.localDescription!.toJSON() });
  } else {
    dc = await new Promise<RTCDataChannel>((resolve) => {
      pc.ondatachannel = (e) => resolve(e.channel);
    });
  }
  dc.binaryType = 'arraybuffer';
  dc.bufferedAmountLowThreshold = BACKLOG_LOW_WATER_BYTES;
  if (dc.readyState !== 'open') {
    await new Promise<void>((resolve) =>
      dc.addEventListener('open', () => resolve(), { once: true }),
    );
  }
  return dc;
}

function drained(dc: RTCDataChannel): Promise<void> {
  return new Promise((resolve) =>
    dc.addEventListener('bufferedamountlow', () => resolve(), { once: true }),
  );
}

async function run(role: Role, options: TransportBenchOptions): Promise<TransportBenchResult> {
  const other: Role = role === 'a' ? 'b' : 'a';
  const layout = parameterLayout(
    { kind: 'mlp', inputs: 784, hidden: [...options.hidden], classes: 10 },
    options.blockSize,
  );
  const params = initParameters(layout, 1);
  log(`${role}: ${layout.size} parameters in ${layout.blockCount} blocks`);

  // Both links first, so connecting costs no trial any time.
  let meshReady: () => void = () => undefined;
  const meshOpen = new Promise<void>((r) => (meshReady = r));
  const receiver = role === 'b' ? receiverWorker(layout, params) : null;
  let onMeshMessage: (data: ArrayBuffer) => void = () => undefined;
  let onMeshChange: () => void = () => undefined;
  const mesh = new PeerMesh({
    selfId: role,
    rtc: () => ({}),
    signal: (_to, data) => post({ type: 'mesh-signal', to: other, data }),
    relay: { available: false, send: () => undefined },
    onMessage: (_from, data) => onMeshMessage(data),
    onChange: () => {
      if (mesh.status()[0]?.ready) meshReady();
      onMeshChange();
    },
  });
  listeners.add((m) => {
    if (m.type === 'mesh-signal' && m.to === role) mesh.handleSignal(other, m.data);
  });
  const [dc] = await Promise.all([rawChannel(role), (mesh.setNeighbours([other]), meshOpen)]);
  log(`${role}: raw channel and meshgrad link open`);

  const kinds: TrialKind[] = ['raw', 'f32', 'f16', 'int8'];
  const trials: TrialResult[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const kind of kinds) {
      const messages = options.modelsPerTrial * layout.blockCount;
      if (role === 'a') {
        post({ type: 'trial', kind, round, messages });
        await next('ready', (m) => m.kind === kind && m.round === round);
        const done = next('done', (m) => m.kind === kind && m.round === round);
        if (kind === 'raw') await sendRaw(dc, layout, params, options.modelsPerTrial);
        else {
          await sendMesh(mesh, other, layout, params, kind, options.modelsPerTrial, (l) => {
            onMeshChange = l;
          });
        }
        const d = await done;
        const result: TrialResult = {
          kind,
          round,
          wireBytes: d.bytes,
          usefulBytes: layout.size * 4 * options.modelsPerTrial,
          messages,
          seconds: d.seconds,
          accepted: d.accepted,
        };
        trials.push(result);
        log(
          `round ${round} ${kind.padEnd(4)}: ${(result.usefulBytes / 1e6 / result.seconds).toFixed(1)} MB/s of parameters, ${(result.wireBytes / 1e6 / result.seconds).toFixed(1)} MB/s on the wire`,
        );
      } else {
        const t = await next('trial', (m) => m.kind === kind && m.round === round);
        const counted = receive(t.messages, kind === 'raw' ? null : receiver!, (handler) => {
          if (kind === 'raw') dc.onmessage = (e: MessageEvent<ArrayBuffer>) => handler(e.data);
          else onMeshMessage = handler;
        });
        post({ type: 'ready', kind, round });
        const r = await counted;
        post({ type: 'done', kind, round, ...r });
      }
    }
  }
  mesh.destroy();
  dc.close();
  return { parameters: layout.size, blocks: layout.blockCount, trials };
}

/** The receiving side of meshgrad trials: a real AsgdWorker's checks and mailbox. */
function receiverWorker(layout: ParameterLayout, params: Float32Array): AsgdWorker {
  return new AsgdWorker({
    backend: new CpuBackend(layout, params),
    nextBatch: () => {
      throw new Error('the benchmark never steps');
    },
    sink: { send: () => false },
    jobId: JOB_ID,
    workerId: 'b',
    learningRate: 0.1,
    settings: { communicationPeriod: 1, blocksPerMessage: 1, encoding: 'f32' },
    initialParams: params,
  });
}

/**
 * Counts `messages` arrivals; the clock runs from the first to the last, so connection
 * start-up and the control round trip are not part of either kind's time.
 */
function receive(
  messages: number,
  worker: AsgdWorker | null,
  attach: (handler: (data: ArrayBuffer) => void) => void,
): Promise<{ seconds: number; bytes: number; accepted: number }> {
  return new Promise((resolve) => {
    let count = 0;
    let bytes = 0;
    let accepted = 0;
    let first = 0;
    let firstBytes = 0;
    attach((data) => {
      if (count === 0) {
        first = performance.now();
        firstBytes = data.byteLength;
      }
      count++;
      bytes += data.byteLength;
      if (worker && worker.receive('a', data)) accepted++;
      if (count === messages) {
        worker?.mailbox.drain();
        const seconds = (performance.now() - first) / 1000;
        // Rate over the messages after the first (its arrival starts the clock).
        const scale = bytes / Math.max(bytes - firstBytes, 1);
        resolve({ seconds: seconds * scale, bytes, accepted });
      }
    });
  });
}

async function sendRaw(
  dc: RTCDataChannel,
  layout: ParameterLayout,
  params: Float32Array,
  models: number,
): Promise<void> {
  const bytes = new Uint8Array(params.buffer as ArrayBuffer, params.byteOffset, params.byteLength);
  for (let m = 0; m < models; m++) {
    for (let k = 0; k < layout.blockCount; k++) {
      if (dc.bufferedAmount >= BACKLOG_HARD_LIMIT_BYTES) await drained(dc);
      const { start, end } = blockRange(layout, k);
      dc.send(bytes.subarray(start * 4, end * 4));
    }
  }
}

async function sendMesh(
  mesh: PeerMesh,
  peer: string,
  layout: ParameterLayout,
  params: Float32Array,
  encoding: Encoding,
  models: number,
  onChange: (listener: () => void) => void,
): Promise<void> {
  let seq = 0;
  for (let m = 0; m < models; m++) {
    for (let k = 0; k < layout.blockCount; k++) {
      // What the training loop does: read the block, encode it, hand it to the page's mesh.
      while (!mesh.status()[0]?.ready) {
        await new Promise<void>((resolve) => onChange(resolve));
      }
      const { start, end } = blockRange(layout, k);
      const message = encodeStateMessage({
        job: idHash(JOB_ID),
        sender: idHash('a'),
        seq: seq++,
        block: k,
        encoding,
        samples: 0,
        values: params.subarray(start, end),
      });
      if (!mesh.send(peer, message.buffer as ArrayBuffer)) throw new Error('mesh refused a send');
    }
  }
}

expose({ run });
