/**
 * A job's checkpoints (DESIGN §5): asking a worker for its state, evaluating and storing what
 * it sends, adopting the cluster's, and the stop criteria that a checkpoint can meet.
 */
import { randomUUID } from 'node:crypto';
import type { Dataset, EvaluationResult, ParameterLayout } from '@meshgrad/core';
import type { Logger } from '../logger.ts';
import { WorkerCrashedError, type Evaluator } from '../workers/job-data.ts';
import type { ServerMetrics } from '../metrics.ts';
import type { CheckpointManifest, DataStore } from '../store.ts';
import type { ClusterLink } from './cluster-link.ts';
import type { CustomKernel } from './custom-kernel.ts';
import { InOrder } from './in-order.ts';
import type { JobSpec } from './job-spec.ts';
import type { JobOutbox } from './outbox.ts';
import type { Progress } from './progress.ts';
import type { Roster, WorkerEntry } from './roster.ts';

/** A state request not answered within this time is abandoned and another worker is asked (ms). */
export const STATE_REQUEST_TIMEOUT_MS = 15_000;

/**
 * How much worse than the job's latest checkpoint (or its initial parameters before the first)
 * an uploaded state's held-out loss may be. ASGD states of different workers differ, and a
 * worker's state wobbles between checkpoints: that noise stays well within a tenth to a third of
 * the loss on the models and test sets we run, while a state that replaces the model with
 * garbage is worse by orders of magnitude (a forged upload measured 44.4 against 2.38).
 */
export const REGRESSION_TOLERANCE = 0.5;

/**
 * Distinct workers whose latest accepted uploads a checkpoint may average (DESIGN §5): the
 * simulator found that the mean of several workers' states is closer to the ideal than any one
 * worker's (§3.7).
 */
export const AVERAGED_UPLOADS = 8;
/** Memory the remembered uploads of one job may take; a large model averages fewer. */
export const AVERAGED_UPLOADS_BYTES = 64 * 1024 * 1024;
/** An upload older than this many checkpoint intervals is too stale to average in. */
export const AVERAGE_WINDOW_INTERVALS = 2.5;

/** The checkpoint author in sync mode, where the server's own parameters are the model. */
export const SYNC_SERVER_WORKER = 'server';

/** What the checkpoints need of the rest of the job. */
export interface CheckpointsContext {
  readonly spec: JobSpec;
  readonly layout: ParameterLayout;
  readonly test: Dataset;
  readonly store: DataStore;
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  readonly progress: Progress;
  readonly roster: Roster;
  /** A custom model's kernel (evaluates it: there is no CPU implementation); null otherwise. */
  kernel(): CustomKernel | null;
  /** Evaluates any other model, in a worker thread (docs/design.md §8). */
  readonly evaluator: Evaluator;
  /** The job's seeded initial parameters. */
  initialParams(): Float32Array;
  link(): ClusterLink;
  outbox(): JobOutbox;
  /** Whether the job is stopped: it then ends with the checkpoint it has. */
  stopped(): boolean;
}

interface PendingState {
  readonly requestId: string;
  readonly workerId: string;
  readonly sentAt: number;
  readonly samples: number;
}

export class Checkpoints {
  latest: CheckpointManifest | null = null;
  private latestParams: Float32Array | null = null;
  private pending: PendingState | null = null;
  private lastCheckpointAt = Date.now();
  /** A stop criterion met by a checkpoint, applied on the job's next tick. */
  private stopDue: string | null = null;
  /** When the job asked for its final state after reaching `stop.maxSamples`. */
  private finalStateRequestedAt: number | null = null;
  /**
   * State uploads and adopted checkpoints, evaluated and stored one at a time in arrival order
   * (`storing.run`): checkpoint numbers stay unique, and once a checkpoint meets a stop
   * criterion no upload that overlapped it can replace it as the job's last.
   */
  private readonly storing = new InOrder();
  /** The held-out loss of the job's initial parameters: the reference before the first checkpoint. */
  private initialLoss: number | null = null;
  /** Each worker's latest accepted upload, oldest first (at most `AVERAGED_UPLOADS`). */
  private readonly recent = new Map<
    string,
    { readonly params: Float32Array; readonly at: number }
  >();

  constructor(private readonly ctx: CheckpointsContext) {}

  /** The checkpoint the job resumes from (the data directory's latest). */
  restore(manifest: CheckpointManifest, params: Float32Array): void {
    this.latest = manifest;
    this.latestParams = params;
    this.gauges(manifest);
  }

  /** The latest checkpoint and its parameters, or null before the first. */
  current(): { manifest: CheckpointManifest; params: Float32Array } | null {
    return this.latest && this.latestParams
      ? { manifest: this.latest, params: this.latestParams }
      : null;
  }

  /** Whether a state request is out (or a server-side checkpoint is being stored). */
  get requestPending(): boolean {
    return this.pending !== null;
  }

  /** Whether the job ends with the checkpoint it has: a stop criterion was met, or it stopped. */
  private get final(): boolean {
    return this.stopDue !== null || this.ctx.stopped();
  }

  workerLeft(workerId: string): void {
    if (this.pending?.workerId === workerId) this.pending = null;
    // Its last upload stays in `recent`: still a recent state of the job, until it ages out.
  }

  /** Whether the checkpoint interval has passed since the last checkpoint. */
  due(now: number): boolean {
    return now - this.lastCheckpointAt >= this.ctx.spec.checkpointIntervalSec * 1000;
  }

  /** Abandons a state request that went unanswered for too long. */
  expireRequest(now: number): void {
    if (this.pending && now - this.pending.sentAt > STATE_REQUEST_TIMEOUT_MS) {
      this.ctx.log.warn({ worker: this.pending.workerId }, 'state request timed out');
      this.pending = null;
    }
  }

  /**
   * Asks a worker that contributed (and is not paused) for its parameters, chosen from what the
   * server observed, never from the samples a tab claims: first the workers with the fewest
   * refused uploads; among them the fastest uplink, timed by the server on the worker's last
   * upload, else as the automatic balancer estimates it; then the one in the job longest. Why
   * the uplink: the upload is the whole model in float32 over the same uplink as the worker's
   * blocks, every checkpoint interval; on a slow link it takes seconds and crowds out the
   * blocks, which the balancer then sees as a capacity drop every interval (on a 2 Mbit/s link,
   * ~400 kB each 10 s swung its settings 3x).
   */
  requestFromWorker(): string | null {
    if (this.final) return null;
    let best: WorkerEntry | null = null;
    for (const w of this.ctx.roster.workers.values()) {
      if (w.paused || w.contributed === 0) continue;
      if (!best || betterUploader(w, best)) best = w;
    }
    if (!best) return null;
    const requestId = this.expect(best.id);
    this.ctx.outbox().requestState(best.id, requestId);
    return requestId;
  }

  /**
   * Sync mode: the server's own parameters are the model, so a checkpoint evaluates and stores
   * them, through the same path as a worker's upload. Null when one is already under way.
   */
  storeServerState(params: Float32Array): string | null {
    if (this.final || this.pending) return null;
    const workerId = SYNC_SERVER_WORKER;
    const requestId = this.expect(workerId);
    const bytes = new Uint8Array(params.buffer, params.byteOffset, params.byteLength);
    void this.accept(workerId, requestId, bytes).then(
      (problem) => {
        if (problem) this.ctx.log.warn({ problem }, 'sync checkpoint not stored');
      },
      (err: unknown) => this.ctx.log.error({ err }, 'sync checkpoint failed'),
    );
    return requestId;
  }

  private expect(workerId: string): string {
    const requestId = `r-${randomUUID().slice(0, 12)}`;
    this.pending = {
      requestId,
      workerId,
      sentAt: Date.now(),
      samples: this.ctx.progress.samples,
    };
    return requestId;
  }

  /**
   * Takes a state upload: checks it answers our request and holds P finite floats, evaluates
   * it on the held-out test set, and stores it as a checkpoint. Returns an error message, or
   * null when stored. Uploads are taken one at a time, in arrival order: one that arrives while
   * another is being evaluated waits its turn, and is refused then when the checkpoint before
   * it met a stop criterion.
   */
  accept(workerId: string, requestId: string, bytes: Uint8Array): Promise<string | null> {
    return this.storing.run(() => this.acceptNow(workerId, requestId, bytes));
  }

  private async acceptNow(
    workerId: string,
    requestId: string,
    bytes: Uint8Array,
  ): Promise<string | null> {
    const { ctx } = this;
    const pending = this.pending;
    if (!pending || pending.requestId !== requestId || pending.workerId !== workerId) {
      return `no state request ${requestId} is pending for this worker`;
    }
    this.pending = null;
    if (this.final) return 'the job has stopped; its last checkpoint is final';
    const size = ctx.layout.size;
    if (bytes.byteLength !== size * 4) {
      return `params must be ${size} float32 values (${size * 4} bytes), got ${bytes.byteLength} bytes`;
    }
    let params: Float32Array = new Float32Array(size);
    new Uint8Array(params.buffer).set(bytes);
    for (let i = 0; i < params.length; i++) {
      if (!Number.isFinite(params[i])) return `params[${i}] is not finite`;
    }
    let result: EvaluationResult;
    let problem: string | null = null;
    try {
      result = await this.evaluate(params);
      if (workerId !== SYNC_SERVER_WORKER) problem = await this.regression(result.loss);
    } catch (err) {
      if (!(err instanceof WorkerCrashedError)) throw err;
      // The server's failure, not the state's: the worker is not ranked down for it, and the
      // next checkpoint interval asks again (on a new thread).
      ctx.log.error({ err, worker: workerId }, 'could not evaluate an uploaded state');
      return `the server could not evaluate the state (${err.code}); it is not stored`;
    }
    if (workerId !== SYNC_SERVER_WORKER) {
      if (problem) {
        const worker = ctx.roster.get(workerId);
        if (worker) worker.refusedUploads++;
        ctx.log.warn({ worker: workerId, testLoss: result.loss, problem }, 'upload refused');
        void ctx.store
          .appendEvent(ctx.spec.id, { event: 'upload-refused', worker: workerId, problem })
          .catch((err: unknown) => ctx.log.warn({ err }, 'could not record a refused upload'));
        return problem;
      }
      const worker = ctx.roster.get(workerId);
      const seconds = (Date.now() - pending.sentAt) / 1000;
      if (worker && seconds > 0) worker.uploadBytesPerSec = bytes.byteLength / seconds;
    }
    let averagedOver: number | undefined;
    if (workerId !== SYNC_SERVER_WORKER) {
      const averaged = await this.averaged(workerId, params, result.loss);
      if (averaged) {
        params = averaged.params;
        result = averaged.result;
        averagedOver = averaged.count;
      }
    }
    const seq = (this.latest?.seq ?? 0) + 1;
    const manifest: CheckpointManifest = {
      job: ctx.spec.id,
      seq,
      samples: Math.max(pending.samples, this.latest?.samples ?? 0),
      createdAt: new Date().toISOString(),
      parameters: size,
      worker: workerId,
      testLoss: result.loss,
      ...(result.accuracy !== undefined ? { testAccuracy: result.accuracy } : {}),
      ...(result.objective !== undefined ? { testObjective: result.objective } : {}),
      ...(averagedOver !== undefined ? { averagedOver } : {}),
      file: `${seq}.bin`,
    };
    await this.keep(manifest, params);
    ctx.log.info(
      {
        seq,
        samples: manifest.samples,
        testLoss: result.loss,
        testAccuracy: result.accuracy,
        averagedOver,
      },
      'checkpoint stored',
    );
    this.stopDue ??= stopCriterionMet(ctx.spec.stop, manifest);
    await ctx
      .link()
      .checkpointStored(manifest, params)
      .catch((err: unknown) => {
        ctx.log.warn({ err, seq }, 'could not share the checkpoint with the cluster');
      });
    // The checkpoint is stored: a progress write that fails now is the store's to report
    // (write-health.ts), not the upload's failure.
    await ctx.progress.record(manifest).catch((err: unknown) => {
      ctx.log.debug({ err, seq }, 'the checkpoint’s history record was not written');
    });
    return null;
  }

  /**
   * Why a state with held-out loss `loss` may not become the checkpoint, or null: its loss is
   * worse than the reference (the latest checkpoint's, else the initial parameters') by more than
   * `REGRESSION_TOLERANCE`.
   */
  private async regression(loss: number): Promise<string | null> {
    if (!Number.isFinite(loss)) return `the state's test loss is ${loss}`;
    let reference = this.latest?.testLoss;
    if (reference === undefined) {
      this.initialLoss ??= (await this.evaluate(this.ctx.initialParams())).loss;
      reference = this.initialLoss;
    }
    if (loss <= reference + REGRESSION_TOLERANCE * Math.abs(reference)) return null;
    return `the state regressed: test loss ${loss.toPrecision(4)} against ${reference.toPrecision(4)} for the job's model; it is not stored`;
  }

  /**
   * The mean of this upload and the other workers' recent accepted ones (each already through
   * the regression test on its own), when there are at least two and the mean's held-out loss is
   * lower than the upload's own; null otherwise, and the upload is stored as it came. With five
   * or more states the mean is trimmed: per parameter the lowest and highest values are left out,
   * so no single state moves it by more than the spread of the others. The upload is remembered
   * for the next checkpoints either way.
   */
  private async averaged(
    workerId: string,
    params: Float32Array,
    loss: number,
  ): Promise<{ params: Float32Array; result: EvaluationResult; count: number } | null> {
    const now = Date.now();
    const horizon = AVERAGE_WINDOW_INTERVALS * this.ctx.spec.checkpointIntervalSec * 1000;
    this.recent.delete(workerId);
    for (const [id, entry] of this.recent) {
      if (now - entry.at > horizon) this.recent.delete(id);
    }
    const keep = Math.min(
      AVERAGED_UPLOADS,
      Math.floor(AVERAGED_UPLOADS_BYTES / (4 * this.ctx.layout.size)),
    );
    if (keep < 2) return null;
    while (this.recent.size >= keep) {
      this.recent.delete(this.recent.keys().next().value!);
    }
    this.recent.set(workerId, { params, at: now });
    if (this.recent.size < 2) return null;
    const states = [...this.recent.values()].map((e) => e.params);
    const mean = trimmedMean(states);
    let result: EvaluationResult;
    try {
      result = await this.evaluate(mean);
    } catch (err) {
      if (!(err instanceof WorkerCrashedError)) throw err;
      this.ctx.log.warn(
        { err },
        'could not evaluate the mean of recent uploads; storing the upload',
      );
      return null;
    }
    if (!(result.loss < loss)) return null;
    return { params: mean, result, count: states.length };
  }

  /**
   * The held-out evaluation: a custom model by its own kernel, any other by core's CPU one in
   * the job's worker thread, so a large test set does not stall the event loop.
   */
  private evaluate(params: Float32Array) {
    const kernel = this.ctx.kernel();
    return kernel ? kernel.evaluate(params, this.ctx.test) : this.ctx.evaluator.evaluate(params);
  }

  /** A checkpoint another process stored: kept here too, so this process serves and resumes from it. */
  adopt(manifest: CheckpointManifest, params: Float32Array): Promise<void> {
    return this.storing.run(async () => {
      if (this.latest && manifest.seq <= this.latest.seq) return;
      if (manifest.job !== this.ctx.spec.id || params.length !== this.ctx.layout.size) {
        this.ctx.log.warn(
          { seq: manifest.seq },
          'ignored a shared checkpoint that does not fit this job',
        );
        return;
      }
      await this.keep(manifest, params);
      this.ctx.progress.raiseTo(manifest.samples);
    });
  }

  /** Stores a checkpoint and makes it the job's latest. */
  private async keep(manifest: CheckpointManifest, params: Float32Array): Promise<void> {
    await this.ctx.store.saveCheckpoint(manifest, params);
    this.latest = manifest;
    this.latestParams = params;
    this.lastCheckpointAt = Date.now();
    this.ctx.metrics.checkpoints.inc({ job: this.ctx.spec.id });
    this.gauges(manifest);
  }

  private gauges(manifest: CheckpointManifest): void {
    const job = { job: this.ctx.spec.id };
    this.ctx.metrics.testLoss.set(job, manifest.testLoss);
    if (manifest.testAccuracy !== undefined)
      this.ctx.metrics.testAccuracy.set(job, manifest.testAccuracy);
  }

  /**
   * The stop criterion the job met, or null while it runs on. Reaching `maxSamples` first asks
   * for a final state (`requestState`), so the job ends with a checkpoint of the final model;
   * if none can answer in time, it stops without.
   */
  stopReason(now: number, requestState: () => string | null): string | null {
    const { maxSamples } = this.ctx.spec.stop;
    const samples = this.ctx.progress.samples;
    if (this.stopDue === null && maxSamples !== undefined && samples >= maxSamples) {
      if (this.latest && this.latest.samples >= maxSamples) {
        this.stopDue = `reached ${maxSamples} samples`;
      } else if (this.finalStateRequestedAt === null) {
        this.finalStateRequestedAt = now;
        if (!this.pending && requestState() === null) {
          this.stopDue = `reached ${maxSamples} samples (no worker could send a final state)`;
        }
      } else if (now - this.finalStateRequestedAt > STATE_REQUEST_TIMEOUT_MS) {
        this.stopDue = `reached ${maxSamples} samples (the final state did not arrive)`;
      }
    }
    return this.stopDue;
  }
}

/**
 * Per parameter, the mean of `states` (all of one length); from five states on, without the
 * lowest and the highest value. Summed in float64.
 */
export function trimmedMean(states: readonly Float32Array[]): Float32Array {
  const n = states.length;
  const size = states[0]!.length;
  const out = new Float32Array(size);
  const trim = n >= 5;
  const divisor = trim ? n - 2 : n;
  for (let i = 0; i < size; i++) {
    let sum = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (let s = 0; s < n; s++) {
      const v = states[s]![i]!;
      sum += v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    out[i] = (trim ? sum - lo - hi : sum) / divisor;
  }
  return out;
}

/** Whether `a` should upload the job's state rather than `b` (see `requestFromWorker`). */
function betterUploader(a: WorkerEntry, b: WorkerEntry): boolean {
  if (a.refusedUploads !== b.refusedUploads) return a.refusedUploads < b.refusedUploads;
  const uplink = (w: WorkerEntry) => w.uploadBytesPerSec ?? w.plan?.capacityBytesPerSec ?? -1;
  if (uplink(a) !== uplink(b)) return uplink(a) > uplink(b);
  return a.joinedAt < b.joinedAt;
}

/** Which stop criterion of `stop` a checkpoint meets, or null when none. */
export function stopCriterionMet(
  stop: JobSpec['stop'],
  checkpoint: CheckpointManifest,
): string | null {
  if (
    stop.targetAccuracy !== undefined &&
    checkpoint.testAccuracy !== undefined &&
    checkpoint.testAccuracy >= stop.targetAccuracy
  ) {
    return `test accuracy ${checkpoint.testAccuracy.toFixed(4)} reached the target ${stop.targetAccuracy}`;
  }
  if (
    stop.targetObjective !== undefined &&
    checkpoint.testObjective !== undefined &&
    checkpoint.testObjective <= stop.targetObjective
  ) {
    return `test objective ${checkpoint.testObjective.toPrecision(4)} reached the target ${stop.targetObjective}`;
  }
  if (stop.targetLoss !== undefined && checkpoint.testLoss <= stop.targetLoss) {
    return `test loss ${checkpoint.testLoss.toPrecision(4)} reached the target ${stop.targetLoss}`;
  }
  if (stop.maxSamples !== undefined && checkpoint.samples >= stop.maxSamples) {
    return `reached ${stop.maxSamples} samples`;
  }
  return null;
}
