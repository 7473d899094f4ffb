import { blockRange, type ParameterLayout } from '../model/spec.ts';
import type { Backend } from '../model/backend.ts';
import type { Batch } from '../data/dataset.ts';
import { encodedNorm, type EncodedBlock } from '../codec/encoded-block.ts';
import {
  decodeStateMessage,
  encodeEncodedStateMessage,
  idHash,
  MessageError,
  type MessageErrorCode,
} from '../codec/message.ts';
import type { BlockRead } from '../model/backend.ts';
import type { WorkerSettings } from '../protocol/events.ts';
import { Rng } from '../util/rng.ts';
import { fitEncoding } from '../transport/fit.ts';
import { decodeFloat16, decodeInt8 } from '../codec/encoding.ts';
import { Mailbox } from './mailbox.ts';
import {
  BlockGuard,
  blockDistance,
  clipToward,
  DEFAULT_GUARD,
  DROP,
  type GuardMode,
} from './robust.ts';

/**
 * A received block whose norm exceeds this multiple of the local block's norm (or of
 * `NORM_FLOOR`) is rejected: a peer sending blocks scaled by 1e6 must not reach the merge.
 */
export const NORM_BOUND_FACTOR = 10;
export const NORM_FLOOR = 1;
/**
 * Sends whose blocks are still on their way back from the device. A step waits for the oldest
 * only beyond this many, so the device always has the next step queued while a readback maps,
 * and a slow device cannot pile up readbacks without bound.
 */
export const SENDS_IN_FLIGHT = 2;

/**
 * Why `AsgdWorker.receive` dropped a message, as counted in `rejectedByCode`: a decoding
 * failure, or a header or block that does not fit this job, this link or this model.
 */
export type ReceiveRejectCode =
  | MessageErrorCode
  | 'ERR_MESSAGE_DECODE'
  | 'ERR_WRONG_JOB'
  | 'ERR_WRONG_SENDER'
  | 'ERR_BLOCK_INDEX'
  | 'ERR_BLOCK_LENGTH'
  | 'ERR_NORM_BOUND'
  /** The guard dropped it: too far from the local block (asgd/robust.ts). */
  | 'ERR_BLOCK_FAR'
  /** The guard holds its sender in quarantine. */
  | 'ERR_PEER_QUARANTINED';

/** Where outgoing state messages go. */
export interface BlockSink {
  /** Queues one message for `peer`; returns false when it was skipped (backlog, link down). */
  send(peer: string, message: Uint8Array): boolean;
  /**
   * Whether `peer` takes messages now (its link is open and its backlog under the hard limit).
   * Asked before any block is read, so a skipped send costs no device readback. Default: yes.
   */
  ready?(peer: string): boolean;
  /**
   * Largest message the link to `peer` carries (the negotiated RTCSctpTransport
   * maxMessageSize); blocks that do not fit go in a less precise encoding that does, or are
   * skipped. Default: the codec's MAX_MESSAGE_BYTES.
   */
  maxMessageBytes?(peer: string): number;
}

/** Per-peer counters since the worker started; all monotonic. */
export interface PeerCounters {
  blocksSent: number;
  /** Blocks that passed the checks and went to the mailbox. */
  blocksReceived: number;
  /** Messages from this peer that failed decoding or checks. */
  rejected: number;
  /** Blocks meant for this peer that were not sent (link not ready, block too big for it). */
  sendsSkipped: number;
}

export interface AsgdWorkerOptions {
  readonly backend: Backend;
  /** Produces the next minibatch (e.g. a `Batcher` over this worker's shard). */
  readonly nextBatch: () => Batch;
  readonly sink: BlockSink;
  readonly jobId: string;
  readonly workerId: string;
  readonly learningRate: number;
  readonly settings: WorkerSettings;
  readonly neighbours?: readonly string[];
  /** Parameters the backend starts from, to know each block's norm before the first send. */
  readonly initialParams: Float32Array;
  /** Seeds the choice of neighbour per send; default 1. */
  readonly seed?: number;
  /** The receive-path guard (asgd/robust.ts); default `DEFAULT_GUARD`. */
  readonly guard?: GuardMode;
}

/** Counters since the worker started; all monotonic. */
export interface AsgdCounters {
  steps: number;
  samples: number;
  blocksSent: number;
  sendsSkipped: number;
  blocksReceived: number;
  /** Received messages that failed decoding or checks, by reason. */
  rejected: number;
  rejectedByCode: Partial<Record<ReceiveRejectCode, number>>;
  offered: number;
  accepted: number;
  /** Received blocks the guard pulled onto its radius before the mailbox. */
  clipped: number;
  /**
   * Received blocks the guard held back while it learned their index's spread (its first
   * `SPREAD_WARMUP` per index): neither merged nor rejected, since nothing was judged.
   */
  warmup: number;
}

/**
 * The ASGD loop of one worker (DESIGN §3): step on a minibatch merging whatever waits in the
 * mailboxes, and every b samples send m blocks to one neighbour chosen at random, a cursor
 * rotating through the blocks. Host-agnostic: the caller decides when to call `step()` (a Web
 * Worker loop, a test, the simulator), so there are no timers here.
 */
export class AsgdWorker {
  readonly layout: ParameterLayout;
  readonly mailbox = new Mailbox();
  readonly counters: AsgdCounters = {
    steps: 0,
    samples: 0,
    blocksSent: 0,
    sendsSkipped: 0,
    blocksReceived: 0,
    rejected: 0,
    rejectedByCode: {},
    offered: 0,
    accepted: 0,
    clipped: 0,
    warmup: 0,
  };
  /** The same counters per peer (overwrites are in `mailbox.overwrittenByPeer`). */
  readonly peerCounters = new Map<string, PeerCounters>();
  learningRate: number;
  settings: WorkerSettings;
  neighbours: string[];
  /** Losses of recent steps, drained by `drainLosses()`. */
  private losses: number[] = [];
  private readonly blockNorms: Float64Array;
  /**
   * The local parameters as this worker last read them (each block at its last send, the
   * initial parameters before): the centre the guard judges peer blocks around. The device
   * holds the live state; a copy a few steps old costs no readback and moves as slowly as the
   * blocks it is compared with.
   */
  private readonly reference: Float32Array;
  /** Judges received blocks by their distance to `reference` (docs/design.md §8). */
  readonly guard: BlockGuard<string>;
  private cursor = 0;
  private sinceSend = 0;
  private seq = 0;
  private readonly rng: Rng;
  private readonly jobHash: number;
  private readonly selfHash: number;
  /** Sends started and not yet delivered, oldest first. */
  private inFlight: Promise<void>[] = [];
  /** A readback failure of a send, rethrown by the next `step` or `flush`. */
  private sendError: Error | null = null;

  constructor(private readonly opts: AsgdWorkerOptions) {
    this.layout = opts.backend.layout;
    this.learningRate = opts.learningRate;
    this.settings = opts.settings;
    this.neighbours = [...(opts.neighbours ?? [])];
    this.rng = new Rng(opts.seed ?? 1);
    this.jobHash = idHash(opts.jobId);
    this.selfHash = idHash(opts.workerId);
    this.blockNorms = new Float64Array(this.layout.blockCount);
    this.reference = Float32Array.from(opts.initialParams);
    this.guard = new BlockGuard(opts.guard ?? DEFAULT_GUARD, this.layout.blockCount);
    for (let k = 0; k < this.layout.blockCount; k++) {
      const { start, end } = blockRange(this.layout, k);
      this.blockNorms[k] = norm(opts.initialParams.subarray(start, end));
    }
  }

  /**
   * Takes a state message from `peer`, the identity of the link it arrived on (the data
   * channel's peer, or the id the server stamped on a relayed message), never a field of the
   * message. Bad messages are counted and dropped, never thrown: this runs on the receive path
   * of a data channel. A header naming another sender (a replay of someone else's block, or a
   * forged identity) or another job is dropped before its values are looked at
   * (docs/design.md §8).
   */
  receive(peer: string, bytes: Uint8Array | ArrayBuffer): boolean {
    const perPeer = this.peer(peer);
    let reason: ReceiveRejectCode;
    try {
      const m = decodeStateMessage(bytes);
      if (m.job !== this.jobHash) reason = 'ERR_WRONG_JOB';
      else if (m.sender !== idHash(peer)) reason = 'ERR_WRONG_SENDER';
      else if (m.block >= this.layout.blockCount) reason = 'ERR_BLOCK_INDEX';
      else {
        const { start, end } = blockRange(this.layout, m.block);
        if (m.values.length !== end - start) reason = 'ERR_BLOCK_LENGTH';
        else if (
          (m.norm ?? norm(m.values)) >
          NORM_BOUND_FACTOR * Math.max(this.blockNorms[m.block] ?? 0, NORM_FLOOR)
        ) {
          reason = 'ERR_NORM_BOUND';
        } else {
          const local = this.reference.subarray(start, end);
          // With the guard off nothing is judged: no pass over the block to measure it.
          const distance = this.guard.mode === 'off' ? 0 : blockDistance(local, m.values);
          const warming =
            this.guard.radius(m.block) === Infinity &&
            Number.isFinite(distance) &&
            !this.guard.quarantined(peer);
          const verdict = this.guard.judge(peer, m.block, distance, this.blockNorms[m.block]);
          if (verdict === DROP) {
            if (warming) {
              this.counters.warmup++;
              return false;
            }
            reason = this.guard.quarantined(peer) ? 'ERR_PEER_QUARANTINED' : 'ERR_BLOCK_FAR';
            return this.reject(perPeer, reason);
          }
          if (verdict < 1) {
            clipToward(local, m.values, verdict);
            this.counters.clipped++;
          }
          this.mailbox.put(peer, m.block, m.values);
          this.counters.blocksReceived++;
          perPeer.blocksReceived++;
          return true;
        }
      }
    } catch (err) {
      reason = err instanceof MessageError ? err.code : 'ERR_MESSAGE_DECODE';
    }
    return this.reject(perPeer, reason);
  }

  private reject(perPeer: PeerCounters, reason: ReceiveRejectCode): false {
    this.counters.rejected++;
    perPeer.rejected++;
    this.counters.rejectedByCode[reason] = (this.counters.rejectedByCode[reason] ?? 0) + 1;
    return false;
  }

  /** The counters of `peer`, created on first use. */
  peer(peer: string): PeerCounters {
    let c = this.peerCounters.get(peer);
    if (!c) {
      c = { blocksSent: 0, blocksReceived: 0, rejected: 0, sendsSkipped: 0 };
      this.peerCounters.set(peer, c);
    }
    return c;
  }

  /**
   * One training step. When a send is due after it, its blocks are read with the step (one
   * readback, not awaited) and go out once they are back, a step or so later; `flush()` waits
   * for every send started so far.
   */
  async step(): Promise<void> {
    const batch = this.opts.nextBatch();
    const received = this.mailbox.drain();
    const sendDue = this.sinceSend + batch.size >= this.settings.communicationPeriod;
    if (this.inFlight.length >= SENDS_IN_FLIGHT) await this.inFlight.shift();
    // Reads before the step: they land in its command buffer and see its result.
    const send = sendDue ? this.startSend(this.counters.samples + batch.size) : null;
    this.opts.backend.step(batch, this.learningRate, received);
    this.guard.tick();
    this.counters.steps++;
    this.counters.samples += batch.size;
    this.sinceSend = sendDue ? 0 : this.sinceSend + batch.size;
    if (send) this.inFlight.push(send);
    this.throwSendError();
  }

  /** Waits until every send started so far went out (or failed); rethrows a device failure. */
  async flush(): Promise<void> {
    const pending = this.inFlight;
    this.inFlight = [];
    await Promise.all(pending);
    this.throwSendError();
  }

  private throwSendError(): void {
    const err = this.sendError;
    if (err !== null) {
      this.sendError = null;
      throw err;
    }
  }

  /**
   * Starts a send of m blocks to one random neighbour, returning when its messages went out. A
   * neighbour that is not ready gets nothing and the m blocks count as skipped at once (the
   * local safety valve, DESIGN §3); so does a block that fits no encoding under the link's
   * maximum message size, one that diverged (NaN or ±Infinity), or one the sink refuses.
   * `samples` is the count the messages report: the one after this step.
   */
  private startSend(samples: number): Promise<void> | null {
    if (this.neighbours.length === 0) return null;
    const peer = this.neighbours[this.rng.int(this.neighbours.length)] as string;
    const perPeer = this.peer(peer);
    const m = Math.min(this.settings.blocksPerMessage, this.layout.blockCount);
    const sink = this.opts.sink;
    if (sink.ready && !sink.ready(peer)) {
      this.counters.sendsSkipped += m;
      perPeer.sendsSkipped += m;
      return null;
    }
    const maxBytes = sink.maxMessageBytes?.(peer) ?? Infinity;
    const reads: BlockRead[] = [];
    let unfit = 0;
    for (let i = 0; i < m; i++) {
      const k = this.cursor;
      this.cursor = (this.cursor + 1) % this.layout.blockCount;
      const { start, end } = blockRange(this.layout, k);
      const encoding = fitEncoding(end - start, this.settings.encoding, maxBytes);
      if (encoding === null) unfit++;
      else reads.push({ block: k, encoding });
    }
    this.counters.sendsSkipped += unfit;
    perPeer.sendsSkipped += unfit;
    if (reads.length === 0) return null;
    return this.opts.backend.readBlocksAfterStep(reads).then(
      (blocks) => this.deliver(peer, reads, blocks, samples),
      (err: unknown) => {
        this.sendError ??= err instanceof Error ? err : new Error(String(err));
      },
    );
  }

  /** Sends the blocks that came back; counts each as sent or skipped. */
  private deliver(
    peer: string,
    reads: readonly BlockRead[],
    blocks: readonly (EncodedBlock | null)[],
    samples: number,
  ): void {
    const perPeer = this.peer(peer);
    reads.forEach(({ block: k }, i) => {
      const encoded = blocks[i] ?? null;
      let sent = false;
      if (encoded !== null) {
        const blockNorm = encodedNorm(encoded);
        this.blockNorms[k] = blockNorm;
        if (Number.isFinite(blockNorm)) this.updateReference(k, encoded);
        // A diverged block is not sent: receivers would reject it anyway.
        if (Number.isFinite(blockNorm)) {
          const header = { job: this.jobHash, sender: this.selfHash, seq: this.seq++, block: k };
          sent = this.opts.sink.send(
            peer,
            encodeEncodedStateMessage({ ...header, samples }, encoded),
          );
        }
      }
      if (sent) {
        this.counters.blocksSent++;
        perPeer.blocksSent++;
      } else {
        this.counters.sendsSkipped++;
        perPeer.sendsSkipped++;
      }
    });
  }

  /** Block `k` of the reference becomes the block as it was just read (and sent). */
  private updateReference(k: number, encoded: EncodedBlock): void {
    const { start, end } = blockRange(this.layout, k);
    const out = this.reference.subarray(start, end);
    if (encoded.encoding === 'f32') out.set(encoded.values);
    else if (encoded.encoding === 'f16') decodeFloat16(encoded.values, out);
    else decodeInt8(encoded.values, encoded.scale, out);
  }

  /** A copy of the current parameters (for a state upload). */
  readParameters(): Promise<Float32Array> {
    return this.opts.backend.readParameters();
  }

  /** Waits for queued device work and returns the mean loss of the steps since last call. */
  async drainStats(): Promise<{ loss: number | undefined; steps: number }> {
    const s = await this.opts.backend.drainStats();
    this.counters.offered += s.offered;
    this.counters.accepted += s.accepted;
    this.losses.push(...s.losses);
    const losses = this.losses;
    this.losses = [];
    const finite = losses.filter(Number.isFinite);
    return {
      loss: finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : undefined,
      steps: losses.length,
    };
  }
}

function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}
