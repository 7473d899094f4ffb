import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEST_DEVICE } from '../server.test-support.ts';
import { DataStore } from '../store.ts';
import { type JobOutbox } from './job.ts';
import { closeTestJobs, openTestJob, stats } from './job.test-support.ts';
import { MAX_DEPARTED_CREDITS } from './progress.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-job-work-'));
});
afterEach(async () => {
  await closeTestJobs();
  await rm(dir, { recursive: true, force: true });
});

const QUIET_OUTBOX: JobOutbox = {
  neighbours: () => undefined,
  settings: () => undefined,
  requestState: () => undefined,
  control: () => undefined,
};

/**
 * Joins `n` workers one by one, has each report twice, then has them all leave; the work the
 * job's meter counted per event, for the joins and for the leaves apart.
 */
async function workPerEvent(n: number) {
  const job = await openTestJob(new DataStore(path.join(dir, String(n))), {
    id: 'blobs',
    name: 'Blobs',
    model: { kind: 'kmeans', dims: 2, clusters: 3 },
    dataset: { kind: 'clusters', clusters: 3, dims: 2, count: 300, testCount: 100 },
  });
  job.attach(QUIET_OUTBOX);
  const work = job.roster.work;
  const snapshot = () => ({ ...work });
  const per = (a: typeof work, b: typeof work, events: number) => ({
    renewals: (b.renewals - a.renewals) / events,
    visits: (b.visits - a.visits) / events,
    // A binary search on the ring is allowed its log N steps.
    ringSteps: (b.ringSteps - a.ringSteps) / events / Math.log2(n),
  });
  const ids: string[] = [];
  const start = snapshot();
  for (let i = 0; i < n; i++) ids.push(job.join(undefined, `s${i}`, TEST_DEVICE).id);
  const joined = snapshot();
  for (const id of ids) job.report(id, stats(10));
  for (const id of ids) job.report(id, stats(20));
  const reported = snapshot();
  for (const id of ids) job.leave(id, 'gone');
  const left = snapshot();
  await job.flush();
  await job.close();
  return {
    join: per(start, joined, n),
    stats: per(joined, reported, 2 * n),
    leave: per(reported, left, n),
  };
}

describe('Job work per event', () => {
  it('does the same work per join, report and leave at 200 and at 2,000 workers (no scan of all workers)', async () => {
    const small = await workPerEvent(200);
    const large = await workPerEvent(2_000);
    expect(2_000).toBeGreaterThan(MAX_DEPARTED_CREDITS); // the leaves forget departed credit
    for (const event of ['join', 'stats', 'leave'] as const) {
      for (const measure of ['renewals', 'visits', 'ringSteps'] as const) {
        const s = small[event][measure];
        const l = large[event][measure];
        expect(l, `${event} ${measure}: ${s} per event at 200, ${l} at 2,000`).toBeLessThanOrEqual(
          1.25 * s + 1,
        );
      }
    }
    // The meter counts what a join does: its ring window is renewed.
    expect(small.join.renewals).toBeGreaterThan(1);
  }, 60_000);
});
