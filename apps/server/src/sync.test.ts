/**
 * Sync mode through the real server and socket.io (jobs/sync-rounds.ts): rounds reach the
 * workers of the round, the server applies the mean of their contributions, refuses bad ones,
 * and a worker that disconnects releases the barrier. Workers here are bare sockets that answer
 * with chosen vectors, so every value can be checked.
 */
import { expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import {
  PROTOCOL_VERSION,
  type Assignment,
  type HelloReply,
  type SyncRoundMessage,
} from '@meshgrad/core';
import type { MeshgradServer } from './server.ts';
import { EVALUATION_TIMEOUT_MS, ServerFixture, TEST_DEVICE } from './server.test-support.ts';
import { SYNC_SERVER_WORKER } from './jobs/job.ts';

const P = 3 * 4; // K-Means, 3 clusters × 4 dims
const job = {
  id: 'blobs-sync',
  name: 'Gaussian blobs, synchronous',
  model: { kind: 'kmeans', dims: 4, clusters: 3 },
  dataset: { kind: 'clusters', clusters: 3, dims: 4, count: 600, testCount: 300 },
  shards: 3,
  batchSize: 16,
  training: { mode: 'sync' },
};

const fixture = new ServerFixture('meshgrad-sync-');
let server: MeshgradServer;

async function start(spec: unknown = job): Promise<void> {
  server = await fixture.start({ jobs: [spec] });
}

/** A connected volunteer socket that queues the rounds it receives. */
async function volunteer(): Promise<{
  s: Socket;
  a: Assignment;
  round: () => Promise<SyncRoundMessage>;
}> {
  const s = fixture.socket();
  const queue: SyncRoundMessage[] = [];
  const waiters: Array<(m: SyncRoundMessage) => void> = [];
  s.on('syncRound', (m: SyncRoundMessage) => {
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const a = (await s.timeout(5_000).emitWithAck('hello', {
    protocolVersion: PROTOCOL_VERSION,
    device: TEST_DEVICE,
  })) as HelloReply;
  if (!a.ok) throw new Error(a.message);
  const round = () =>
    new Promise<SyncRoundMessage>((resolve) => {
      const m = queue.shift();
      if (m) resolve(m);
      else waiters.push(resolve);
    });
  return { s, a, round };
}

const values = (m: SyncRoundMessage) =>
  Array.from(new Float32Array(new Uint8Array(m.params as ArrayBuffer).slice().buffer));
const vector = (f: (i: number) => number) => Float32Array.from({ length: P }, (_, i) => f(i));
const bytes = (v: Float32Array) => new Uint8Array(v.buffer);

function refusal(s: Socket): Promise<{ event: string; code: string; message: string }> {
  return new Promise((resolve) => s.once('refused', resolve));
}

it('runs barrier rounds: mean applied, bad contributions refused, a disconnect releases the barrier, checkpoints are the server vector', async () => {
  await start();
  const A = await volunteer();
  expect(A.a.job.mode).toBe('sync');
  expect(A.a.neighbours).toEqual([]);
  const r1 = await A.round();
  expect(r1).toMatchObject({ jobId: job.id, round: 1, learningRate: 0.1 });
  expect(values(r1)).toHaveLength(P);

  // B joins mid-round: it waits for round 2.
  const B = await volunteer();
  expect(B.a.neighbours).toEqual([]);
  const one = vector((i) => i);
  A.s.emit('syncContribution', { jobId: job.id, round: 1, samples: 16, params: bytes(one) });
  const [a2, b2] = await Promise.all([A.round(), B.round()]);
  expect(a2.round).toBe(2);
  expect(b2.round).toBe(2);
  expect(values(a2)).toEqual(Array.from(one));

  // Bad contributions are refused with a reason and change nothing.
  let refused = refusal(B.s);
  B.s.emit('syncContribution', { jobId: job.id, round: 2, samples: 16, params: new Uint8Array(8) });
  expect(await refused).toMatchObject({
    event: 'syncContribution',
    code: 'ERR_INVALID_PAYLOAD',
    message: expect.stringMatching(/^params: must be 12 float32 values/),
  });
  refused = refusal(B.s);
  B.s.emit('syncContribution', {
    jobId: job.id,
    round: 2,
    samples: 16,
    params: bytes(vector((i) => (i === 5 ? NaN : 0))),
  });
  expect(await refused).toMatchObject({ code: 'ERR_INVALID_PAYLOAD', message: /value 5/ });
  refused = refusal(B.s);
  B.s.emit('syncContribution', { jobId: job.id, round: 1, samples: 16, params: bytes(one) });
  expect(await refused).toMatchObject({ code: 'ERR_UNEXPECTED', message: /^round: 1/ });
  refused = refusal(B.s);
  B.s.emit('syncContribution', { jobId: job.id, round: 2, samples: -1, params: bytes(one) });
  expect(await refused).toMatchObject({ code: 'ERR_INVALID_PAYLOAD', message: /^samples/ });

  const two = vector((i) => 2 * i + 1);
  const four = vector((i) => -i);
  A.s.emit('syncContribution', { jobId: job.id, round: 2, samples: 16, params: bytes(two) });
  B.s.emit('syncContribution', { jobId: job.id, round: 2, samples: 16, params: bytes(four) });
  const [a3, b3] = await Promise.all([A.round(), B.round()]);
  expect(a3.round).toBe(3);
  expect(values(b3)).toEqual(Array.from(vector((i) => (2 * i + 1 - i) / 2)));

  // B leaves mid-round 3 after A answered: the round finishes with A alone.
  const j = server.jobs.get(job.id);
  if (j?.training.kind !== 'sync') throw new Error('job has no round coordinator');
  const rounds = j.training.rounds;
  const five = vector(() => 5);
  A.s.emit('syncContribution', { jobId: job.id, round: 3, samples: 16, params: bytes(five) });
  await expect.poll(() => rounds.pending()).toEqual([B.a.workerId]);
  B.s.disconnect();
  const a4 = await A.round();
  expect(a4.round).toBe(4);
  expect(values(a4)).toEqual(Array.from(five));

  // A checkpoint stores and evaluates the server's own vector.
  expect(server.requestCheckpoint(job.id)).not.toBeNull();
  await expect
    .poll(() => j.latest?.worker, { timeout: EVALUATION_TIMEOUT_MS })
    .toBe(SYNC_SERVER_WORKER);
  expect(Array.from(j.checkpointParams().params)).toEqual(Array.from(five));
  expect(j.latest?.testObjective).toBeGreaterThan(0);
  // Nothing new since: no duplicate checkpoint.
  expect(server.requestCheckpoint(job.id)).toBeNull();

  // Pausing the job from the admin API holds rounds; resuming starts the next.
  const control = (state: string, learningRate: number) =>
    fetch(`${server.url}/api/admin/jobs/${job.id}/control`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ state, learningRate }),
    });
  expect((await control('paused', 0.1)).status).toBe(200);
  A.s.emit('syncContribution', { jobId: job.id, round: 4, samples: 16, params: bytes(one) });
  await expect.poll(() => rounds.inProgress).toBe(false);
  expect(rounds.round).toBe(4);
  expect((await control('running', 0.05)).status).toBe(200);
  const a5 = await A.round();
  expect(a5).toMatchObject({ round: 5, learningRate: 0.05 });
  expect(values(a5)).toEqual(Array.from(one));
});

it('a worker that pauses leaves the round; a stuck one is dropped after the round timeout', async () => {
  await start({ ...job, training: { mode: 'sync', roundTimeoutSec: 1.5 } });
  const A = await volunteer();
  const B = await volunteer();
  const j = server.jobs.get(job.id);
  if (j?.training.kind !== 'sync') throw new Error('job has no round coordinator');
  const rounds = j.training.rounds;
  // Both are in round 2 (B joined during round 1, which A alone finishes).
  await A.round();
  A.s.emit('syncContribution', {
    jobId: job.id,
    round: 1,
    samples: 16,
    params: bytes(vector(() => 1)),
  });
  await Promise.all([A.round(), B.round()]);
  expect(rounds.round).toBe(2);

  // B reports that it paused: round 2 no longer waits for it, and round 3 is A's alone.
  const stats = (paused: boolean) => ({
    jobId: job.id,
    samples: 0,
    samplesPerSec: 0,
    offered: 0,
    accepted: 0,
    paused,
    links: [],
  });
  B.s.emit('stats', stats(true));
  await expect.poll(() => j.workers.get(B.a.workerId)?.paused).toBe(true);
  A.s.emit('syncContribution', {
    jobId: job.id,
    round: 2,
    samples: 16,
    params: bytes(vector(() => 2)),
  });
  expect((await A.round()).round).toBe(3);
  expect(rounds.pending()).toEqual([A.a.workerId]);

  // B resumes and takes part from round 4; then it stays silent, and the server's tick drops it.
  B.s.emit('stats', stats(false));
  await expect.poll(() => j.workers.get(B.a.workerId)?.paused).toBe(false);
  A.s.emit('syncContribution', {
    jobId: job.id,
    round: 3,
    samples: 16,
    params: bytes(vector(() => 3)),
  });
  const [a4, b4] = await Promise.all([A.round(), B.round()]);
  expect([a4.round, b4.round]).toEqual([4, 4]);
  A.s.emit('syncContribution', {
    jobId: job.id,
    round: 4,
    samples: 16,
    params: bytes(vector(() => 4)),
  });
  const [a5, b5] = await Promise.all([A.round(), B.round()]);
  expect([a5.round, b5.round]).toEqual([5, 5]);
  expect(values(a5)).toEqual(Array.from(vector(() => 4)));
});
