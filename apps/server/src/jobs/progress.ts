/**
 * A job's progress: the samples its workers processed, the credit behind them, and the metrics
 * history. Progress is persisted so it never goes backwards across restarts (DESIGN §5).
 */
import { MAX_RECORDED_WORKERS, type Stats } from '@meshgrad/core';
import type { Logger } from '../logger.ts';
import type { ServerMetrics } from '../metrics.ts';
import type { CheckpointManifest, DataStore, JobProgress, MetricsRecord } from '../store.ts';
import type { ClusterLink } from './cluster-link.ts';
import { InOrder } from './in-order.ts';
import type { Roster, WorkerEntry } from './roster.ts';
import type { JobWorkMeter } from './work-meter.ts';

/** How often the job writes a metrics-history record (ms). */
export const METRICS_RECORD_INTERVAL_MS = 5_000;

/**
 * The most samples per second the job credits one worker. A tab reports its own count, which
 * the server cannot check; what it can measure is the time between reports. A bound far above
 * any real volunteer (a browser tab trains these models at thousands to tens of thousands of
 * samples/s) keeps honest workers whole and turns a forged count of 2^53 − 1 into a few
 * seconds' worth of credit.
 */
export const MAX_SAMPLES_PER_SEC = 1_000_000;
/**
 * Seconds of `MAX_SAMPLES_PER_SEC` a worker may bank: a report that comes late (stats share the
 * worker's uplink) is still credited in full, but silence does not save up credit for a burst.
 */
export const CREDIT_BURST_SEC = 5;
/**
 * Credit counters kept for workers that left, so a reconnecting tab is not credited twice; the
 * oldest are forgotten beyond this, so ids that come and go cannot grow the job's state.
 */
export const MAX_DEPARTED_CREDITS = 1_024;

/** The most a worker can be credited `elapsedMs` after it joined (see `MAX_SAMPLES_PER_SEC`). */
export function maxCredit(elapsedMs: number): number {
  return Math.min(Math.max(elapsedMs, 0) / 1000 + 1, CREDIT_BURST_SEC) * MAX_SAMPLES_PER_SEC;
}

/** The parts of `JobProgress` other rooms of the job own (control state, balancer mode, bans). */
export type ProgressControl = Omit<JobProgress, 'samples' | 'credited'>;

export class Progress {
  private samplesSoFar = 0;
  /** Per-worker cumulative counters already credited (see `credit`). */
  private credited = new Map<string, number>();
  /**
   * The ids of `credited` that are not connected here, in the order they left: a departure
   * forgets the oldest beyond `MAX_DEPARTED_CREDITS` without counting them all (O(1) per event).
   */
  private readonly departed = new Set<string>();
  /** Per worker here: credit it may still be given, and when that was last topped up (ms). */
  private readonly allowance = new Map<string, { samples: number; at: number }>();
  private dirty = false;
  private lastRecordAt = 0;
  /** The mean train loss workers last reported; kept while none reports one. */
  private lastTrainLoss: number | undefined;
  private readonly recordListeners = new Set<(record: MetricsRecord) => void>();
  /**
   * Progress writes and metrics-history appends, run one at a time in the order they were asked
   * for (`persist`): an older snapshot never lands over a newer one, and a history record goes
   * out only after the progress that covers its sample count is durable, so after a crash the
   * restarted job never counts fewer samples than its history shows (DESIGN §5).
   */
  private readonly persisting = new InOrder();

  constructor(
    private readonly jobId: string,
    private readonly store: DataStore,
    metrics: ServerMetrics,
    private readonly roster: Roster,
    /** Counts the per-event work (tests). */
    private readonly work: JobWorkMeter,
    /** What else progress.json holds, as of the write. */
    private readonly control: () => ProgressControl,
    private readonly log: Logger,
  ) {
    metrics.followSamples(jobId, () => this.samplesSoFar);
  }

  /** Samples processed by all workers since the job was created; /metrics follows it at once. */
  get samples(): number {
    return this.samplesSoFar;
  }

  /** Raises the sample count to `value` when it is higher (a checkpoint's, the cluster's). */
  raiseTo(value: number): void {
    if (value > this.samplesSoFar) this.set(value);
  }

  private set(value: number): void {
    // Every change reaches progress.json on the next write, whichever path made it.
    if (value !== this.samplesSoFar) this.dirty = true;
    this.samplesSoFar = value;
  }

  /** Something progress.json holds changed (control state, balancer mode). */
  changed(): void {
    this.dirty = true;
  }

  /** Takes what progress.json held when the job ran before. */
  restore(progress: JobProgress): void {
    this.set(progress.samples);
    this.credited = new Map(Object.entries(progress.credited));
    // Restored before any worker joins: every counter is a departed worker's until it returns.
    this.departed.clear();
    for (const id of this.credited.keys()) if (!this.roster.has(id)) this.departed.add(id);
  }

  /** What the cluster last credited a worker that failed over here, unless this process knows. */
  seedCredit(workerId: string, cumulative: number): void {
    if (this.credited.has(workerId)) return;
    this.credited.set(workerId, cumulative);
    // The cluster's answer may come after the worker left again.
    if (!this.roster.has(workerId)) this.departed.add(workerId);
  }

  hasCredit(workerId: string): boolean {
    return this.credited.has(workerId);
  }

  /**
   * Credits a worker's report. `stats.samples` is cumulative per tab, so only the increase
   * counts; a counter that went down means the tab restarted its count: credit what it reports
   * anew. Shares the credit with the cluster. Returns what the report claimed and what of it
   * was credited, for the credit book (credit/book.ts).
   */
  credit(
    worker: WorkerEntry,
    stats: Stats,
    link: ClusterLink,
    now = Date.now(),
  ): { claimed: number; credited: number } {
    const before = this.credited.get(worker.id);
    const delta = before === undefined ? stats.samples : stats.samples - before;
    const claimed = delta >= 0 ? delta : stats.samples;
    this.credited.set(worker.id, stats.samples);
    const credit = Math.min(claimed, this.allowed(worker, now));
    if (credit <= 0) return { claimed, credited: 0 };
    const left = this.allowance.get(worker.id);
    if (left) left.samples -= credit;
    this.set(this.samplesSoFar + credit);
    worker.contributed += credit;
    this.dirty = true;
    // Not awaited: a stats report must not wait on Redis. A failure (Redis down, or slower than
    // its client's command timeout) leaves the job-wide total to the next report; it must not
    // be an unhandled rejection, which ends the process.
    link.addSamples(worker.id, credit, stats.samples).then(
      (total) => this.raiseTo(total),
      (err: unknown) =>
        this.log.warn({ err, worker: worker.id }, 'could not share credited samples'),
    );
    return { claimed, credited: credit };
  }

  /**
   * The credit a worker may be given now: a bucket that fills at `MAX_SAMPLES_PER_SEC` on the
   * server's clock, from one second's worth at the join, up to `CREDIT_BURST_SEC`' worth.
   */
  private allowed(worker: WorkerEntry, now: number): number {
    let a = this.allowance.get(worker.id);
    if (!a) {
      a = { samples: maxCredit(now - worker.joinedAt), at: now };
      this.allowance.set(worker.id, a);
      return a.samples;
    }
    const cap = CREDIT_BURST_SEC * MAX_SAMPLES_PER_SEC;
    a.samples = Math.min(cap, a.samples + (Math.max(0, now - a.at) / 1000) * MAX_SAMPLES_PER_SEC);
    a.at = now;
    return a.samples;
  }

  /** A worker joined (or came back): its counter, if it has one, is no longer a departed one's. */
  workerJoined(workerId: string): void {
    this.departed.delete(workerId);
  }

  /** A worker left: its allowance goes, and the counters of the oldest departures beyond the cap. */
  workerLeft(workerId: string): void {
    this.allowance.delete(workerId);
    if (this.credited.has(workerId)) this.departed.add(workerId);
    for (const id of this.departed) {
      if (this.departed.size <= MAX_DEPARTED_CREDITS) break;
      this.work.visits++;
      this.departed.delete(id);
      this.credited.delete(id);
      this.dirty = true;
    }
  }

  /** Calls `listener` with every metrics record the job appends; returns an unsubscribe. */
  onRecord(listener: (record: MetricsRecord) => void): () => void {
    this.recordListeners.add(listener);
    return () => this.recordListeners.delete(listener);
  }

  /** The mean train loss as last reported, for the gauges and records. */
  trainLoss(): number | undefined {
    const { trainLoss } = this.roster.throughput();
    if (trainLoss !== undefined) this.lastTrainLoss = trainLoss;
    return this.lastTrainLoss;
  }

  /**
   * Persists progress when it changed; resolves once it, and every progress or history write
   * asked for before it, is on disk.
   */
  flush(): Promise<void> {
    return this.persisting.run(() => this.saveNow());
  }

  /** Appends a periodic history record when one is due and the job has workers. */
  async recordIfDue(now: number): Promise<void> {
    if (now - this.lastRecordAt < METRICS_RECORD_INTERVAL_MS || this.roster.size === 0) return;
    this.lastRecordAt = now;
    await this.record();
  }

  /** Appends a history record, with the checkpoint just stored when there is one. */
  async record(checkpoint?: CheckpointManifest): Promise<void> {
    const c = checkpoint;
    const trainLoss = this.lastTrainLoss;
    const record: MetricsRecord = {
      time: new Date().toISOString(),
      samples: this.samples,
      workers: this.roster.size,
      samplesPerSec: this.roster.throughput().samplesPerSec,
      ...(trainLoss !== undefined ? { trainLoss } : {}),
      ...(c ? { testLoss: c.testLoss, checkpoint: c.seq } : {}),
      ...(c?.testAccuracy !== undefined ? { testAccuracy: c.testAccuracy } : {}),
      ...(c?.testObjective !== undefined ? { testObjective: c.testObjective } : {}),
      perWorker: Object.fromEntries(
        recordedWorkers(this.roster.workers.values()).map((w) => [
          w.id,
          {
            samplesPerSec: w.samplesPerSec,
            communicationPeriod: w.settings.communicationPeriod,
            blocksPerMessage: w.settings.blocksPerMessage,
            encoding: w.settings.encoding,
          },
        ]),
      ),
    };
    await this.persisting.run(async () => {
      // Samples only grow, so the progress saved now covers the record taken above.
      await this.saveNow();
      await this.store.appendMetrics(this.jobId, record);
    });
    for (const listener of this.recordListeners) listener(record);
  }

  /** Writes progress now when it changed; only ever called in `persisting`'s turn. */
  private async saveNow(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await this.store.saveProgress(this.jobId, {
        samples: this.samples,
        credited: Object.fromEntries(this.credited),
        ...this.control(),
      });
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }
}

/**
 * The workers a metrics record has a line for: the first `MAX_RECORDED_WORKERS` in the roster's
 * order, which is the order they joined in, so a chart's lines carry on from record to record.
 */
function recordedWorkers(workers: Iterable<WorkerEntry>): WorkerEntry[] {
  const out: WorkerEntry[] = [];
  for (const w of workers) {
    if (out.length === MAX_RECORDED_WORKERS) break;
    out.push(w);
  }
  return out;
}
