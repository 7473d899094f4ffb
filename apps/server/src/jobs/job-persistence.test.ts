/**
 * Ordering of a job's durable writes when they overlap (slow disks, a loaded machine): a fake
 * store holds chosen writes until the test releases them, so each interleaving is exact. Also
 * what a restart must keep (bans).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { evaluate } from '@meshgrad/core';
import {
  DataStore,
  type CheckpointManifest,
  type JobProgress,
  type MetricsRecord,
} from '../store.ts';
import type { Job } from './job.ts';
import { closeTestJobs, openTestJob, stats } from './job.test-support.ts';
import { TEST_DEVICE } from '../server.test-support.ts';

/** How long to wait for a released write to reach the disk (a loaded machine can be slow). */
const WAIT = { timeout: 20_000, interval: 5 };

/** Lets every pending callback run, so whatever can reach the store has reached it. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

type WriteKind = 'progress' | 'metrics' | 'checkpoint';

/** A data store whose writes of the kinds in `holding` wait until the test releases them. */
class GatedStore extends DataStore {
  readonly holding = new Set<WriteKind>();
  readonly held: Array<{ kind: WriteKind; release: () => void }> = [];
  /** Every write in the order it became durable. */
  readonly done: Array<
    | { kind: 'progress'; samples: number }
    | { kind: 'metrics'; samples: number }
    | { kind: 'checkpoint'; seq: number }
  > = [];

  private async gate(kind: WriteKind): Promise<void> {
    if (!this.holding.has(kind)) return;
    await new Promise<void>((release) => this.held.push({ kind, release }));
  }

  /** Waits until a write of `kind` is held, and takes it off the list. */
  async nextHeld(kind: WriteKind): Promise<() => void> {
    await vi.waitUntil(() => this.held.some((h) => h.kind === kind), WAIT);
    const i = this.held.findIndex((h) => h.kind === kind);
    const [entry] = this.held.splice(i, 1);
    return (entry as { release: () => void }).release;
  }

  /**
   * Stops holding and releases the held writes newest first, each once the one before it is
   * durable: the order in which writes that were let overlap would land at their worst.
   */
  async releaseNewestFirst(): Promise<void> {
    this.holding.clear();
    for (const h of this.held.splice(0).reverse()) {
      const before = this.done.length;
      h.release();
      await vi.waitUntil(() => this.done.length > before, WAIT);
    }
  }

  /** Stops holding and releases everything held. */
  releaseAll(): void {
    this.holding.clear();
    for (const h of this.held.splice(0)) h.release();
  }

  override async saveProgress(job: string, progress: JobProgress): Promise<void> {
    await this.gate('progress');
    await super.saveProgress(job, progress);
    this.done.push({ kind: 'progress', samples: progress.samples });
  }

  override async appendMetrics(job: string, record: MetricsRecord): Promise<void> {
    await this.gate('metrics');
    await super.appendMetrics(job, record);
    this.done.push({ kind: 'metrics', samples: record.samples });
  }

  override async saveCheckpoint(manifest: CheckpointManifest, params: Float32Array): Promise<void> {
    await this.gate('checkpoint');
    await super.saveCheckpoint(manifest, params);
    this.done.push({ kind: 'checkpoint', seq: manifest.seq });
  }
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-persist-'));
});
afterEach(async () => {
  await closeTestJobs();
  await rm(dir, { recursive: true, force: true });
});

const SPEC = {
  id: 'blobs',
  name: 'Blobs',
  model: { kind: 'kmeans', dims: 2, clusters: 3 },
  dataset: { kind: 'clusters', clusters: 3, dims: 2, count: 300, testCount: 100 },
  balancer: { mode: 'fixed', communicationPeriod: 64, blocksPerMessage: 1, encoding: 'f32' },
  checkpointIntervalSec: 3600,
};

function openJob(store: DataStore, extra: Record<string, unknown> = {}): Promise<Job> {
  return openTestJob(store, { ...SPEC, ...extra });
}

const bytesOf = (params: Float32Array) => new Uint8Array(params.buffer.slice(0));

describe('Job progress and metrics history', () => {
  it('never appends a history record with more samples than the progress saved before it', async () => {
    const store = new GatedStore(dir);
    const job = await openJob(store);
    const w = job.join(undefined, 's1', TEST_DEVICE);
    job.recordStats(w, stats(100));
    store.holding.add('progress');
    const ticked = job.tick();
    const release = await store.nextHeld('progress');
    // The worker reports while the progress write is on its way to disk.
    job.recordStats(w, stats(250));
    store.releaseAll();
    release();
    await ticked;

    const record = store.done.find((d) => d.kind === 'metrics');
    expect(record?.samples).toBe(250);
    let saved = 0;
    for (const d of store.done) {
      if (d.kind === 'progress') saved = Math.max(saved, d.samples);
      if (d.kind === 'metrics') expect(d.samples).toBeLessThanOrEqual(saved);
    }

    // Killed here, before any other write: the restarted job resumes from at least the history.
    const history = await store.readMetrics('blobs');
    const restarted = await openJob(new DataStore(dir));
    expect(restarted.samples).toBeGreaterThanOrEqual(history.at(-1)?.samples ?? Infinity);
  });

  it('lands progress writes in the order they were made', async () => {
    const store = new GatedStore(dir);
    const job = await openJob(store);
    const w = job.join(undefined, 's1', TEST_DEVICE);
    job.recordStats(w, stats(100));
    store.holding.add('progress');
    const first = job.flush();
    await vi.waitUntil(() => store.held.length === 1, WAIT);
    // The admin pauses the job meanwhile, and that is persisted at once.
    job.recordStats(w, stats(300));
    job.setControl('paused', job.learningRate);
    const second = job.flush();
    await settle();
    await store.releaseNewestFirst();
    await Promise.all([first, second]);

    const progress = await store.loadProgress('blobs');
    expect(progress?.samples).toBe(300);
    expect(progress?.state).toBe('paused');
  });

  it('appends history records in the order they were taken', async () => {
    const store = new GatedStore(dir);
    const job = await openJob(store);
    const w = job.join(undefined, 's1', TEST_DEVICE);
    job.recordStats(w, stats(100));
    const requestId = job.requestState() as string;
    job.recordStats(w, stats(150));
    store.holding.add('metrics');
    // The tick's record (150 samples) is held on its way to disk …
    const ticked = job.tick();
    await vi.waitUntil(() => store.held.length === 1, WAIT);
    // … while a state upload arrives and its checkpoint's record (400 samples) is written.
    job.recordStats(w, stats(400));
    const accepted = job.acceptState(w.id, requestId, bytesOf(job.initialParams()));
    await vi.waitUntil(() => store.done.some((d) => d.kind === 'checkpoint'), WAIT);
    await settle();
    await store.releaseNewestFirst();
    expect(await accepted).toBeNull();
    await ticked;

    const samples = (await store.readMetrics('blobs')).map((r) => r.samples);
    expect(samples).toEqual([150, 400]);
  });
});

describe('Job bans', () => {
  it('keeps a ban across a restart; a progress file with junk for bans loses nothing else', async () => {
    const job = await openJob(new DataStore(dir));
    const bad = job.join(undefined, 's1', TEST_DEVICE);
    const good = job.join(undefined, 's2', TEST_DEVICE);
    job.recordStats(good, stats(100));
    expect(job.ban(bad.id, 'banned by the host')).toBe(true);
    await job.tick();
    await job.close();

    const restarted = await openJob(new DataStore(dir));
    expect(restarted.isBanned(bad.id)).toBe(true);
    expect(restarted.isBanned(good.id)).toBe(false);
    expect(restarted.bannedCount).toBe(1);
    await restarted.close();

    // A hand-edited file: bans that are not ids are ignored; samples and state still resume.
    const file = path.join(dir, 'jobs', 'blobs', 'progress.json');
    const saved = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(
      file,
      JSON.stringify({ ...saved, banned: [42, null, 'x'.repeat(1_000), bad.id] }),
    );
    const edited = await openJob(new DataStore(dir));
    expect(edited.bannedCount).toBe(1);
    expect(edited.isBanned(bad.id)).toBe(true);
    expect(edited.samples).toBe(restarted.samples);
  });
});

describe('Job stop criteria', () => {
  it('ends with the checkpoint that met the target, even when a later upload overlaps it', async () => {
    const store = new GatedStore(dir);
    // A target that the seeded initial centres meet and far-off centres do not.
    const probe = await openJob(new DataStore(path.join(dir, 'probe')));
    const good = probe.initialParams();
    const bad = good.map((v) => v + 100);
    const goodObjective = evaluate(probe.layout, good, probe.test).objective as number;
    expect(evaluate(probe.layout, bad, probe.test).objective).toBeGreaterThan(goodObjective);

    const job = await openJob(store, { stop: { targetObjective: goodObjective } });
    const w = job.join(undefined, 's1', TEST_DEVICE);
    job.recordStats(w, stats(100));
    store.holding.add('checkpoint');
    const first = job.requestState() as string;
    const acceptedGood = job.acceptState(w.id, first, bytesOf(good));
    const releaseGood = await store.nextHeld('checkpoint');
    // While the good state is being stored, another request goes out (the tick, or the admin)
    // and its worse answer arrives.
    job.recordStats(w, stats(200));
    const second = job.requestState();
    const acceptedBad =
      second === null
        ? Promise.resolve('not requested')
        : job.acceptState(w.id, second, bytesOf(bad));
    await settle();
    releaseGood();
    expect(await acceptedGood).toBeNull();
    store.releaseAll();
    expect(await acceptedBad).not.toBeNull();
    await job.tick();

    expect(job.state).toBe('stopped');
    expect(job.latest?.testObjective).toBe(goodObjective);
    expect(job.latest?.seq).toBe(1);
    const onDisk = JSON.parse(
      await readFile(path.join(store.jobDir('blobs'), 'checkpoints', 'latest.json'), 'utf8'),
    ) as CheckpointManifest;
    expect(onDisk).toEqual(job.latest);
    expect(store.done.filter((d) => d.kind === 'checkpoint')).toEqual([
      { kind: 'checkpoint', seq: 1 },
    ]);
  });
});

/** A data store on a disk where progress.json cannot be written (full, or read-only). */
class ProgressFailingStore extends DataStore {
  failures = 0;

  override saveProgress(): Promise<void> {
    this.failures++;
    return Promise.reject(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }));
  }
}

describe('Job tick when progress cannot be saved', () => {
  it('still asks for state, stores the checkpoint and stops at its criterion', async () => {
    const store = new ProgressFailingStore(dir);
    const job = await openJob(store, {
      checkpointIntervalSec: 0.001,
      stop: { targetObjective: 1e9 },
    });
    const requests: Array<{ worker: string; requestId: string }> = [];
    const control: string[] = [];
    job.attach({
      neighbours: () => undefined,
      settings: () => undefined,
      requestState: (worker, requestId) => requests.push({ worker, requestId }),
      control: (_worker, state) => control.push(state),
    });
    const w = job.join(undefined, 's1', TEST_DEVICE);
    job.recordStats(w, stats(100));
    // Let the (one-millisecond) checkpoint interval pass.
    await new Promise((resolve) => setTimeout(resolve, 5));

    await job.tick();
    expect(store.failures).toBeGreaterThan(0);
    expect(requests).toEqual([{ worker: w.id, requestId: expect.any(String) }]);
    const { requestId } = requests[0] as { requestId: string };
    expect(await job.acceptState(w.id, requestId, bytesOf(job.initialParams()))).toBeNull();
    expect(job.latest?.seq).toBe(1);

    await job.tick();
    expect(job.state).toBe('stopped');
    expect(control).toEqual(['stopped']);
  });
});
