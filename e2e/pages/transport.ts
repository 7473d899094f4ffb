/**
 * Transport benchmark page (driven by e2e/p2p/bench-transport.ts, `npm run bench:transport`).
 * Two tabs of one browser context open it; they signal over a BroadcastChannel and, between the
 * same two tabs in one run, move the same model bytes two ways:
 *
 * - raw: one RTCDataChannel, the float32 parameters cut into block-sized messages, sent from
 *   the page with the usual bufferedAmount / bufferedamountlow flow control, counted on arrival;
 * - meshgrad: the volunteer page's architecture. A Web Worker (transport-worker.ts, the
 *   training loop's place) reads and encodes each block into a state message (header, CRC; f32,
 *   f16 or int8) and transfers it to the page, which sends it through the volunteer page's own
 *   PeerMesh (simple-peer behind PeerLink, its backlog limits); the receiving page transfers
 *   each message to its Worker, where AsgdWorker.receive checks it (size, header, CRC, finite
 *   values, norm bound) and files it in the mailbox. The clock stops when the last one is filed.
 *
 * Both ways use the same backlog thresholds, so the difference is meshgrad's own cost.
 */
import {
  BACKLOG_HARD_LIMIT_BYTES,
  BACKLOG_LOW_WATER_BYTES,
  blockRange,
  initParameters,
  parameterLayout,
  type Encoding,
  type ParameterLayout,
  type SignalData,
} from '@meshgrad/core';
import { PeerMesh } from '../../apps/client/src/volunteer/peers.ts';
import { simplePeerLinks } from '../../apps/client/src/volunteer/simple-peer-link.ts';
import { expose, log } from './_common.ts';
import type { FromBenchWorker, ToBenchWorker } from './transport-worker.ts';

export type TrialKind = 'raw' | Encoding;

export interface TransportBenchOptions {
  /** Hidden layer sizes of the MNIST MLP whose parameters are moved (784-…-10). */
  readonly hidden: readonly number[];
  readonly blockSize: number;
  /** Copies of the whole model per trial. */
  readonly modelsPerTrial: number;
  /** Timed rounds; each runs every kind once, in turn, so drift hits all kinds alike. */
  readonly rounds: number;
}

export interface TrialResult {
  readonly kind: TrialKind;
  /** -1 for the untimed warm-up round. */
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

type Role = 'a' | 'b';

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

const JOB_ID = 'bench-transport';
/** A trial that takes longer than this fails the run with what each side last saw. */
const TRIAL_TIMEOUT_MS = 120_000;
/** Messages the encoding worker hands over at a time; two batches are kept in flight. */
const ENCODE_BATCH = 16;

/** What this tab is doing, logged by the watchdog while a trial takes long. */
const progress = { phase: 'starting', sent: 0, received: 0 };

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

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `${what} did not finish in ${TRIAL_TIMEOUT_MS} ms: ${JSON.stringify(progress)}`,
            ),
          ),
        TRIAL_TIMEOUT_MS,
      );
    }),
  ]);
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

/** The tab's training-loop stand-in; `requests` answers one request with one reply. */
function startWorker(options: TransportBenchOptions): Worker {
  const worker = new Worker(new URL('./transport-worker.js', location.href), { type: 'module' });
  const init: ToBenchWorker = {
    type: 'init',
    hidden: [...options.hidden],
    blockSize: options.blockSize,
    jobId: JOB_ID,
  };
  worker.postMessage(init);
  return worker;
}

async function run(role: Role, options: TransportBenchOptions): Promise<TransportBenchResult> {
  const other: Role = role === 'a' ? 'b' : 'a';
  const layout = parameterLayout(
    { kind: 'mlp', inputs: 784, hidden: [...options.hidden], classes: 10 },
    options.blockSize,
  );
  const params = initParameters(layout, 1);
  const worker = startWorker(options);
  log(`${role}: ${layout.size} parameters in ${layout.blockCount} blocks`);

  // Both links first, so connecting costs no trial any time.
  let meshReady: () => void = () => undefined;
  const meshOpen = new Promise<void>((r) => (meshReady = r));
  let onMeshMessage: (data: ArrayBuffer) => void = () => undefined;
  let onMeshChange: () => void = () => undefined;
  const mesh = new PeerMesh({
    selfId: role,
    createLink: simplePeerLinks(() => ({})),
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
  mesh.setNeighbours([other]);
  const [dc] = await Promise.all([rawChannel(role), meshOpen]);
  log(`${role}: raw channel and meshgrad link open`);

  const kinds: TrialKind[] = ['raw', 'f32', 'f16', 'int8'];
  const trials: TrialResult[] = [];
  const watchdog = setInterval(() => {
    void mesh
      .report()
      .then((links) =>
        log(
          `${role}: still in ${JSON.stringify(progress)}; mesh ${JSON.stringify(links)}; raw backlog ${dc.bufferedAmount}`,
        ),
      );
  }, 15_000);
  try {
    // Round -1 warms up the JIT, the workers and both SCTP associations; it is not reported.
    for (let round = -1; round < options.rounds; round++) {
      for (const kind of kinds) {
        const messages = options.modelsPerTrial * layout.blockCount;
        const what = `round ${round} ${kind}`;
        Object.assign(progress, { phase: what, sent: 0, received: 0 });
        if (role === 'a') {
          post({ type: 'trial', kind, round, messages });
          await withTimeout(
            next('ready', (m) => m.kind === kind && m.round === round),
            `${what}: ready`,
          );
          const done = next('done', (m) => m.kind === kind && m.round === round);
          const sending =
            kind === 'raw'
              ? sendRaw(dc, layout, params, options.modelsPerTrial)
              : sendMesh(mesh, other, worker, kind, messages, (l) => {
                  onMeshChange = l;
                });
          await withTimeout(sending, `${what}: sending`);
          const d = await withTimeout(done, `${what}: receiving`);
          const result: TrialResult = {
            kind,
            round,
            wireBytes: d.bytes,
            usefulBytes: layout.size * 4 * options.modelsPerTrial,
            messages,
            seconds: d.seconds,
            accepted: d.accepted,
          };
          if (round >= 0) trials.push(result);
          log(
            `round ${round < 0 ? 'warm-up' : round} ${kind.padEnd(4)}: ${(result.usefulBytes / 1e6 / result.seconds).toFixed(1)} MB/s of parameters, ${(result.wireBytes / 1e6 / result.seconds).toFixed(1)} MB/s on the wire`,
          );
        } else {
          const t = await withTimeout(
            next('trial', (m) => m.kind === kind && m.round === round),
            `${what}: start`,
          );
          const counted =
            kind === 'raw'
              ? receiveRaw(dc, t.messages)
              : receiveMesh(worker, t.messages, (handler) => (onMeshMessage = handler));
          post({ type: 'ready', kind, round });
          const r = await withTimeout(counted, `${what}: receiving`);
          post({ type: 'done', kind, round, ...r });
        }
      }
    }
  } finally {
    clearInterval(watchdog);
    mesh.destroy();
    dc.close();
    worker.terminate();
  }
  return { parameters: layout.size, blocks: layout.blockCount, trials };
}

/** Seconds from the first arrival to `end`, scaled to all `bytes` (the first starts the clock). */
function elapsed(first: number, end: number, bytes: number, firstBytes: number): number {
  return ((end - first) / 1000) * (bytes / Math.max(bytes - firstBytes, 1));
}

function receiveRaw(
  dc: RTCDataChannel,
  messages: number,
): Promise<{ seconds: number; bytes: number; accepted: number }> {
  return new Promise((resolve) => {
    let count = 0;
    let bytes = 0;
    let first = 0;
    let firstBytes = 0;
    dc.onmessage = (e: MessageEvent<ArrayBuffer>) => {
      if (count === 0) {
        first = performance.now();
        firstBytes = e.data.byteLength;
      }
      bytes += e.data.byteLength;
      progress.received = ++count;
      if (count === messages) {
        resolve({
          seconds: elapsed(first, performance.now(), bytes, firstBytes),
          bytes,
          accepted: 0,
        });
      }
    };
  });
}

/** As the volunteer page does: each arriving message goes to the worker, transferred. */
function receiveMesh(
  worker: Worker,
  messages: number,
  attach: (handler: (data: ArrayBuffer) => void) => void,
): Promise<{ seconds: number; bytes: number; accepted: number }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let first = 0;
    let firstBytes = 0;
    worker.onmessage = (e: MessageEvent<FromBenchWorker>) => {
      if (e.data.type !== 'received') return;
      const end = performance.now();
      resolve({
        seconds: elapsed(first, end, bytes, firstBytes),
        bytes,
        accepted: e.data.accepted,
      });
    };
    worker.postMessage({ type: 'expect', count: messages } satisfies ToBenchWorker);
    attach((data) => {
      if (progress.received === 0) {
        first = performance.now();
        firstBytes = data.byteLength;
      }
      progress.received++;
      bytes += data.byteLength;
      worker.postMessage({ type: 'receive', data } satisfies ToBenchWorker, [data]);
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
      if (dc.bufferedAmount >= BACKLOG_HARD_LIMIT_BYTES) {
        await new Promise((resolve) =>
          dc.addEventListener('bufferedamountlow', resolve, { once: true }),
        );
      }
      const { start, end } = blockRange(layout, k);
      dc.send(bytes.subarray(start * 4, end * 4));
      progress.sent++;
    }
  }
}

/**
 * Sends `total` state messages the worker encodes, a batch at a time, through the mesh, waiting
 * whenever the link is not ready (its backlog over the hard limit), as the training loop does.
 */
async function sendMesh(
  mesh: PeerMesh,
  peer: string,
  worker: Worker,
  encoding: Encoding,
  total: number,
  onChange: (listener: () => void) => void,
): Promise<void> {
  const queue: ArrayBuffer[] = [];
  let requested = 0;
  let arrived: (() => void) | null = null;
  worker.onmessage = (e: MessageEvent<FromBenchWorker>) => {
    if (e.data.type !== 'encoded') return;
    queue.push(...e.data.messages);
    arrived?.();
  };
  const request = () => {
    const count = Math.min(ENCODE_BATCH, total - requested);
    if (count <= 0) return;
    worker.postMessage({
      type: 'encode',
      encoding,
      from: requested,
      count,
    } satisfies ToBenchWorker);
    requested += count;
  };
  request();
  request();
  for (let sent = 0; sent < total; sent++) {
    while (!mesh.status()[0]?.ready) await new Promise<void>((resolve) => onChange(resolve));
    while (queue.length === 0) await new Promise<void>((resolve) => (arrived = resolve));
    if (!mesh.send(peer, queue.shift()!)) throw new Error('mesh refused a send');
    progress.sent++;
    if (requested - sent - 1 < 2 * ENCODE_BATCH) request();
  }
}

expose({ run });
