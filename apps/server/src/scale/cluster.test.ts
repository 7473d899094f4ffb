/**
 * Two job servers on one real redis-server act as one: neighbours span the processes, blocks
 * are relayed between them, samples count job-wide, one process checkpoints and the other adopts
 * its checkpoints; when one goes away its volunteers re-join the other and training goes on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerEntry } from '../jobs/job.ts';
import { createLogger } from '../logger.ts';
import { identityId } from '../credit/identity.ts';
import { askChallenge, helloWith, joinAs, TestIdentity } from '../credit/identity.test-support.ts';
import { NodeVolunteer, trainUntil } from '../jobs/node-volunteer.test-support.ts';
import type { MeshgradServer } from '../server.ts';
import { startTestServer } from '../server.test-support.ts';
import { REFRESH_GAP_MS, RedisClusterLink, WORKER_TTL_MS } from './cluster.ts';
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
const sockets: Socket[] = [];
const ADMIN_TOKEN = 'test-admin-token-cluster-0123456789';

async function start(): Promise<MeshgradServer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'meshgrad-scale-'));
  dirs.push(dataDir);
  const server = await startTestServer({
    dataDir,
    jobs: [JOB],
    redis: redis.url,
    adminToken: ADMIN_TOKEN,
  });
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

/** A raw volunteer connection to `server`, closed after the tests. */
function socketTo(server: MeshgradServer): Socket {
  const s = connect(`${server.url}/volunteer`, { transports: ['websocket'], reconnection: false });
  sockets.push(s);
  return s;
}

afterAll(async () => {
  for (const s of sockets) s.disconnect();
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
    // B learns of them from A's announcement (ANNOUNCE_MS, then its refresh) or its next tick
    // (TICK_MS): a second or two, longer on a loaded machine.
    const jobB = b.jobs.get('blobs')!;
    await expect
      .poll(() => onA.every((v) => jobB.hasWorker(v.workerId)), { timeout: 10_000 })
      .toBe(true);
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

  it("bans from either process's console: the worker on the other is expelled, and its id and identity are refused cluster-wide", async () => {
    const a = await start();
    const b = await start();
    const me = await TestIdentity.make();
    const s = socketTo(b);
    const joined = await joinAs(s, me);
    const identity = identityId(me.publicKey);
    const jobA = a.jobs.get('blobs')!;
    await expect.poll(() => jobA.isRemote(joined.workerId), { timeout: 10_000 }).toBe(true);
    const banned = new Promise<{ message: string }>((resolve) => s.once('banned', resolve));
    // The host bans it from A's console, where it is not connected.
    const res = await fetch(`${a.url}/api/admin/jobs/blobs/workers/${joined.workerId}/ban`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(200);
    expect((await banned).message).toBe('banned by the host');
    expect(b.jobs.get('blobs')!.hasLocalWorker(joined.workerId)).toBe(false);
    // B shared the identity it proved (A could not know it): neither process takes the key
    // under a new worker id, nor the banned id without a key.
    for (const server of [a, b]) {
      const job = server.jobs.get('blobs')!;
      await expect.poll(() => job.isIdentityBanned(identity), { timeout: 5_000 }).toBe(true);
      const t = socketTo(server);
      const byKey = await helloWith(t, await me.proof(await askChallenge(t)));
      expect(byKey).toMatchObject({ ok: false, code: 'ERR_BANNED' });
      const byId = await helloWith(socketTo(server), undefined, joined.workerId);
      expect(byId).toMatchObject({ ok: false, code: 'ERR_BANNED' });
    }
    // A process that starts later learns the cluster's bans from Redis.
    const c = await start();
    expect(c.jobs.get('blobs')!.isBanned(joined.workerId)).toBe(true);
    expect(c.jobs.get('blobs')!.isIdentityBanned(identity)).toBe(true);
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

describe('the Redis registry at scale', () => {
  const connectTo = (url: string) => createClient({ url });
  type Client = ReturnType<typeof connectTo>;
  const clients: Array<{ close(): Promise<unknown>; destroy(): void }> = [];
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => c.destroy());
  });

  /** A client to the test's Redis whose top-level calls are counted by method name. */
  async function countingClient(): Promise<{ client: Client; calls: Map<string, number> }> {
    const client = connectTo(redis.url);
    await client.connect();
    clients.push(client);
    const calls = new Map<string, number>();
    const counted = new Proxy(client, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.set(String(prop), (calls.get(String(prop)) ?? 0) + 1);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    return { client: counted, calls };
  }

  const entry = (id: string, shard: number) => ({ id, shard }) as WorkerEntry;
  /** The live map of a process's workers, as `Job` passes its roster's. */
  const workers = (...list: WorkerEntry[]) => new Map(list.map((w) => [w.id, w]));
  const log = createLogger('silent');
  let job = 0;

  async function link(jobId: string, server: string) {
    const { client, calls } = await countingClient();
    const l = new RedisClusterLink(jobId, server, client as never, () => undefined, log);
    await l.load(1);
    return { link: l, calls };
  }

  it('a join writes one entry and reads nothing; a steady cluster does not read the registry', async () => {
    const jobId = `registry-${job++}`;
    const a = await link(jobId, 'server-a');
    const b = await link(jobId, 'server-b');
    const onA = Array.from({ length: 200 }, (_, i) => entry(`a-${i}`, i % 4));
    a.calls.clear();
    for (const w of onA) a.link.workerJoined(w);
    await a.link.sync(workers(...onA)); // the joins' transactions are written before this one
    // One transaction per join, and the tick's sync: no read of the registry, no rewrite.
    expect(a.calls.get('multi')).toBe(onA.length + 1);
    expect(a.calls.get('hGetAll') ?? 0).toBe(1); // the first sync reads it whole once
    // B learns A's workers at its next sync, and sees them on their shards.
    expect(await b.link.sync(workers())).toBe(true);
    expect(b.link.remote.size).toBe(onA.length);
    expect(b.link.remote.get('a-7')).toMatchObject({ server: 'server-a', shard: 3 });
    // Nothing changed since: neither process reads the registry again.
    a.calls.clear();
    b.calls.clear();
    for (let i = 0; i < 3; i++) {
      expect(await a.link.sync(workers(...onA))).toBe(false);
      expect(await b.link.sync(workers())).toBe(false);
    }
    expect(a.calls.get('hGetAll') ?? 0).toBe(0);
    expect(b.calls.get('hGetAll') ?? 0).toBe(0);
    // A leave is one change: B reads again and drops that worker.
    a.link.workerLeft('a-0');
    await expect
      .poll(async () => (await b.link.sync(workers()), b.link.remote.has('a-0')))
      .toBe(false);
    expect(b.link.remote.size).toBe(onA.length - 1);
  });

  it('drops the workers of a process whose heartbeat stopped, and its entries with them', async () => {
    const jobId = `registry-${job++}`;
    const a = await link(jobId, 'server-a');
    const b = await link(jobId, 'server-b');
    a.link.workerJoined(entry('a-1', 0));
    b.link.workerJoined(entry('b-1', 1));
    await a.link.sync(workers(entry('a-1', 0)));
    await b.link.sync(workers(entry('b-1', 1)));
    expect([...b.link.remote.keys()]).toEqual(['a-1']);
    // A's process died WORKER_TTL_MS ago: its heartbeat is that old.
    const admin = (await countingClient()).client;
    await admin.hSet(
      `meshgrad:job:${jobId}:servers`,
      'server-a',
      String(Date.now() - WORKER_TTL_MS - 1_000),
    );
    expect(await b.link.sync(workers(entry('b-1', 1)))).toBe(true);
    expect(b.link.remote.size).toBe(0);
    expect(await admin.hKeys(`meshgrad:job:${jobId}:workers`)).toEqual(['b-1']);
    expect(await admin.hKeys(`meshgrad:job:${jobId}:servers`)).toEqual(['server-b']);
  });

  it('a process taken for dead (its ticks stalled) writes its entries again once it is back', async () => {
    const jobId = `registry-${job++}`;
    const a = await link(jobId, 'server-a');
    const b = await link(jobId, 'server-b');
    const onA = workers(entry('a-1', 0), entry('a-2', 1));
    for (const w of onA.values()) a.link.workerJoined(w);
    await a.link.sync(onA);
    const admin = (await countingClient()).client;
    await admin.hSet(
      `meshgrad:job:${jobId}:servers`,
      'server-a',
      String(Date.now() - WORKER_TTL_MS - 1_000),
    );
    // B drops A's entries; A, back, sees the registry changed and what it lacks, and the
    // following sync writes its workers again: B lists them once more.
    await b.link.sync(workers());
    expect(await admin.hLen(`meshgrad:job:${jobId}:workers`)).toBe(0);
    await a.link.sync(onA);
    await a.link.sync(onA);
    expect((await admin.hKeys(`meshgrad:job:${jobId}:workers`)).sort()).toEqual(['a-1', 'a-2']);
    await b.link.sync(workers());
    expect([...b.link.remote.keys()].sort()).toEqual(['a-1', 'a-2']);
  });

  it('keeps the entry of a worker that joined while a sync waited on Redis', async () => {
    const jobId = `registry-${job++}`;
    const a = await link(jobId, 'server-a');
    const b = await link(jobId, 'server-b');
    const onA = workers(entry('a-1', 0));
    a.link.workerJoined(entry('a-1', 0));
    await a.link.sync(onA);
    // B's join changes the registry, so A's next sync reads it whole. That sync starts with one
    // worker; a second joins (the roster holds it) before the reply.
    const onB = workers(entry('b-1', 0));
    b.link.workerJoined(entry('b-1', 0));
    await b.link.sync(onB);
    const syncing = a.link.sync(onA);
    const late = entry('a-2', 1);
    onA.set(late.id, late);
    a.link.workerJoined(late);
    await syncing;
    // Its entry is still there: B lists it without waiting for A's next tick to write it again.
    await b.link.sync(onB);
    expect([...b.link.remote.keys()].sort()).toEqual(['a-1', 'a-2']);
  });

  it('a process that leaves cleanly takes its workers out at once, not those that moved on', async () => {
    const jobId = `registry-${job++}`;
    const a = await link(jobId, 'server-a');
    const b = await link(jobId, 'server-b');
    const onA = workers(entry('a-1', 0), entry('a-2', 1));
    for (const w of onA.values()) a.link.workerJoined(w);
    await a.link.sync(onA);
    // a-2's tab already failed over to B, which wrote its entry.
    const moved = workers(entry('a-2', 1));
    b.link.workerJoined(entry('a-2', 1));
    await b.link.sync(moved);
    expect([...b.link.remote.keys()]).toEqual(['a-1']);
    await a.link.leave();
    // Well inside WORKER_TTL_MS: B drops a-1 at its next sync and keeps its own a-2.
    expect(await b.link.sync(moved)).toBe(true);
    expect(b.link.remote.size).toBe(0);
    const admin = (await countingClient()).client;
    expect(await admin.hGetAll(`meshgrad:job:${jobId}:workers`)).toEqual({ 'a-2': '1 server-b' });
    expect(await admin.hKeys(`meshgrad:job:${jobId}:servers`)).toEqual(['server-b']);
  });

  it('sends a burst of credit as one transaction, and the job-wide total reaches every report', async () => {
    const jobId = `registry-${job++}`;
    const a = await link(jobId, 'server-a');
    a.calls.clear();
    const totals = await Promise.all(
      Array.from({ length: 500 }, (_, i) => a.link.addSamples(`w-${i % 50}`, 10, 10 * (i + 1))),
    );
    expect(a.calls.get('multi')).toBe(1);
    expect(new Set(totals)).toEqual(new Set([5_000]));
    expect(await a.link.samples()).toBe(5_000);
    // What a failing-over tab's new process reads: its last cumulative count.
    expect(await a.link.credited('w-49')).toBe(5_000);
  });

  it('follows a burst of announcements with one refresh, and one more after the gap', async () => {
    const jobId = `registry-${job++}`;
    const a = await link(jobId, 'server-a');
    let runs = 0;
    const refresh = () => {
      runs++;
      return new Promise<void>((r) => setTimeout(r, 50));
    };
    for (let i = 0; i < 50; i++) a.link.refreshSoon(refresh);
    await new Promise((r) => setTimeout(r, 20));
    expect(runs).toBe(1);
    await new Promise((r) => setTimeout(r, 50 + REFRESH_GAP_MS + 100));
    expect(runs).toBe(2);
    await new Promise((r) => setTimeout(r, 50 + REFRESH_GAP_MS + 100));
    expect(runs).toBe(2);
  });
});
