import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import type { AdminMetricsRecord, AdminWorkerRecord, WorkerSettings } from '@meshgrad/core';
import { createLogger, type Logger } from './logger.ts';
import {
  METRICS_TAIL_BYTES,
  MetricsHistory,
  type MetricsAnswer,
  type MetricsRange,
} from './metrics-history.ts';
import { WriteHealth, type DurableFile } from './write-health.ts';

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
  /** The checkpoint is the (trimmed) mean of this many workers' recent uploads, `worker`'s last. */
  readonly averagedOver?: number;
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
  averagedOver: z.number().int().min(2).optional(),
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
  const { testAccuracy, testObjective, averagedOver, ...rest } = r.data;
  return {
    ok: true,
    manifest: {
      ...rest,
      ...(testAccuracy !== undefined ? { testAccuracy } : {}),
      ...(testObjective !== undefined ? { testObjective } : {}),
      ...(averagedOver !== undefined ? { averagedOver } : {}),
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
  /** Worker ids the host banned, oldest first (docs/design.md §8.2); absent: none. */
  readonly banned?: readonly string[];
  /** Identities banned with a worker, oldest first (docs/design.md §8.2); absent: none. */
  readonly bannedIdentities?: readonly string[];
}

/**
 * The file-system calls the store makes. Tests of the code around the store hand in one that
 * fails on purpose (a full disk cannot be made on demand); everyone else gets node's.
 */
export type FileSystem = Pick<
  typeof fs,
  'appendFile' | 'mkdir' | 'open' | 'readFile' | 'readdir' | 'rename' | 'stat' | 'unlink'
>;

/** Which checkpoints survive pruning: the newest `keepLast` and the one with the best test loss. */
export interface CheckpointRetention {
  readonly keepLast: number;
}

/** Keeps 10 checkpoints (about 4 MB for the built-in MNIST MLP) besides the best one. */
export const DEFAULT_CHECKPOINT_RETENTION: CheckpointRetention = { keepLast: 10 };

export interface DataStoreOptions {
  /** Default: silent. */
  readonly log?: Logger;
  /** Where failing writes are reported; default one of its own. */
  readonly health?: WriteHealth;
  readonly retention?: CheckpointRetention;
  readonly files?: FileSystem;
}

/** Tries of an append before its lines are given up; the waits between them. */
const APPEND_RETRY_DELAYS_MS = [100, 400] as const;
/**
 * Lines that may wait for one file's append in flight. Beyond them a line is given up at once
 * (counted, reported): a stalled disk must not grow the server without bound.
 */
export const MAX_PENDING_APPEND_LINES = 20_000;
/**
 * How long a file's first waiting line waits for others before the append starts (ms): a ramp
 * of joins then costs a few appends a second, not one per line (each opens and closes the file).
 */
export const APPEND_COALESCE_MS = 25;
/** Manifests read at once when a job's checkpoint index is built. */
const MANIFEST_READ_BATCH = 64;
/** Temporary files of `writeFileAtomic`, left behind by a crash or a full disk. */
const TEMPORARY_FILE = /\.\d+\.[0-9a-f]{8}\.tmp$/;

/**
 * Writes `data` to `file` atomically: a temporary file in the same directory, fsync, rename.
 * A crash mid-write leaves the old file intact; a failed write removes its temporary file.
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  files: FileSystem = fs,
): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await files.open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await files.rename(tmp, file);
  } catch (err) {
    // Why: on a full disk the half-written temporary file is what keeps the disk full.
    await files.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

async function readJson<T>(file: string, files: FileSystem = fs): Promise<T | null> {
  try {
    return JSON.parse(await files.readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** A file's lines waiting for its append in flight, and who waits for each. */
interface PendingAppend {
  lines: string[];
  done: Array<(written: boolean) => void>;
  writing: boolean;
}

const errorCode = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/** The data directory: `<dataDir>/jobs/<job>/{spec.json, progress.json, checkpoints/, metrics.jsonl, events.jsonl}`. */
export class DataStore {
  readonly health: WriteHealth;
  readonly retention: CheckpointRetention;
  private readonly log: Logger;
  private readonly files: FileSystem;
  /** Per job: its checkpoint manifests by seq, read from disk once. */
  private readonly checkpointIndex = new Map<string, Promise<Map<number, CheckpointManifest>>>();
  private readonly histories = new Map<string, Promise<MetricsHistory>>();
  /**
   * Per file: the lines waiting for the append in flight. One append per file at a time takes
   * every line that came meanwhile: 10,000 volunteers joining made one open-write-close per
   * event line (a main-thread cost that showed in the server's profile), and under a descriptor
   * limit one descriptor per line in flight.
   */
  private readonly appends = new Map<string, PendingAppend>();
  /** Lines handed to `append` and not yet written or given up on. */
  private readonly unwritten = new Set<Promise<boolean>>();

  constructor(
    readonly dir: string,
    options: DataStoreOptions = {},
  ) {
    this.log = options.log ?? createLogger('silent');
    this.health = options.health ?? new WriteHealth(this.log);
    this.retention = options.retention ?? DEFAULT_CHECKPOINT_RETENTION;
    this.files = options.files ?? fs;
    if (!Number.isInteger(this.retention.keepLast) || this.retention.keepLast < 1) {
      throw new Error(`checkpoint retention must keep at least 1, not ${this.retention.keepLast}`);
    }
  }

  /** Creates the directory and removes temporary files a crash or a full disk left behind. */
  async init(): Promise<void> {
    await this.files.mkdir(path.join(this.dir, 'jobs'), { recursive: true });
    const dirs = [this.dir];
    for (const job of await this.listJobs()) {
      dirs.push(this.jobDir(job), path.join(this.jobDir(job), 'checkpoints'));
    }
    let removed = 0;
    for (const dir of dirs) {
      let names: string[];
      try {
        names = await this.files.readdir(dir);
      } catch {
        continue;
      }
      for (const name of names.filter((n) => TEMPORARY_FILE.test(n))) {
        await this.files.unlink(path.join(dir, name)).then(
          () => removed++,
          () => undefined,
        );
      }
    }
    if (removed > 0)
      this.log.info({ removed }, 'removed temporary files left in the data directory');
  }

  /**
   * The admin token: `MESHGRAD_ADMIN_TOKEN` when set, else one random token per data directory,
   * created on first start and kept (mode 0600) so restarts keep the same login.
   */
  async adminToken(fromEnv?: string): Promise<string> {
    if (fromEnv) return fromEnv;
    const file = path.join(this.dir, 'admin-token');
    try {
      const token = (await this.files.readFile(file, 'utf8')).trim();
      if (token) return token;
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
    const token = randomBytes(24).toString('base64url');
    await writeFileAtomic(file, token + '\n', this.files);
    return token;
  }

  jobDir(job: string): string {
    return path.join(this.dir, 'jobs', job);
  }

  async listJobs(): Promise<string[]> {
    const entries = await this.files.readdir(path.join(this.dir, 'jobs'), { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }

  /** Runs a durable write, reporting its failure or success to `health`; a failure rethrows. */
  private async tracked<T>(file: DurableFile, job: string, write: () => Promise<T>): Promise<T> {
    try {
      const out = await write();
      this.health.succeeded(file, job);
      return out;
    } catch (err) {
      this.health.failed(file, job, err, 'failed');
      throw err;
    }
  }

  /** Saves the spec unless the saved one is the same: a restart on a full disk writes nothing. */
  async saveSpec(job: string, spec: unknown): Promise<void> {
    const text = JSON.stringify(spec, null, 2);
    const file = path.join(this.jobDir(job), 'spec.json');
    const saved = await this.files.readFile(file, 'utf8').catch(() => null);
    if (saved === text) return;
    await this.tracked('spec', job, async () => {
      await this.files.mkdir(path.join(this.jobDir(job), 'checkpoints'), { recursive: true });
      await writeFileAtomic(file, text, this.files);
    });
  }

  loadSpec(job: string): Promise<unknown> {
    return readJson(path.join(this.jobDir(job), 'spec.json'), this.files);
  }

  saveProgress(job: string, progress: JobProgress): Promise<void> {
    return this.tracked('progress', job, () =>
      writeFileAtomic(
        path.join(this.jobDir(job), 'progress.json'),
        JSON.stringify(progress),
        this.files,
      ),
    );
  }

  loadProgress(job: string): Promise<JobProgress | null> {
    return readJson<JobProgress>(path.join(this.jobDir(job), 'progress.json'), this.files);
  }

  private checkpointDir(job: string): string {
    return path.join(this.jobDir(job), 'checkpoints');
  }

  /**
   * Writes weights then manifest, then points `latest.json` at it; each step atomic. Then prunes
   * to the retention policy; a failed prune is logged, never the checkpoint's failure.
   */
  async saveCheckpoint(manifest: CheckpointManifest, params: Float32Array): Promise<void> {
    const dir = this.checkpointDir(manifest.job);
    const index = await this.index(manifest.job);
    await this.tracked('checkpoint', manifest.job, async () => {
      await this.files.mkdir(dir, { recursive: true });
      await writeFileAtomic(
        path.join(dir, manifest.file),
        new Uint8Array(params.buffer, params.byteOffset, params.byteLength),
        this.files,
      );
      const text = JSON.stringify(manifest, null, 2);
      await writeFileAtomic(path.join(dir, `${manifest.seq}.json`), text, this.files);
      index.set(manifest.seq, manifest);
      await writeFileAtomic(path.join(dir, 'latest.json'), text, this.files);
    });
    await this.prune(manifest.job, index).catch((err: unknown) => {
      this.log.warn({ err, job: manifest.job }, 'could not prune old checkpoints');
    });
  }

  /** Deletes the checkpoints the retention policy does not keep (the newest is always kept). */
  private async prune(job: string, index: Map<number, CheckpointManifest>): Promise<void> {
    const bySeq = [...index.values()].sort((a, b) => a.seq - b.seq);
    const keep = new Set(bySeq.slice(-this.retention.keepLast).map((m) => m.seq));
    const best = bySeq.reduce<CheckpointManifest | null>(
      (b, m) => (Number.isFinite(m.testLoss) && (!b || m.testLoss < b.testLoss) ? m : b),
      null,
    );
    if (best) keep.add(best.seq);
    const dir = this.checkpointDir(job);
    for (const m of bySeq) {
      if (keep.has(m.seq)) continue;
      // The manifest goes first: a manifest without its weights would be listed but unreadable.
      for (const name of [`${m.seq}.json`, m.file]) {
        await this.files.unlink(path.join(dir, name)).catch((err: unknown) => {
          if (errorCode(err) !== 'ENOENT') throw err;
        });
      }
      index.delete(m.seq);
    }
  }

  /** A job's manifests by seq: read from disk on first use, then kept up to date in memory. */
  private index(job: string): Promise<Map<number, CheckpointManifest>> {
    let index = this.checkpointIndex.get(job);
    if (!index) {
      index = this.readIndex(job);
      this.checkpointIndex.set(job, index);
      index.catch(() => this.checkpointIndex.delete(job));
    }
    return index;
  }

  private async readIndex(job: string): Promise<Map<number, CheckpointManifest>> {
    const dir = this.checkpointDir(job);
    let names: string[];
    try {
      names = await this.files.readdir(dir);
    } catch {
      return new Map();
    }
    const index = new Map<number, CheckpointManifest>();
    const manifests = names.filter((n) => /^\d+\.json$/.test(n));
    for (let i = 0; i < manifests.length; i += MANIFEST_READ_BATCH) {
      const batch = manifests.slice(i, i + MANIFEST_READ_BATCH);
      const read = await Promise.all(
        batch.map((name) =>
          readJson<CheckpointManifest>(path.join(dir, name), this.files).catch((err: unknown) => {
            this.log.warn({ err, job, file: name }, 'skipped an unreadable checkpoint manifest');
            return null;
          }),
        ),
      );
      for (const m of read) if (m && Number.isInteger(m.seq)) index.set(m.seq, m);
    }
    return index;
  }

  /**
   * The newest checkpoint whose manifest and weights read back whole. `latest.json` is tried
   * first; when it or its weights are unreadable or truncated, the numbered manifests are tried
   * newest first, and the log says which one the job resumes from.
   */
  async latestCheckpoint(job: string): Promise<CheckpointManifest | null> {
    let latest: CheckpointManifest | null = null;
    let problem: string | null = null;
    try {
      latest = await readJson<CheckpointManifest>(
        path.join(this.checkpointDir(job), 'latest.json'),
        this.files,
      );
      if (latest) problem = await this.weightsProblem(latest);
    } catch (err) {
      problem = (err as Error).message;
    }
    if (latest && problem === null) return latest;
    const index = await this.index(job);
    if (!latest && problem === null && index.size === 0) return null;
    const candidates = [...index.values()].sort((a, b) => b.seq - a.seq);
    for (const m of candidates) {
      const why = await this.weightsProblem(m);
      if (why === null) {
        this.log.warn(
          { job, resumedFrom: m.seq, latest: latest?.seq ?? null, problem },
          'the latest checkpoint is unreadable: resuming from the newest readable one',
        );
        return m;
      }
    }
    this.log.warn(
      { job, problem },
      'no readable checkpoint: the job starts from its initial model',
    );
    return null;
  }

  /** Why a checkpoint's weights cannot be read back, or null when they can. */
  private async weightsProblem(m: CheckpointManifest): Promise<string | null> {
    if (typeof m.file !== 'string' || !Number.isInteger(m.parameters))
      return 'a malformed manifest';
    try {
      const stat = await this.files.stat(path.join(this.checkpointDir(m.job), m.file));
      return stat.size === m.parameters * 4
        ? null
        : `${m.file} has ${stat.size} bytes, expected ${m.parameters * 4}`;
    } catch (err) {
      return `${m.file}: ${(err as Error).message}`;
    }
  }

  async listCheckpoints(job: string): Promise<CheckpointManifest[]> {
    return [...(await this.index(job)).values()].sort((a, b) => a.seq - b.seq);
  }

  /** One checkpoint's manifest by number, without listing the others. */
  async checkpoint(job: string, seq: number): Promise<CheckpointManifest | null> {
    return (await this.index(job)).get(seq) ?? null;
  }

  async readCheckpoint(manifest: CheckpointManifest): Promise<Float32Array> {
    const buf = await this.files.readFile(
      path.join(this.checkpointDir(manifest.job), manifest.file),
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

  /**
   * Appends a line, in order with the file's other lines: with the lines that came while the
   * file's previous append was in flight or within `APPEND_COALESCE_MS`, in one append. Resolves whether it was written. Never
   * rejects: a failed append is tried again after a short wait, and lines that cannot be written
   * are counted and reported to `health`, and the job goes on.
   */
  private append(file: 'events' | 'metrics', job: string, line: string): Promise<boolean> {
    const target = path.join(this.jobDir(job), `${file}.jsonl`);
    let pending = this.appends.get(target);
    if (!pending) {
      pending = { lines: [], done: [], writing: false };
      this.appends.set(target, pending);
    }
    if (pending.lines.length >= MAX_PENDING_APPEND_LINES) {
      const err = Object.assign(new Error(`${file}.jsonl: too many lines waiting for the disk`), {
        code: 'ERR_APPEND_BACKLOG',
      });
      this.health.failed(file, job, err, 'failed');
      return Promise.resolve(false);
    }
    const written = new Promise<boolean>((resolve) => {
      pending.lines.push(line);
      pending.done.push(resolve);
    });
    if (!pending.writing) {
      pending.writing = true;
      setTimeout(() => void this.drainAppends(file, job, target, pending), APPEND_COALESCE_MS);
    }
    this.unwritten.add(written);
    void written.then(() => this.unwritten.delete(written));
    return written;
  }

  /**
   * Resolves once every line appended so far, and every line appended meanwhile, is written or
   * given up on: a closing server waits for it, so no append lands after the close (the leave
   * events of the sockets it closes come last).
   */
  async settled(): Promise<void> {
    while (this.unwritten.size > 0) await Promise.all([...this.unwritten]);
  }

  /** Writes a file's waiting lines, batch after batch, until none wait. */
  private async drainAppends(
    file: 'events' | 'metrics',
    job: string,
    target: string,
    pending: PendingAppend,
  ): Promise<void> {
    while (pending.lines.length > 0) {
      const text = pending.lines.join('');
      const done = pending.done;
      pending.lines = [];
      pending.done = [];
      const ok = await this.appendWithRetries(file, job, target, text);
      for (const resolve of done) resolve(ok);
    }
    pending.writing = false;
    this.appends.delete(target);
  }

  private async appendWithRetries(
    file: 'events' | 'metrics',
    job: string,
    target: string,
    text: string,
  ): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.files.appendFile(target, text);
        this.health.succeeded(file, job);
        return true;
      } catch (err) {
        const wait = APPEND_RETRY_DELAYS_MS[attempt];
        this.health.failed(file, job, err, wait === undefined ? 'failed' : 'retried');
        if (wait === undefined) return false;
        await delay(wait);
      }
    }
  }

  private history(job: string): Promise<MetricsHistory> {
    let history = this.histories.get(job);
    if (!history) {
      history = this.readHistory(job);
      this.histories.set(job, history);
      history.catch(() => this.histories.delete(job));
    }
    return history;
  }

  /** Loads a history from the tail of its file: a bounded read and parse, however big the file. */
  private async readHistory(job: string): Promise<MetricsHistory> {
    const history = new MetricsHistory();
    let handle;
    try {
      handle = await this.files.open(path.join(this.jobDir(job), 'metrics.jsonl'), 'r');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return history;
      throw err;
    }
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, METRICS_TAIL_BYTES);
      const buf = Buffer.alloc(length);
      await handle.read(buf, 0, length, size - length);
      history.load(buf.toString('utf8'), length < size, size);
    } finally {
      await handle.close();
    }
    return history;
  }

  /** Appends a record; a file past its cap is rewritten from the bounded history. Never rejects. */
  async appendMetrics(job: string, record: MetricsRecord): Promise<void> {
    let history: MetricsHistory | null = null;
    try {
      history = await this.history(job);
    } catch (err) {
      this.log.warn({ err, job }, 'cannot read the metrics history; appending without it');
    }
    const line = JSON.stringify(record) + '\n';
    if (!(await this.append('metrics', job, line)) || !history) return;
    history.add(record);
    history.fileBytes += Buffer.byteLength(line);
    if (history.needsCompaction) {
      const text = history.text();
      await this.tracked('metrics', job, () =>
        writeFileAtomic(path.join(this.jobDir(job), 'metrics.jsonl'), text, this.files),
      ).then(
        () => {
          history.fileBytes = Buffer.byteLength(text);
        },
        () => undefined,
      );
    }
  }

  /** Metrics records in `range` (see MetricsHistory.query), from memory. */
  async queryMetrics(job: string, range: MetricsRange = {}): Promise<MetricsAnswer> {
    return (await this.history(job)).query(range);
  }

  /** The newest records, as many as one answer holds (see MetricsHistory.query). */
  async readMetrics(job: string): Promise<MetricsRecord[]> {
    return (await this.queryMetrics(job)).history;
  }

  /** Appends an event line. Never rejects: failures are retried, counted and reported. */
  async appendEvent(job: string, event: Record<string, unknown>): Promise<void> {
    const line = JSON.stringify({ time: new Date().toISOString(), ...event }) + '\n';
    await this.append('events', job, line);
  }
}
