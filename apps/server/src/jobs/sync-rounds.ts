/**
 * Synchronous parameter-server SGD for a job in training mode `sync`: the baseline that ASGD
 * (DESIGN §3) is measured against, with the semantics of the simulator's `runSync`
 * (packages/core/src/sim/sync-run.ts).
 *
 * Each round the server sends its parameters w to every live worker (`syncRound`); each worker
 * takes one SGD step on its next minibatch and sends back its parameters w − η·g_i
 * (`syncContribution`); once every worker of the round has answered, the server's parameters
 * become their mean, w − η·mean(g_i), and the next round begins. A round therefore waits for
 * its slowest worker. A worker that leaves (disconnects, pauses, goes stale) leaves the round;
 * one that joins mid-round waits for the next; one that is still silent `roundTimeoutMs` after
 * the round began is dropped from that round with a warning, so a stuck tab cannot hold the
 * barrier forever.
 *
 * The coordinator owns the job's model in this mode: checkpoints are its parameters.
 */
import type { ProtocolErrorCode, SyncRoundMessage } from '@meshgrad/core';
import type { Logger } from '../logger.ts';

/** Default time a round waits for a silent worker before leaving it out (ms). */
export const DEFAULT_ROUND_TIMEOUT_MS = 30_000;

/** A contribution as the socket layer validated it (shape, size), not yet checked against the round. */
export interface SyncContributionIn {
  readonly round: number;
  readonly samples: number;
  readonly loss?: number | undefined;
  /** float32 little-endian parameters after the worker's step. */
  readonly params: Uint8Array;
}

export interface SyncRefusal {
  readonly code: ProtocolErrorCode;
  readonly message: string;
}

/** What one finished round did; `contributors` 0 when everyone left or timed out. */
export interface RoundResult {
  readonly round: number;
  readonly contributors: number;
  /** Workers dropped from it by the timeout. */
  readonly timedOut: number;
  readonly samples: number;
  /** Mean minibatch loss of the contributions; absent when none reported one. */
  readonly loss?: number;
}

export interface SyncRoundsOptions {
  readonly jobId: string;
  /** Parameters to start from (copied): the latest checkpoint or the seeded initial ones. */
  readonly params: Float32Array;
  /** Round number to continue from (0 for a new job). */
  readonly round?: number;
  /** See `DEFAULT_ROUND_TIMEOUT_MS`. */
  readonly roundTimeoutMs?: number;
  /** Workers that take part in a round starting now (live and not paused). */
  readonly participants: () => Iterable<string>;
  /** Whether rounds may run (the job is `running`); a paused job finishes no timeout. */
  readonly running: () => boolean;
  readonly learningRate: () => number;
  readonly send: (workerId: string, message: SyncRoundMessage) => void;
  readonly onRound?: (result: RoundResult) => void;
  readonly log: Logger;
  readonly now?: () => number;
}

export class SyncRounds {
  private weights: Float32Array;
  /** The round in progress, or the last one when none is open. */
  round: number;
  private open = false;
  /** Workers the open round still waits for. */
  private readonly waiting = new Set<string>();
  /** Workers whose contribution the open round holds. */
  private readonly contributed = new Set<string>();
  private readonly sum: Float64Array;
  private samples = 0;
  private lossSum = 0;
  private lossCount = 0;
  private timedOut = 0;
  private startedAt = 0;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: SyncRoundsOptions) {
    this.weights = Float32Array.from(opts.params);
    this.sum = new Float64Array(opts.params.length);
    this.round = opts.round ?? 0;
    this.timeoutMs = opts.roundTimeoutMs ?? DEFAULT_ROUND_TIMEOUT_MS;
    this.now = opts.now ?? Date.now;
  }

  /** The server's parameters: the model after the last finished round. Do not modify. */
  get params(): Float32Array {
    return this.weights;
  }

  /** Whether a round is in progress. */
  get inProgress(): boolean {
    return this.open;
  }

  /** Workers the open round still waits for. */
  pending(): string[] {
    return [...this.waiting];
  }

  /** Starts a round when none is in progress and the job runs (a worker joined, the job resumed). */
  kick(): void {
    this.advance();
  }

  /** A worker left the job or paused: the open round no longer waits for it. */
  leave(workerId: string): void {
    if (this.waiting.delete(workerId)) this.advance();
  }

  /**
   * Takes a worker's contribution to the open round. Refused, and not applied, when it is not
   * for the open round, comes from a worker the round does not wait for, or is not P finite
   * float32 values. Returns null when counted.
   */
  contribute(workerId: string, c: SyncContributionIn): SyncRefusal | null {
    const size = this.weights.length;
    if (!this.open || c.round !== this.round) {
      return {
        code: 'ERR_UNEXPECTED',
        message: `round: ${c.round} is not the round in progress (${this.open ? this.round : 'none'})`,
      };
    }
    if (this.contributed.has(workerId)) {
      return {
        code: 'ERR_UNEXPECTED',
        message: `round: this worker already contributed to round ${c.round}`,
      };
    }
    if (!this.waiting.has(workerId)) {
      return {
        code: 'ERR_UNEXPECTED',
        message: `round: round ${c.round} does not wait for this worker (it joined later or timed out)`,
      };
    }
    if (c.params.byteLength !== size * 4) {
      return {
        code: 'ERR_INVALID_PAYLOAD',
        message: `params: must be ${size} float32 values (${size * 4} bytes), got ${c.params.byteLength} bytes`,
      };
    }
    // Bytes from the socket need not be 4-byte aligned: copy them into a fresh vector.
    const values = new Float32Array(size);
    new Uint8Array(values.buffer).set(c.params);
    for (let i = 0; i < size; i++) {
      if (!Number.isFinite(values[i])) {
        return { code: 'ERR_INVALID_PAYLOAD', message: `params: value ${i} is not finite` };
      }
    }
    for (let i = 0; i < size; i++) this.sum[i]! += values[i]!;
    this.waiting.delete(workerId);
    this.contributed.add(workerId);
    this.samples += c.samples;
    if (c.loss !== undefined) {
      this.lossSum += c.loss;
      this.lossCount++;
    }
    this.advance();
    return null;
  }

  /** Periodic check: drops workers silent past the round timeout, then moves on. */
  tick(): void {
    const now = this.now();
    if (!this.open) {
      this.advance();
      return;
    }
    // While the job is paused its workers hold their rounds: the clock does not run.
    if (!this.opts.running()) {
      this.startedAt = now;
      return;
    }
    if (now - this.startedAt < this.timeoutMs || this.waiting.size === 0) return;
    this.opts.log.warn(
      { round: this.round, workers: [...this.waiting], timeoutMs: this.timeoutMs },
      'sync round timed out; left out the workers that did not contribute',
    );
    this.timedOut += this.waiting.size;
    this.waiting.clear();
    this.advance();
  }

  /** Finishes the open round once it waits for no one, then starts the next if it can. */
  private advance(): void {
    if (this.open && this.waiting.size === 0) this.finish();
    if (!this.open && this.opts.running()) this.start();
  }

  private finish(): void {
    const n = this.contributed.size;
    if (n > 0) {
      // The mean of w − η·g_i is w − η·mean(g_i): the synchronous SGD step.
      const next = new Float32Array(this.weights.length);
      for (let i = 0; i < next.length; i++) next[i] = this.sum[i]! / n;
      this.weights = next;
    }
    this.open = false;
    this.opts.onRound?.({
      round: this.round,
      contributors: n,
      timedOut: this.timedOut,
      samples: this.samples,
      ...(this.lossCount > 0 ? { loss: this.lossSum / this.lossCount } : {}),
    });
  }

  private start(): void {
    const members = [...new Set(this.opts.participants())];
    if (members.length === 0) return;
    this.round++;
    this.open = true;
    this.startedAt = this.now();
    this.sum.fill(0);
    this.samples = 0;
    this.lossSum = 0;
    this.lossCount = 0;
    this.timedOut = 0;
    this.contributed.clear();
    this.waiting.clear();
    for (const id of members) this.waiting.add(id);
    // One snapshot for everyone: `weights` is replaced, never written, when the round ends.
    const message: SyncRoundMessage = {
      jobId: this.opts.jobId,
      round: this.round,
      learningRate: this.opts.learningRate(),
      params: new Uint8Array(this.weights.buffer, this.weights.byteOffset, this.weights.byteLength),
    };
    for (const id of members) this.opts.send(id, message);
  }
}
