import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { AdminMetricsRecord, AdminWorkerRecord, WorkerSettings } from '@meshgrad/core';

/** Everything the server persists about a job (DESIGN §5). */
export interface CheckpointManifest {
  readonly job: string;
  /** Monotonic checkpoint number within the job. */
  readonly seq: number;
  /** Job-wide samples processed when the state was taken. */
  readonly samples: number;
  readonly createdAt: string;
  readonly parameters: number;
  readonly worker: string;
  readonly testLoss: number;
  readonly testAccuracy?: number;
  readonly testObjective?: number;
  readonly file: string;
}

/**
 * The one check of a manifest that comes from outside this process (a file on disk, the
 * cluster's Redis): it is checked, not trusted. `file` is a plain `<seq>.bin` name, so a
 * manifest cannot point a read anywhere else.
 */
const checkpointManifestSchema = z.object({
  job: z.string().min(1).max(128),
  seq: z.number().int().positive(),
  samples: z.number().min(0),
  createdAt: z.string(),
  parameters: z.number().int().positive(),
  worker: z.string(),
  testLoss: z.number(),
  testAccuracy: z.number().optional(),
  testObjective: z.number().optional(),
  file: z.string().regex(/^\d+\.bin$/, 'must be a <seq>.bin file name'),
});

/** A manifest, or what is wrong with it (`field: reason`). */
export function parseCheckpointManifest(
  value: unknown,
): { ok: true; manifest: CheckpointManifest } | { ok: false; message: string } {
  const r = checkpointManifestSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    return {
      ok: false,
      message: `${issue?.path.join('.') || '(manifest)'}: ${issue?.message ?? 'invalid'}`,
    };
  }
  const { testAccuracy, testObjective, ...rest } = r.data;
  return {
    ok: true,
    manifest: {
      ...rest,
      ...(testAccuracy !== undefined ? { testAccuracy } : {}),
      ...(testObjective !== undefined ? { testObjective } : {}),
    },
  };
}

/** One record of a job's metrics.jsonl: the admin API serves these as they are. */
export type MetricsRecord = AdminMetricsRecord;
/** One worker's line in a metrics record. */
export type WorkerRecord = AdminWorkerRecord;

/**
 * How a job picks workers' communication settings: `automatic` (the balancer's job; until the
 * balancer lands it means the spec's defaults) or `fixed` settings for every worker.
 */
export type BalancerMode =
  { readonly mode: 'automatic' } | { readonly mode: 'fixed'; readonly settings: WorkerSettings };

/** Job progress that must never go backwards across restarts. */
export interface JobProgress {
  readonly samples: number;
  readonly state: 'running' | 'paused' | 'stopped';
  readonly learningRate: number;
  /** Per-worker sample counters already credited to the job, so a reconnect is not double-counted. */
  readonly credited: Record<string, number>;
  /** Absent in progress files written before the admin console existed: automatic. */
  readonly balancer?: BalancerMode;
}

/**
 * Writes `data` to `file` atomically: a temporary file in the same directory, fsync, rename.
 * A crash mid-write leaves the old file intact.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await fs.open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The data directory: `<dataDir>/jobs/<job>/{spec.json, progress.json, checkpoints/, metrics.jsonl, events.jsonl}`. */
export class DataStore {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await fs.mkdir(path.join(this.dir, 'jobs'), { recursive: true });
  }

  /**
   * The admin token: `MESHGRAD_ADMIN_TOKEN` when set, else one random token per data directory,
   * created on first start and kept (mode 0600) so restarts keep the same login.
   */
  async adminToken(fromEnv?: string): Promise<string> {
    if (fromEnv) return fromEnv;
    const file = path.join(this.dir, 'admin-token');
    try {
      const token = (await fs.readFile(file, 'utf8')).trim();
      if (token) return token;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const token = randomBytes(24).toString('base64url');
    await writeFileAtomic(file, token + '\n');
    return token;
  }

  jobDir(job: string): string {
    return path.join(this.dir, 'jobs', job);
  }

  async listJobs(): Promise<string[]> {
    const entries = await fs.readdir(path.join(this.dir, 'jobs'), { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }

  async saveSpec(job: string, spec: unknown): Promise<void> {
    await fs.mkdir(path.join(this.jobDir(job), 'checkpoints'), { recursive: true });
    await writeFileAtomic(path.join(this.jobDir(job), 'spec.json'), JSON.stringify(spec, null, 2));
  }

  loadSpec(job: string): Promise<unknown> {
    return readJson(path.join(this.jobDir(job), 'spec.json'));
  }

  async saveProgress(job: string, progress: JobProgress): Promise<void> {
    await writeFileAtomic(path.join(this.jobDir(job), 'progress.json'), JSON.stringify(progress));
  }

  loadProgress(job: string): Promise<JobProgress | null> {
    return readJson<JobProgress>(path.join(this.jobDir(job), 'progress.json'));
  }

  /** Writes weights then manifest, then points `latest.json` at it; each step atomic. */
  async saveCheckpoint(manifest: CheckpointManifest, params: Float32Array): Promise<void> {
    const dir = path.join(this.jobDir(manifest.job), 'checkpoints');
    await fs.mkdir(dir, { recursive: true });
    await writeFileAtomic(
      path.join(dir, manifest.file),
      new Uint8Array(params.buffer, params.byteOffset, params.byteLength),
    );
    await writeFileAtomic(
      path.join(dir, `${manifest.seq}.json`),
      JSON.stringify(manifest, null, 2),
    );
    await writeFileAtomic(path.join(dir, 'latest.json'), JSON.stringify(manifest, null, 2));
  }

  latestCheckpoint(job: string): Promise<CheckpointManifest | null> {
    return readJson<CheckpointManifest>(path.join(this.jobDir(job), 'checkpoints', 'latest.json'));
  }

  async listCheckpoints(job: string): Promise<CheckpointManifest[]> {
    const dir = path.join(this.jobDir(job), 'checkpoints');
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return [];
    }
    const manifests: CheckpointManifest[] = [];
    for (const name of names) {
      if (!/^\d+\.json$/.test(name)) continue;
      const m = await readJson<CheckpointManifest>(path.join(dir, name));
      if (m) manifests.push(m);
    }
    return manifests.sort((a, b) => a.seq - b.seq);
  }

  async readCheckpoint(manifest: CheckpointManifest): Promise<Float32Array> {
    const buf = await fs.readFile(
      path.join(this.jobDir(manifest.job), 'checkpoints', manifest.file),
    );
    if (buf.byteLength !== manifest.parameters * 4) {
      throw new Error(
        `checkpoint ${manifest.file} of job ${manifest.job} has ${buf.byteLength} bytes, expected ${manifest.parameters * 4}`,
      );
    }
    const out = new Float32Array(manifest.parameters);
    new Uint8Array(out.buffer).set(buf);
    return out;
  }

  async appendMetrics(job: string, record: MetricsRecord): Promise<void> {
    await fs.appendFile(
      path.join(this.jobDir(job), 'metrics.jsonl'),
      JSON.stringify(record) + '\n',
    );
  }

  async readMetrics(job: string): Promise<MetricsRecord[]> {
    let text: string;
    try {
      text = await fs.readFile(path.join(this.jobDir(job), 'metrics.jsonl'), 'utf8');
    } catch {
      return [];
    }
    const out: MetricsRecord[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as MetricsRecord);
      } catch {
        // A torn last line after a crash: skip it, keep the rest.
      }
    }
    return out;
  }

  async appendEvent(job: string, event: Record<string, unknown>): Promise<void> {
    const line = JSON.stringify({ time: new Date().toISOString(), ...event }) + '\n';
    await fs.appendFile(path.join(this.jobDir(job), 'events.jsonl'), line);
  }
}
