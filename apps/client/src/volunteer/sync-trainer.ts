/**
 * Training mode `sync` in the training Web Worker: one SGD step per server round
 * (apps/server/src/jobs/sync-rounds.ts). For each round the worker writes the round's
 * parameters w into its backend, steps once on its next minibatch with the round's learning
 * rate and no peer blocks, and sends back w − η·g; the server's mean of those is the
 * synchronous SGD step. Works with either backend through `writeParameters`, `step` and
 * `readParameters`.
 */
import type { Backend, Batch } from '@meshgrad/core';
import type { FromWorker, WorkerStats } from './messages.ts';

/** How often statistics go to the page (ms), as in the ASGD loop. */
const STATS_INTERVAL_MS = 1_000;

interface Round {
  readonly round: number;
  readonly learningRate: number;
  readonly params: ArrayBuffer;
}

export interface SyncTrainerOptions {
  readonly backend: Backend;
  readonly nextBatch: () => Batch;
  readonly post: (message: FromWorker, transfer?: Transferable[]) => void;
  /** Whether to hold rounds (paused by the volunteer or the host, or past `stopAfter`). */
  readonly halted: () => boolean;
  /** Fraction of the time to compute (the page's duty cycle), in (0, 1]. */
  readonly dutyCycle: () => number;
}

export class SyncTrainer {
  /** Samples stepped since the tab joined. */
  samples = 0;
  /** The last round taken part in. */
  round = 0;
  /** The newest round not yet computed: a newer one replaces it (the older is over). */
  private pending: Round | null = null;
  private busy = false;
  private lossSum = 0;
  private lossCount = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly opts: SyncTrainerOptions) {}

  /** Starts the statistics reports. */
  start(): void {
    let last = performance.now();
    let samplesAtLast = 0;
    this.timer = setInterval(() => {
      const now = performance.now();
      const stats: WorkerStats = {
        samples: this.samples,
        samplesPerSec: ((this.samples - samplesAtLast) * 1000) / (now - last),
        loss: this.lossCount ? this.lossSum / this.lossCount : undefined,
        offered: 0,
        accepted: 0,
        blocksSent: 0,
        blocksReceived: 0,
        rejected: 0,
        overwritten: 0,
        sendsSkipped: 0,
        paused: this.opts.halted(),
        peers: [],
      };
      this.opts.post({ type: 'stats', stats });
      last = now;
      samplesAtLast = this.samples;
      this.lossSum = 0;
      this.lossCount = 0;
    }, STATS_INTERVAL_MS);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * A round's parameters from the server. The newest arrival wins, whatever its number: a
   * restarted server counts rounds from its checkpoint again.
   */
  offer(round: Round): void {
    this.pending = round;
    this.resume();
  }

  /** Computes the held round, if any, once not halted (call after a pause ends). */
  resume(): void {
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.pending && !this.opts.halted()) {
        const r = this.pending;
        this.pending = null;
        const started = performance.now();
        const { backend } = this.opts;
        backend.writeParameters(new Float32Array(r.params));
        const batch = this.opts.nextBatch();
        backend.step(batch, r.learningRate);
        const { losses } = await backend.drainStats();
        const params = await backend.readParameters();
        const last = losses[losses.length - 1];
        const loss = last !== undefined && Number.isFinite(last) ? last : undefined;
        if (loss !== undefined) {
          this.lossSum += loss;
          this.lossCount++;
        }
        this.samples += batch.size;
        this.round = r.round;
        const buffer = (
          params.byteLength === params.buffer.byteLength ? params.buffer : params.slice().buffer
        ) as ArrayBuffer;
        this.opts.post(
          { type: 'syncContribution', round: r.round, samples: batch.size, loss, params: buffer },
          [buffer],
        );
        // The duty cycle, as in the ASGD loop: rest busy·(1−d)/d after `busy` ms of work.
        const d = this.opts.dutyCycle();
        if (d < 1) {
          const busy = performance.now() - started;
          await new Promise((resolve) => setTimeout(resolve, (busy * (1 - d)) / d));
        }
      }
    } finally {
      this.busy = false;
    }
  }
}
