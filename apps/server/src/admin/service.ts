/**
 * What the admin can do to jobs, independent of HTTP or socket.io: list, create, control,
 * balance and export. Failures are `AdminFailure`s carrying the HTTP status and a stable code.
 */
import { exportParameters, validate } from '@meshgrad/core';
import { Job, type JobOutbox } from '../jobs/job.ts';
import { parseJobSpec } from '../jobs/job-spec.ts';
import type { Logger } from '../logger.ts';
import type { ServerMetrics } from '../metrics.ts';
import type { CheckpointManifest, DataStore } from '../store.ts';
import type {
  AdminBanReply,
  AdminCheckpoint,
  AdminErrorCode,
  AdminJobSummary,
  AdminMetricsHistory,
} from '@meshgrad/core';
import { balancerSchema, controlSchema } from './schemas.ts';
import { checkpointView, jobSummary } from './views.ts';

/** Jobs one server runs at most: each holds its dataset and shards in memory. */
export const MAX_JOBS = 16;

export class AdminFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: AdminErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/**
 * Splits core's `validate` and parseJobSpec messages, `a.b: what is wrong`, into the field and
 * the reason; a whole-document path such as `(payload)` or `(spec)` names no field.
 */
export function fieldError(message: string): { field?: string; message: string } {
  const m = /^(?:invalid job spec: )?([A-Za-z_$][\w.$[\]]*|\([a-z]+\)): (.*)$/s.exec(message);
  if (!m || (m[1] as string).startsWith('(')) return { message: m?.[2] ?? message };
  return { field: m[1] as string, message: m[2] as string };
}

function invalid(message: string): AdminFailure {
  const e = fieldError(message);
  return new AdminFailure(400, 'ERR_INVALID_PAYLOAD', e.message, e.field);
}

/** A parseJobSpec failure as a field error; uses the error's own `field` when it carries one. */
function invalidSpec(err: unknown): AdminFailure {
  const e = err as { field?: unknown; reason?: unknown; message?: unknown };
  if (typeof e.field === 'string' && typeof e.reason === 'string') {
    const whole = e.field.startsWith('(');
    return new AdminFailure(400, 'ERR_INVALID_PAYLOAD', e.reason, whole ? undefined : e.field);
  }
  return invalid(String(e.message ?? err));
}

export interface AdminServiceContext {
  readonly jobs: Map<string, Job>;
  readonly store: DataStore;
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  /** The volunteer hub: a job created here reaches its workers through it. */
  readonly outbox: JobOutbox;
  /** Called after anything changed a job, so live views update at once. */
  changed(jobId: string): void;
  /** Directories a spec's data files may lie in (job-spec.ts `allowedDirs`). */
  readonly allowedDataDirs: readonly string[];
}

export class AdminService {
  private readonly creating = new Set<string>();

  constructor(private readonly ctx: AdminServiceContext) {}

  job(id: string): Job {
    const job = this.ctx.jobs.get(id);
    if (!job) throw new AdminFailure(404, 'ERR_NOT_FOUND', `no job ${id}`);
    return job;
  }

  summaries(): AdminJobSummary[] {
    return [...this.ctx.jobs.values()].map(jobSummary);
  }

  /** Validates a job spec (errors name the field), loads its data and starts it. */
  async createJob(body: unknown): Promise<Job> {
    let spec;
    try {
      spec = parseJobSpec(body, { allowedDirs: this.ctx.allowedDataDirs });
    } catch (err) {
      throw invalidSpec(err);
    }
    if (this.ctx.jobs.has(spec.id) || this.creating.has(spec.id)) {
      throw new AdminFailure(409, 'ERR_CONFLICT', `a job with id ${spec.id} exists`, 'id');
    }
    if (this.ctx.jobs.size + this.creating.size >= MAX_JOBS) {
      throw new AdminFailure(409, 'ERR_CONFLICT', `this server runs at most ${MAX_JOBS} jobs`);
    }
    this.creating.add(spec.id);
    try {
      // Its directory would resume the old job's checkpoints under a new spec.
      if ((await this.ctx.store.loadSpec(spec.id)) !== null) {
        throw new AdminFailure(
          409,
          'ERR_CONFLICT',
          `the data directory already holds a job ${spec.id}; choose another id`,
          'id',
        );
      }
      const job = await Job.open(spec, this.ctx.store, this.ctx.metrics, this.ctx.log);
      job.attach(this.ctx.outbox);
      this.ctx.jobs.set(job.id, job);
      this.ctx.log.info({ job: job.id }, 'job created from the admin console');
      this.ctx.changed(job.id);
      return job;
    } finally {
      this.creating.delete(spec.id);
    }
  }

  async control(id: string, body: unknown): Promise<Job> {
    const job = this.job(id);
    const r = validate(controlSchema, body);
    if (!r.ok) throw invalid(r.message);
    if (job.state === 'stopped') {
      throw new AdminFailure(409, 'ERR_CONFLICT', `job ${id} is stopped; it cannot be changed`);
    }
    const state = r.value.state ?? job.state;
    const learningRate = r.value.learningRate ?? job.learningRate;
    job.setControl(state, learningRate);
    // Persist now: a restart right after a stop must not bring the job back running.
    await job.flush();
    this.ctx.log.info({ job: id, state, learningRate }, 'job control changed by the admin');
    this.ctx.changed(id);
    return job;
  }

  async balancer(id: string, body: unknown): Promise<Job> {
    const job = this.job(id);
    const r = validate(balancerSchema, body);
    if (!r.ok) throw invalid(r.message);
    if (job.state === 'stopped') {
      throw new AdminFailure(409, 'ERR_CONFLICT', `job ${id} is stopped; it cannot be changed`);
    }
    const req = r.value;
    if (req.mode === 'fixed' && req.blocksPerMessage > job.layout.blockCount) {
      throw new AdminFailure(
        400,
        'ERR_INVALID_PAYLOAD',
        `at most ${job.layout.blockCount}: the model has ${job.layout.blockCount} blocks`,
        'blocksPerMessage',
      );
    }
    job.setBalancer(
      req.mode === 'fixed'
        ? {
            mode: 'fixed',
            settings: {
              communicationPeriod: req.communicationPeriod,
              blocksPerMessage: req.blocksPerMessage,
              encoding: req.encoding,
            },
          }
        : { mode: 'automatic' },
    );
    await job.flush();
    this.ctx.log.info({ job: id, balancer: job.balancer }, 'balancer changed by the admin');
    this.ctx.changed(id);
    return job;
  }

  /**
   * Bans a worker of job `id` (`Job.ban`), wherever in the cluster it is connected: a worker on
   * another process is expelled by that process (`Job.banRemote`).
   */
  ban(id: string, workerId: string): AdminBanReply {
    const job = this.job(id);
    if (!job.ban(workerId, 'banned by the host') && !job.banRemote(workerId)) {
      throw new AdminFailure(404, 'ERR_NOT_FOUND', `no worker ${workerId} in job ${id}`);
    }
    this.ctx.log.info({ job: id, worker: workerId }, 'worker banned by the admin');
    this.ctx.changed(id);
    return { ok: true, worker: workerId, banned: job.bannedCount };
  }

  /** Asks a worker for its state now; the checkpoint follows when it answers. */
  requestCheckpoint(id: string): string {
    const job = this.job(id);
    if (job.state !== 'running') {
      throw new AdminFailure(409, 'ERR_CONFLICT', `job ${id} is ${job.state}`);
    }
    const requestId = job.requestState();
    if (!requestId) {
      throw new AdminFailure(
        409,
        'ERR_CONFLICT',
        'no worker can answer: none has contributed samples yet, or all are paused',
      );
    }
    return requestId;
  }

  async metrics(id: string): Promise<AdminMetricsHistory> {
    const job = this.job(id);
    return { job: job.id, samples: job.samples, history: await this.ctx.store.readMetrics(job.id) };
  }

  async checkpoints(id: string): Promise<AdminCheckpoint[]> {
    const job = this.job(id);
    return (await this.ctx.store.listCheckpoints(job.id)).map((m) => checkpointView(job.id, m));
  }

  private async manifest(job: Job, seq: number): Promise<CheckpointManifest> {
    if (job.latest?.seq === seq) return job.latest;
    const m = (await this.ctx.store.listCheckpoints(job.id)).find((c) => c.seq === seq);
    if (!m) throw new AdminFailure(404, 'ERR_NOT_FOUND', `job ${job.id} has no checkpoint ${seq}`);
    return m;
  }

  /** A checkpoint as raw float32 little-endian bytes or as safetensors. */
  async checkpointFile(
    id: string,
    seq: number,
    format: 'safetensors' | 'bin',
  ): Promise<{ bytes: Uint8Array; filename: string; manifest: CheckpointManifest }> {
    const job = this.job(id);
    const manifest = await this.manifest(job, seq);
    const params =
      job.latest?.seq === seq
        ? job.checkpointParams().params
        : await this.ctx.store.readCheckpoint(manifest);
    const filename = `${job.id}-checkpoint-${seq}.${format}`;
    if (format === 'bin') {
      return {
        bytes: new Uint8Array(params.buffer, params.byteOffset, params.byteLength),
        filename,
        manifest,
      };
    }
    const metadata: Record<string, string> = {
      'meshgrad.job': job.id,
      'meshgrad.checkpoint': String(manifest.seq),
      'meshgrad.samples': String(manifest.samples),
      'meshgrad.created_at': manifest.createdAt,
      'meshgrad.test_loss': String(manifest.testLoss),
      'meshgrad.layout':
        'dense weights are [in, out] (y = x @ W + b, ReLU between layers); K-Means centres are [clusters, dims]',
    };
    if (manifest.testAccuracy !== undefined)
      metadata['meshgrad.test_accuracy'] = String(manifest.testAccuracy);
    if (manifest.testObjective !== undefined)
      metadata['meshgrad.test_objective'] = String(manifest.testObjective);
    return { bytes: exportParameters(job.layout, params, metadata), filename, manifest };
  }
}
