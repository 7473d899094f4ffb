/**
 * Two job servers on one real redis-server act as one: neighbours span the processes, blocks
 * are relayed between them, samples count job-wide, one process checkpoints and the other adopts
 * its checkpoints; when one goes away its volunteers re-join the other and training goes on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeVolunteer, trainUntil } from '../jobs/node-volunteer.test-support.ts';
import type { MeshgradServer } from '../server.ts';
import { startTestServer } from '../server.test-support.ts';
import { RedisServer } from './redis-server.test-support.ts';

const JOB = {
  id: 'blobs',
  name: 'Gaussian blobs',
  model: { kind: 'kmeans', dims: 4, clusters: 3 },
  dataset: { kind: 'clusters', clusters: 3, dims: 4, count: 900, testCount: 300 },
  shards: 4,
  batchSize: 16,
  learningRate: 0.05,
  checkpointIntervalSec: 1,
  communication: { communicationPeriod: 32 },
};

let redis: RedisServer;
const dirs: string[] = [];
const servers: MeshgradServer[] = [];
const volunteers: NodeVolunteer[] = [];

async function start(): Promise<MeshgradServer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'meshgrad-scale-'));
  dirs.push(dataDir);
  const server = await startTestServer({ dataDir, jobs: [JOB], redis: redis.url });
  servers.push(server);
  return server;
}

async function join(server: MeshgradServer, workerId?: string): Promise<NodeVolunteer> {
  const v = await NodeVolunteer.join(server.url, workerId ? { workerId } : {});
  volunteers.push(v);
  return v;
}

beforeAll(async () => {
  redis = await RedisServer.start();
});

afterAll(async () => {
  for (const v of volunteers) v.close();
  for (const s of servers) await s.close().catch(() => undefined);
  await redis?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('scale-out over Redis', () => {
  it('makes volunteers on two processes neighbours that exchange blocks; one fails, training goes on', async () => {
    const a = await start();
    const b = await start();
    expect(a.cluster?.server).not.toBe(b.cluster?.server);
    const onA = [await join(a), await join(a)];
    // Once B knows A's workers (the registry is eventually consistent), it balances shards and
    // neighbours over all of them.
    const jobB = b.jobs.get('blobs')!;
    await expect.poll(() => onA.every((v) => jobB.hasWorker(v.workerId))).toBe(true);
    const onB = [await join(b), await join(b)];
    const all = [...onA, ...onB];
    const idsOnB = new Set(onB.map((v) => v.workerId));
    const idsOnA = new Set(onA.map((v) => v.workerId));

    // Every worker sees the others, wherever they are connected (4 workers, 4 neighbours).
    await expect
      .poll(() => all.every((v) => v.worker.neighbours.length === 3), { timeout: 10_000 })
      .toBe(true);
    // Shards are balanced across the processes: four workers, four different shards.
    expect(new Set(all.map((v) => v.assignment.shard.index)).size).toBe(4);

    // Blocks cross processes (relayed through the Redis adapter) in both directions.
    const crossed = () =>
      onA.every((v) => [...v.receivedFrom.keys()].some((from) => idsOnB.has(from))) &&
      onB.every((v) => [...v.receivedFrom.keys()].some((from) => idsOnA.has(from)));
    expect(await trainUntil(all, crossed, 30_000)).toBe(true);

    // Samples count job-wide on both processes; one process stores checkpoints, the other
    // adopts them.
    const jobA = a.jobs.get('blobs')!;
    expect(
      await trainUntil(
        all,
        () => (jobA.latest?.seq ?? 0) >= 2 && (jobB.latest?.seq ?? 0) >= 2,
        30_000,
      ),
    ).toBe(true);
    expect([jobA.leader, jobB.leader].filter(Boolean)).toHaveLength(1);
    const credited = all.reduce((sum, v) => sum + v.worker.counters.samples, 0);
    await trainUntil(all, () => false, 1_500);
    expect(jobA.samples).toBeGreaterThan(credited * 0.8);
    expect(Math.abs(jobA.samples - jobB.samples)).toBeLessThan(jobA.samples * 0.2);

    // A goes away; its volunteers come back on B with their worker ids, and training goes on.
    const seqBefore = jobB.latest?.seq ?? 0;
    for (const v of onA) v.close();
    await a.close();
    const moved = [];
    for (const v of onA) moved.push(await join(b, v.workerId));
    expect(moved.map((v) => v.workerId)).toEqual(onA.map((v) => v.workerId));
    const survivors = [...onB, ...moved];
    await expect
      .poll(() => survivors.every((v) => v.worker.neighbours.length === 3), { timeout: 15_000 })
      .toBe(true);
    expect(jobB.workers.size).toBe(4);
    expect(
      await trainUntil(
        survivors,
        () => jobB.leader && (jobB.latest?.seq ?? 0) > seqBefore + 1,
        30_000,
      ),
    ).toBe(true);
    expect(jobB.latest?.testObjective).toBeLessThan(20);
  });

  it('survives Redis stalling past the command timeout: no crash, and it works again after', async () => {
    const server = await start();
    const job = server.jobs.get('blobs')!;
    const v = await join(server);
    expect(await trainUntil([v], () => v.worker.counters.samples > 0, 20_000)).toBe(true);
    // While Redis is stopped, every publish (the adapter's emits to rooms, our events) times
    // out after node-redis's 5 s. Without handlers on those promises the process would end with
    // an unhandled rejection, which also fails this test run.
    const training = trainUntil([v], () => false, 7_000);
    const stalled = redis.stall(6_500);
    // What relayed blocks to tabs on another process do: emits to a room, which the adapter
    // publishes. Enough of them to fill the socket to the stalled Redis, so that commands wait
    // unwritten in node-redis's queue, where its command timeout applies.
    const block = 'x'.repeat(256 * 1024);
    for (let i = 0; i < 200; i++) {
      server.io.to('nobody-here').emit('refused', { event: 'stall-test', code: block });
    }
    await stalled;
    await training;
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBeLessThan(500);
    const before = job.samples;
    expect(await trainUntil([v], () => job.samples > before, 20_000)).toBe(true);
  });
});
