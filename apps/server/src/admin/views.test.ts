import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_RECORDED_WORKERS, MAX_SNAPSHOT_WORKERS, type LinkStats } from '@meshgrad/core';
import type { MetricsRecord } from '../store.ts';
import { closeTestJobs, openTestJob, stats } from '../jobs/job.test-support.ts';
import type { Job } from '../jobs/job.ts';
import { TEST_DEVICE } from '../server.test-support.ts';
import { DataStore } from '../store.ts';
import { snapshotPage } from './http.ts';
import { AdminFailure } from './service.ts';
import { jobSnapshot } from './views.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-views-'));
});
afterEach(async () => {
  await closeTestJobs();
  await rm(dir, { recursive: true, force: true });
});

async function jobWith(workers: number): Promise<{ job: Job; ids: string[] }> {
  const job = await openTestJob(new DataStore(dir), {
    id: 'blobs',
    name: 'Blobs',
    model: { kind: 'kmeans', dims: 2, clusters: 3 },
    dataset: { kind: 'clusters', clusters: 3, dims: 2, count: 300, testCount: 100 },
  });
  const ids: string[] = [];
  // Joined one millisecond apart, so the join order is the order of `ids`.
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - workers });
  try {
    for (let i = 0; i < workers; i++) {
      ids.push(job.join(undefined, `s${i}`, TEST_DEVICE).id);
      vi.advanceTimersByTime(1);
    }
  } finally {
    vi.useRealTimers();
  }
  return { job, ids };
}

const link = (peer: string, blocksReceived: number, rejected: number): LinkStats => ({
  peer,
  relayed: false,
  goodputBytesPerSec: 1_000,
  backlogBytes: 0,
  blocksSent: 20,
  blocksReceived,
  overwritten: 0,
  rejected,
  skippedSends: 0,
});

describe('jobSnapshot', () => {
  it('lists one page of a large job: suspects first, then the longest connected; the size stays bounded', async () => {
    const { job, ids } = await jobWith(1_200);
    // Two late joiners whose blocks two neighbours each reject: suspects.
    const [s1, s2] = [ids[1_100] as string, ids[1_150] as string];
    for (const [reporter, suspect] of [
      [ids[0], s1],
      [ids[1], s1],
      [ids[2], s2],
      [ids[3], s2],
    ] as const) {
      job.report(reporter as string, { ...stats(10), links: [link(suspect, 1, 40)] });
    }
    const first = jobSnapshot(job);
    expect(first.workerCount).toBe(1_200);
    expect(first.offset).toBe(0);
    expect(first.workers).toHaveLength(MAX_SNAPSHOT_WORKERS);
    expect(first.suspectCount).toBe(2);
    expect(first.suspects).toEqual([s1, s2]);
    const others = ids.filter((id) => id !== s1 && id !== s2);
    expect(first.workers.map((w) => w.id)).toEqual([
      s1,
      s2,
      ...others.slice(0, MAX_SNAPSHOT_WORKERS - 2),
    ]);
    // The next pages carry on where it stopped, and together list every worker once.
    const second = jobSnapshot(job, Date.now(), { offset: 500, limit: 500 });
    const third = jobSnapshot(job, Date.now(), { offset: 1_000, limit: 500 });
    expect(third.workers).toHaveLength(200);
    const listed = [first, second, third].flatMap((s) => s.workers.map((w) => w.id));
    expect(new Set(listed).size).toBe(1_200);
    // A snapshot of 1,200 workers is the size of one of 600: a page, not the job.
    const { job: half } = await jobWith(600);
    const bytes = (s: unknown) => JSON.stringify(s).length;
    expect(bytes(first) / bytes(jobSnapshot(half))).toBeLessThan(1.1);
    // A page larger than the bound is cut to it.
    expect(jobSnapshot(job, Date.now(), { offset: 0, limit: 5_000 }).workers).toHaveLength(
      MAX_SNAPSHOT_WORKERS,
    );
  });
});

describe('metrics records of a large job', () => {
  it('keep a line for each of the longest-connected workers up to the bound, and count them all', async () => {
    const { job, ids } = await jobWith(MAX_RECORDED_WORKERS + 50);
    const records: MetricsRecord[] = [];
    job.onRecord((r) => records.push(r));
    await job.tick(); // the first tick takes a record
    expect(records).toHaveLength(1);
    const record = records[0] as MetricsRecord;
    expect(record.workers).toBe(MAX_RECORDED_WORKERS + 50);
    expect(Object.keys(record.perWorker ?? {})).toEqual(ids.slice(0, MAX_RECORDED_WORKERS));
  });
});

describe('snapshotPage', () => {
  const page = (url: string) => snapshotPage({ url } as IncomingMessage);

  it('reads ?offset= and ?limit=, with the whole first page by default', () => {
    expect(page('/api/admin/jobs/blobs')).toEqual({ offset: 0, limit: MAX_SNAPSHOT_WORKERS });
    expect(page('/api/admin/jobs/blobs?offset=1000&limit=20')).toEqual({ offset: 1000, limit: 20 });
  });

  it('refuses what is not a page, naming the parameter', () => {
    for (const [query, field] of [
      ['offset=-1', 'offset'],
      ['offset=1e3', 'offset'],
      ['offset=9999999999', 'offset'],
      ['limit=0', 'limit'],
      [`limit=${MAX_SNAPSHOT_WORKERS + 1}`, 'limit'],
      ['limit=abc', 'limit'],
    ] as const) {
      let thrown: unknown;
      try {
        page(`/api/admin/jobs/blobs?${query}`);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, query).toBeInstanceOf(AdminFailure);
      expect(thrown, query).toMatchObject({ status: 400, field });
    }
  });
});
