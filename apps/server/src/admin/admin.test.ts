import { describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import {
  decodeSafetensors,
  importParameters,
  PROTOCOL_VERSION,
  type Assignment,
} from '@meshgrad/core';
import type { MeshgradServer } from '../server.ts';
import { nextEvent, ServerFixture, uploadState } from '../server.test-support.ts';
import { TokenCheck } from './auth.ts';
import type {
  AdminCheckpoint,
  AdminError,
  AdminJobSnapshot,
  AdminJobSummary,
  AdminMetricsHistory,
  AdminWatchReply,
} from '@meshgrad/core';
import { fieldError } from './service.ts';
import { parseJobSpec } from '../jobs/job-spec.ts';
// The console's new-job form (pure, no DOM): its specs must be ones this server accepts.
import { formToSpec, initialValues } from '../../../client/src/admin/spec-form.ts';

const TOKEN = 'test-admin-token-0123456789';

const clustersJob = {
  id: 'blobs',
  name: 'Gaussian blobs',
  model: { kind: 'kmeans', dims: 4, clusters: 3 },
  dataset: { kind: 'clusters', clusters: 3, dims: 4, count: 600, testCount: 300 },
  shards: 3,
  batchSize: 16,
  blockSize: 4,
  communication: { communicationPeriod: 64, blocksPerMessage: 1, encoding: 'f32' },
};

const device = { backend: 'cpu', userAgent: 'vitest <script>alert(1)</script>' } as const;

const fixture = new ServerFixture('meshgrad-admin-test-');
let server: MeshgradServer;

async function start(): Promise<MeshgradServer> {
  server = await fixture.start({ jobs: [clustersJob], adminToken: TOKEN });
  return server;
}

function api(
  route: string,
  init: { method?: string; body?: unknown; token?: string | null; type?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {};
  const token = init.token === undefined ? TOKEN : init.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (init.body !== undefined) headers['content-type'] = init.type ?? 'application/json';
  return fetch(`${server.url}${route}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    ...(init.body !== undefined
      ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }
      : {}),
  });
}

async function json<T>(res: Promise<Response> | Response): Promise<T> {
  return (await (await res).json()) as T;
}

const volunteer = (): Socket => fixture.socket();

const adminSocket = (auth?: unknown): Socket =>
  fixture.socket('/admin', auth === undefined ? {} : { auth: auth as Record<string, unknown> });

async function join(s: Socket): Promise<Assignment> {
  const r = (await s
    .timeout(5_000)
    .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, device })) as Assignment;
  expect(r.ok).toBe(true);
  return r;
}

function stats(s: Socket, samples: number, extra: Record<string, unknown> = {}): void {
  s.emit('stats', {
    jobId: 'blobs',
    samples,
    samplesPerSec: 250,
    loss: 0.75,
    offered: 10,
    accepted: 4,
    paused: false,
    links: [],
    ...extra,
  });
}

describe('TokenCheck', () => {
  it('accepts only the exact token, whatever the length of the guess', () => {
    const t = new TokenCheck('secret');
    expect(t.check('secret')).toBe('ok');
    expect(t.check('secret ')).toBe('wrong');
    expect(t.check('s')).toBe('wrong');
    expect(t.check('x'.repeat(5000))).toBe('wrong');
    expect(t.check('')).toBe('missing');
    expect(t.check(undefined)).toBe('missing');
    expect(t.check(42)).toBe('missing');
    expect(() => new TokenCheck('')).toThrow();
  });
});

describe('fieldError', () => {
  it('splits validation messages into the field and the reason', () => {
    expect(fieldError('invalid job spec: model.inputs: MNIST has 784 features')).toEqual({
      field: 'model.inputs',
      message: 'MNIST has 784 features',
    });
    expect(fieldError('learningRate: must be > 0')).toEqual({
      field: 'learningRate',
      message: 'must be > 0',
    });
    expect(fieldError('(payload): Invalid input')).toEqual({ message: 'Invalid input' });
    expect(fieldError('invalid job spec: (spec): a job spec is a JSON object')).toEqual({
      message: 'a job spec is a JSON object',
    });
    expect(fieldError('something odd')).toEqual({ message: 'something odd' });
  });
});

describe("the console's new-job form", () => {
  it('builds specs the server accepts, for every field it has', () => {
    const values = {
      ...initialValues(),
      id: 'all',
      name: 'All fields',
      host: 'h',
      description: 'd',
      batchSize: '32',
      learningRate: '0.05',
      seed: '3',
      blockSize: '1000',
      shards: '4',
      neighbours: '2',
      checkpointIntervalSec: '5',
      'communication.communicationPeriod': '64',
      'communication.blocksPerMessage': '2',
    };
    expect(parseJobSpec(formToSpec(values))).toMatchObject({ batchSize: 32, shards: 4 });
    expect(parseJobSpec(formToSpec({ ...initialValues(), id: 'd', name: 'D' })).batchSize).toBe(64);
    const kmeans = {
      ...values,
      'model.kind': 'kmeans',
      'model.dims': '2',
      'model.clusters': '3',
      'dataset.kind': 'clusters',
      'dataset.clusters': '3',
      'dataset.dims': '2',
      'dataset.count': '100',
      'dataset.testCount': '50',
      'dataset.spread': '0.5',
      'dataset.seed': '9',
    };
    expect(parseJobSpec(formToSpec(kmeans)).dataset).toMatchObject({
      kind: 'clusters',
      count: 100,
    });
  });
});

describe('admin API and namespace', () => {
  it('refuses every route without the token (401) or with a wrong one (403), and leaks nothing', async () => {
    await start();
    const routes = [
      '/api/admin/session',
      '/api/admin/jobs',
      '/api/admin/jobs/blobs',
      '/api/admin/jobs/blobs/metrics',
      '/api/admin/jobs/blobs/checkpoints',
      '/api/admin/jobs/blobs/checkpoints/1.safetensors',
      '/api/admin/credit',
      '/api/admin/no-such-route',
      '/api/admin',
    ];
    for (const route of routes) {
      for (const [token, status] of [
        [null, 401],
        ['', 401],
        ['wrong', 403],
        [TOKEN.slice(0, -1), 403],
        [TOKEN + 'x', 403],
      ] as const) {
        const res = await api(route, { token });
        expect(res.status, `${route} with ${String(token)}`).toBe(status);
        const text = await res.text();
        expect(text).not.toMatch(/blobs|Gaussian|kmeans/);
        if (status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
    const basic = await fetch(`${server.url}/api/admin/jobs`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
    });
    expect(basic.status).toBe(401);
    // Writes without the token change nothing.
    const create = await api('/api/admin/jobs', {
      token: null,
      body: { ...clustersJob, id: 'sneaky' },
    });
    expect(create.status).toBe(401);
    const control = await api('/api/admin/jobs/blobs/control', {
      token: 'nope',
      body: { state: 'stopped' },
    });
    expect(control.status).toBe(403);
    expect(server.jobs.has('sneaky')).toBe(false);
    expect(server.jobs.get('blobs')?.state).toBe('running');

    for (const auth of [undefined, {}, { token: 'wrong' }, { token: 42 }]) {
      const s = adminSocket(auth);
      const got: string[] = [];
      s.onAny((event: string) => got.push(event));
      const err = await nextEvent<Error & { data?: { code: string } }>(s, 'connect_error');
      expect(err.message).toMatch(/admin token is (required|wrong)/);
      expect(['ERR_UNAUTHORIZED', 'ERR_FORBIDDEN']).toContain(err.data?.code);
      expect(s.connected).toBe(false);
      expect(got).toEqual([]);
    }
  });

  it('streams jobs, snapshots and metrics records of the watched job to a console with the token', async () => {
    await start();
    const a = volunteer();
    const ra = await join(a);
    stats(a, 400, {
      links: [
        {
          peer: 'w-peer',
          relayed: true,
          goodputBytesPerSec: 1200,
          rttMs: 35,
          backlogBytes: 0,
          blocksSent: 3,
          blocksReceived: 2,
          overwritten: 1,
          rejected: 0,
          acceptanceRate: 0.5,
          skippedSends: 0,
        },
      ],
    });
    const job = server.jobs.get('blobs');
    if (!job) throw new Error('job missing');
    await expect.poll(() => job.samples).toBe(400);

    const session = await json<{ ok: boolean; jobs: number }>(api('/api/admin/session'));
    expect(session).toMatchObject({ ok: true, jobs: 1 });
    const list = await json<{ jobs: AdminJobSummary[] }>(api('/api/admin/jobs'));
    expect(list.jobs[0]).toMatchObject({
      id: 'blobs',
      state: 'running',
      workers: 1,
      samples: 400,
      samplesPerSec: 250,
      trainLoss: 0.75,
      balancer: { mode: 'automatic' },
      defaultSettings: { communicationPeriod: 64, blocksPerMessage: 1, encoding: 'f32' },
      blockCount: 3,
      parameters: 12,
    });
    const snap = await json<AdminJobSnapshot>(api('/api/admin/jobs/blobs'));
    expect(snap.workers).toHaveLength(1);
    expect(snap.workers[0]).toMatchObject({
      id: ra.workerId,
      state: 'training',
      samplesPerSec: 250,
      contributed: 400,
      share: 1,
      device,
      links: [{ peer: 'w-peer', relayed: true, goodputBytesPerSec: 1200 }],
    });
    // The automatic balancer plans for the worker once it reports, and the console shows why.
    await expect
      .poll(async () => (await json<AdminJobSnapshot>(api('/api/admin/jobs/blobs'))).workers[0])
      .toMatchObject({
        settings: { encoding: expect.any(String) },
        balance: { reason: expect.any(String), congested: false },
      });

    const admin = adminSocket({ token: TOKEN });
    const jobs = await nextEvent<AdminJobSummary[]>(admin, 'jobs');
    expect(jobs.map((j) => j.id)).toEqual(['blobs']);
    const bad = (await admin.timeout(5_000).emitWithAck('watch', { jobId: 42 })) as AdminError;
    expect(bad).toMatchObject({ ok: false, code: 'ERR_INVALID_PAYLOAD' });
    expect(bad.message).toMatch(/^jobId: /);
    const unknown = (await admin
      .timeout(5_000)
      .emitWithAck('watch', { jobId: 'nope' })) as AdminError;
    expect(unknown).toMatchObject({ ok: false, code: 'ERR_NOT_FOUND' });
    const watched = (await admin
      .timeout(5_000)
      .emitWithAck('watch', { jobId: 'blobs' })) as AdminWatchReply;
    if (!watched.ok) throw new Error(watched.message);
    expect(watched.snapshot.workers[0]?.id).toBe(ra.workerId);
    const live = await nextEvent<AdminJobSnapshot>(admin, 'snapshot');
    expect(live.job.id).toBe('blobs');

    // A checkpoint appends a record; the console gets it with per-worker settings.
    type RecordMessage = { jobId: string; record: AdminMetricsHistory['history'][number] };
    const records: RecordMessage[] = [];
    admin.on('record', (m: RecordMessage) => records.push(m));
    const request = nextEvent<{ requestId: string }>(a, 'requestState');
    const asked = await api('/api/admin/jobs/blobs/checkpoints', { method: 'POST' });
    expect(asked.status).toBe(202);
    const { requestId } = await request;
    const { reply } = await uploadState(a, job, requestId, 400);
    expect(reply).toEqual({ ok: true });
    // The periodic record may come first; the checkpoint's follows at once.
    await expect.poll(() => records.some((m) => m.record.checkpoint === 1)).toBe(true);
    const r = records.find((m) => m.record.checkpoint === 1) as RecordMessage;
    expect(r.jobId).toBe('blobs');
    expect(r.record).toMatchObject({ checkpoint: 1, samples: 400, workers: 1 });
    // The settings are the balancer's, which may have changed since the join.
    expect(r.record.perWorker?.[ra.workerId]).toEqual({
      samplesPerSec: 250,
      communicationPeriod: expect.any(Number),
      blocksPerMessage: expect.any(Number),
      encoding: expect.any(String),
    });
    const history = await json<AdminMetricsHistory>(api('/api/admin/jobs/blobs/metrics'));
    expect(history.history.at(-1)).toEqual(r.record);
  });

  it('pauses, resumes, changes the learning rate and stops; volunteers hear each change', async () => {
    await start();
    const a = volunteer();
    await join(a);
    const controls: Array<{ state: string; learningRate: number }> = [];
    a.on('control', (c: { state: string; learningRate: number }) => controls.push(c));

    const post = (body: unknown) => api('/api/admin/jobs/blobs/control', { body });
    expect((await json<AdminJobSummary>(post({ state: 'paused' }))).state).toBe('paused');
    expect((await json<AdminJobSummary>(post({ learningRate: 0.02 }))).learningRate).toBe(0.02);
    expect(await json<AdminJobSummary>(post({ state: 'running' }))).toMatchObject({
      state: 'running',
      learningRate: 0.02,
    });
    await expect.poll(() => controls.length).toBe(3);
    expect(controls).toEqual([
      { state: 'paused', learningRate: 0.1 },
      { state: 'paused', learningRate: 0.02 },
      { state: 'running', learningRate: 0.02 },
    ]);

    for (const [body, field] of [
      [{ learningRate: -1 }, 'learningRate'],
      [{ learningRate: 'fast' }, 'learningRate'],
      [{ state: 'sleeping' }, 'state'],
      [{ state: 'paused', extra: 1 }, undefined],
      [{}, undefined],
    ] as const) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = await json<AdminError>(res);
      expect(err.code).toBe('ERR_INVALID_PAYLOAD');
      expect(err.field).toBe(field);
    }
    const notJson = await api('/api/admin/jobs/blobs/control', { body: '{state' });
    expect(notJson.status).toBe(400);
    const text = await api('/api/admin/jobs/blobs/control', { body: 'x', type: 'text/plain' });
    expect(text.status).toBe(415);
    const huge = await api('/api/admin/jobs/blobs/control', {
      body: JSON.stringify({ pad: 'x'.repeat(300_000) }),
    });
    expect(huge.status).toBe(413);
    expect((await api('/api/admin/jobs/nope/control', { body: { state: 'paused' } })).status).toBe(
      404,
    );
    expect((await api('/api/admin/jobs/blobs/control')).status).toBe(405);

    expect((await json<AdminJobSummary>(post({ state: 'stopped' }))).state).toBe('stopped');
    await expect.poll(() => controls.at(-1)?.state).toBe('stopped');
    const again = await post({ state: 'running' });
    expect(again.status).toBe(409);
    // The stop is on disk at once: a restart keeps the job stopped.
    fixture.disconnectAll();
    await server.close();
    await start();
    expect(server.jobs.get('blobs')?.state).toBe('stopped');
  });

  it('fixes or frees the balancer settings; workers get them now and on join', async () => {
    await start();
    const a = volunteer();
    await join(a);
    const settings = nextEvent<unknown>(a, 'settings');
    const fixed = { mode: 'fixed', communicationPeriod: 32, blocksPerMessage: 2, encoding: 'f16' };
    const res = await api('/api/admin/jobs/blobs/balancer', { body: fixed });
    expect(res.status).toBe(200);
    expect((await json<AdminJobSummary>(res)).balancer).toEqual({
      mode: 'fixed',
      settings: { communicationPeriod: 32, blocksPerMessage: 2, encoding: 'f16' },
    });
    expect(await settings).toEqual({
      communicationPeriod: 32,
      blocksPerMessage: 2,
      encoding: 'f16',
    });
    const b = await join(volunteer());
    expect(b.settings).toEqual({ communicationPeriod: 32, blocksPerMessage: 2, encoding: 'f16' });

    const tooMany = await json<AdminError>(
      api('/api/admin/jobs/blobs/balancer', { body: { ...fixed, blocksPerMessage: 4 } }),
    );
    expect(tooMany).toMatchObject({ code: 'ERR_INVALID_PAYLOAD', field: 'blocksPerMessage' });
    expect(tooMany.message).toMatch(/3 blocks/);
    const badEncoding = await json<AdminError>(
      api('/api/admin/jobs/blobs/balancer', { body: { ...fixed, encoding: 'f8' } }),
    );
    expect(badEncoding.field).toBe('encoding');
    const badMode = await json<AdminError>(
      api('/api/admin/jobs/blobs/balancer', { body: { mode: 'magic' } }),
    );
    expect(badMode.field).toBe('mode');

    // The mode survives a restart.
    fixture.disconnectAll();
    await server.close();
    await start();
    expect(server.jobs.get('blobs')?.balancer).toMatchObject({ mode: 'fixed' });
    const c = volunteer();
    const rc = await join(c);
    expect(rc.settings).toEqual({ communicationPeriod: 32, blocksPerMessage: 2, encoding: 'f16' });
    // Back to automatic: nothing changes on the switch; the balancer adapts the settings of
    // a worker once it reports.
    const received: unknown[] = [];
    c.on('settings', (s: unknown) => received.push(s));
    await api('/api/admin/jobs/blobs/balancer', { body: { mode: 'automatic' } });
    expect(received).toEqual([]);
    stats(c, 100);
    await expect.poll(() => received.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(received.at(-1)).toEqual(server.jobs.get('blobs')?.workers.get(rc.workerId)?.settings);
  });

  it('lists a worker its neighbours reject as suspected, with the evidence; a ban reaches every tab', async () => {
    await start();
    const [a, b, c] = [volunteer(), volunteer(), volunteer()];
    const [ra, rb, rc] = [await join(a), await join(b), await join(c)];
    const peerLink = (peer: string, blocksReceived: number, rejected: number) => ({
      peer,
      relayed: false,
      goodputBytesPerSec: 1000,
      backlogBytes: 0,
      blocksSent: 20,
      blocksReceived,
      overwritten: 0,
      rejected,
      skippedSends: 0,
    });
    // b and c rejected nearly everything a sent them; a took what they sent.
    stats(a, 100, { links: [peerLink(rb.workerId, 30, 0), peerLink(rc.workerId, 30, 0)] });
    stats(b, 100, { links: [peerLink(ra.workerId, 1, 40), peerLink(rc.workerId, 30, 0)] });
    stats(c, 100, { links: [peerLink(ra.workerId, 0, 38), peerLink(rb.workerId, 30, 0)] });
    const snapshot = async () => json<AdminJobSnapshot>(api('/api/admin/jobs/blobs'));
    await expect.poll(async () => (await snapshot()).suspects).toEqual([ra.workerId]);
    const workers = (await snapshot()).workers;
    expect(workers.find((w) => w.id === ra.workerId)?.suspicion).toEqual({
      reporters: 2,
      rejecting: 2,
      rejected: 78,
      received: 1,
      suspected: true,
    });
    expect(workers.find((w) => w.id === rb.workerId)?.suspicion?.suspected).toBe(false);
    // The snapshot pages through the workers, suspects first; a bad page is a field error.
    const page = await json<AdminJobSnapshot>(api('/api/admin/jobs/blobs?offset=1&limit=1'));
    expect(page).toMatchObject({ workerCount: 3, offset: 1, suspectCount: 1 });
    expect(page.workers.map((w) => w.id)).toEqual([rb.workerId]);
    const badPage = await api('/api/admin/jobs/blobs?limit=0');
    expect(badPage.status).toBe(400);
    expect(await json(badPage)).toMatchObject({ code: 'ERR_INVALID_PAYLOAD', field: 'limit' });

    expect(
      (
        await api(`/api/admin/jobs/blobs/workers/${ra.workerId}/ban`, {
          method: 'POST',
          token: null,
        })
      ).status,
    ).toBe(401);
    const unknown = await api('/api/admin/jobs/blobs/workers/w-000000000000/ban', {
      method: 'POST',
    });
    expect(unknown.status).toBe(404);
    expect((await json<AdminError>(unknown)).code).toBe('ERR_NOT_FOUND');

    const banned = nextEvent<{ message: string }>(a, 'banned');
    const closed = nextEvent<string>(a, 'disconnect');
    const bNeighbours = nextEvent<string[]>(b, 'neighbours');
    const cNeighbours = nextEvent<string[]>(c, 'neighbours');
    const res = await api(`/api/admin/jobs/blobs/workers/${ra.workerId}/ban`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ ok: true, worker: ra.workerId, banned: 1 });
    expect((await banned).message).toMatch(/banned/);
    expect(await closed).toBe('io server disconnect');
    // The others' neighbour lists no longer name it, so their tabs close the links to it.
    expect(await bNeighbours).toEqual([rc.workerId]);
    expect(await cNeighbours).toEqual([rb.workerId]);
    expect(server.jobs.get('blobs')?.hasWorker(ra.workerId)).toBe(false);
    expect((await snapshot()).workers.map((w) => w.id).sort()).toEqual(
      [rb.workerId, rc.workerId].sort(),
    );
    // Asking for the banned id again is refused; the tab may still join under a new id.
    const again = (await volunteer().timeout(5_000).emitWithAck('hello', {
      protocolVersion: PROTOCOL_VERSION,
      device,
      workerId: ra.workerId,
    })) as AdminError;
    expect(again).toMatchObject({ ok: false, code: 'ERR_BANNED' });
    expect(
      await api(`/api/admin/jobs/blobs/workers/${ra.workerId}/ban`, { method: 'POST' }).then(
        (r) => r.status,
      ),
    ).toBe(404);
  });

  it('creates jobs from a spec with field-named errors; they resume after a restart', async () => {
    await start();
    const create = (body: unknown) => api('/api/admin/jobs', { body });
    const spec = {
      id: 'more-blobs',
      name: 'More blobs',
      model: { kind: 'kmeans', dims: 2, clusters: 4 },
      dataset: { kind: 'clusters', clusters: 4, dims: 2, count: 200, testCount: 100 },
    };
    for (const [body, field] of [
      [{ ...spec, learningRate: 0 }, 'learningRate'],
      [{ ...spec, id: 'Bad Id' }, 'id'],
      [{ ...spec, name: undefined }, 'name'],
      [{ ...spec, model: { kind: 'kmeans', dims: 3, clusters: 4 } }, 'model'],
      [{ ...spec, dataset: { ...spec.dataset, count: -5 } }, 'dataset.count'],
      [{ ...spec, id: 'blobs' }, 'id'],
    ] as const) {
      const res = await create(body);
      expect([400, 409], JSON.stringify(body)).toContain(res.status);
      const err = await json<AdminError>(res);
      expect(err.field, JSON.stringify(err)).toBe(field);
    }
    expect([...server.jobs.keys()]).toEqual(['blobs']);
    const res = await create(spec);
    expect(res.status).toBe(201);
    expect(await json<AdminJobSummary>(res)).toMatchObject({
      id: 'more-blobs',
      state: 'running',
      parameters: 8,
    });
    expect((await json<{ jobs: AdminJobSummary[] }>(api('/api/admin/jobs'))).jobs).toHaveLength(2);
    expect((await create(spec)).status).toBe(409);

    await server.close();
    await start();
    expect([...server.jobs.keys()]).toEqual(['blobs', 'more-blobs']);
  });

  it('lists checkpoints and serves them as safetensors and raw float32', async () => {
    await start();
    const a = volunteer();
    await join(a);
    stats(a, 100);
    const job = server.jobs.get('blobs');
    if (!job) throw new Error('job missing');
    await expect.poll(() => job.samples).toBe(100);
    const none = await api('/api/admin/jobs/blobs/checkpoints/1.safetensors');
    expect(none.status).toBe(404);

    const uploads: Float32Array[] = [];
    for (let k = 1; k <= 2; k++) {
      const request = nextEvent<{ requestId: string }>(a, 'requestState');
      expect((await api('/api/admin/jobs/blobs/checkpoints', { method: 'POST' })).status).toBe(202);
      const { requestId } = await request;
      // States near the job's model, each its own: far ones would be refused as regressions.
      const { params } = await uploadState(a, job, requestId, 100, k / 64);
      uploads.push(params);
    }
    const { checkpoints } = await json<{ checkpoints: AdminCheckpoint[] }>(
      api('/api/admin/jobs/blobs/checkpoints'),
    );
    expect(checkpoints.map((c) => c.seq)).toEqual([1, 2]);
    expect(checkpoints[0]?.downloads.safetensors).toBe(
      '/api/admin/jobs/blobs/checkpoints/1.safetensors',
    );
    expect(checkpoints[0]?.testObjective).toBeGreaterThan(0);

    for (const c of checkpoints) {
      const st = await api(c.downloads.safetensors);
      expect(st.status).toBe(200);
      expect(st.headers.get('content-disposition')).toBe(
        `attachment; filename="blobs-checkpoint-${c.seq}.safetensors"`,
      );
      const file = decodeSafetensors(new Uint8Array(await st.arrayBuffer()));
      expect(file.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
        ['centres', 'F32', [3, 4]],
      ]);
      expect(file.metadata['meshgrad.checkpoint']).toBe(String(c.seq));
      expect(file.metadata['meshgrad.job']).toBe('blobs');
      expect(importParameters(job.layout, file)).toEqual(uploads[c.seq - 1]);

      const bin = await api(c.downloads.binary);
      expect(new Float32Array(await bin.arrayBuffer())).toEqual(uploads[c.seq - 1]);
      const cached = await api(c.downloads.binary, { method: 'GET' });
      const etag = cached.headers.get('etag') ?? '';
      const again = await fetch(server.url + c.downloads.binary, {
        headers: { authorization: `Bearer ${TOKEN}`, 'if-none-match': etag },
      });
      expect(again.status).toBe(304);
    }
  });
});
