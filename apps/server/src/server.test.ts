import { readFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import {
  decodeDataset,
  PROTOCOL_VERSION,
  type Assignment,
  type HelloReply,
  type OkReply,
} from '@meshgrad/core';
import type { MeshgradServer } from './server.ts';
import {
  nextEvent,
  ServerFixture,
  EVALUATION_TIMEOUT_MS,
  TEST_DEVICE,
  uploadState,
} from './server.test-support.ts';

const clustersJob = {
  id: 'blobs',
  name: 'Gaussian blobs',
  model: { kind: 'kmeans', dims: 4, clusters: 3 },
  dataset: { kind: 'clusters', clusters: 3, dims: 4, count: 600, testCount: 300 },
  shards: 3,
  batchSize: 16,
};

const fixture = new ServerFixture('meshgrad-test-');
let server: MeshgradServer;

async function start(jobs: unknown[] = [clustersJob]): Promise<MeshgradServer> {
  server = await fixture.start({ jobs });
  return server;
}

const client = (): Socket => fixture.socket();

function hello(
  s: Socket,
  payload: unknown = { protocolVersion: PROTOCOL_VERSION, device: TEST_DEVICE },
): Promise<HelloReply> {
  return s.timeout(5_000).emitWithAck('hello', payload) as Promise<HelloReply>;
}

describe('job server', () => {
  it('serves health, metrics and public job info', async () => {
    await start();
    const health = await (await fetch(`${server.url}/healthz`)).json();
    expect(health).toMatchObject({ ok: true, jobs: 1, workers: 0 });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('meshgrad_workers');
    expect(metrics).toContain('meshgrad_rejected_messages_total');
    const { jobs } = (await (await fetch(`${server.url}/api/jobs`)).json()) as { jobs: unknown[] };
    expect(jobs[0]).toMatchObject({ id: 'blobs', model: { kind: 'kmeans' } });
  });

  it('assigns a job, a shard and neighbours; shards and checkpoints download and are cacheable', async () => {
    await start();
    const a = client();
    const b = client();
    const ra = (await hello(a)) as Assignment;
    const neighboursOfA = nextEvent<string[]>(a, 'neighbours');
    const rb = (await hello(b)) as Assignment;
    expect(ra.ok && rb.ok).toBe(true);
    expect(rb.neighbours).toEqual([ra.workerId]);
    expect(await neighboursOfA).toEqual([rb.workerId]);
    expect(ra.shard.index).not.toBe(rb.shard.index);

    const res = await fetch(server.url + ra.shard.url);
    expect(res.headers.get('cache-control')).toMatch(/max-age/);
    const shard = decodeDataset(new Uint8Array(await res.arrayBuffer()));
    expect(shard.count).toBe(ra.shard.samples);
    expect(shard.features).toBe(4);
    const again = await fetch(server.url + ra.shard.url, {
      headers: { 'if-none-match': res.headers.get('etag') ?? '' },
    });
    expect(again.status).toBe(304);

    const weights = await fetch(server.url + ra.checkpoint.url);
    expect((await weights.arrayBuffer()).byteLength).toBe(3 * 4 * 4);
    expect(server.jobs.get('blobs')?.workers.size).toBe(2);
  });

  it('answers malformed, oversized and out-of-order messages with errors and keeps working', async () => {
    await start();
    const s = client();
    await new Promise<void>((r) => s.once('connect', () => r()));
    const refused = nextEvent<{ event: string; code: string }>(s, 'refused');
    s.emit('stats', { jobId: 'blobs', samples: 1 });
    expect(await refused).toMatchObject({ event: 'stats', code: 'ERR_NOT_JOINED' });

    const bad = await hello(s, {
      protocolVersion: PROTOCOL_VERSION,
      device: { backend: 'tpu', userAgent: 'x' },
    });
    expect(bad).toMatchObject({ ok: false, code: 'ERR_INVALID_PAYLOAD' });
    if (!bad.ok) expect(bad.message).toContain('device.backend');
    const old = await hello(s, { protocolVersion: 0, device: TEST_DEVICE });
    expect(old).toMatchObject({ ok: false, code: 'ERR_PROTOCOL_VERSION' });

    const ok = await hello(s);
    expect(ok.ok).toBe(true);
    const refusedRelay = nextEvent<{ event: string; code: string; message: string }>(s, 'refused');
    s.emit('relay', { to: 'nobody', data: new Uint8Array(300_000) });
    expect(await refusedRelay).toMatchObject({ event: 'relay', code: 'ERR_INVALID_PAYLOAD' });
    const refusedStats = nextEvent<{ code: string; message: string }>(s, 'refused');
    s.emit('stats', {
      jobId: 'blobs',
      samples: -5,
      samplesPerSec: 1,
      offered: 0,
      accepted: 0,
      paused: false,
      links: [],
    });
    expect((await refusedStats).message).toMatch(/^samples: /);

    const upload = (await s.timeout(EVALUATION_TIMEOUT_MS).emitWithAck('state', {
      requestId: 'r-nothing',
      jobId: 'blobs',
      samples: 0,
      params: new Uint8Array(48),
    })) as OkReply;
    expect(upload).toMatchObject({ ok: false, code: 'ERR_INVALID_PAYLOAD' });

    // Still serving: another volunteer joins fine, and the refusals were counted.
    expect((await hello(client())).ok).toBe(true);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(
      /meshgrad_rejected_messages_total\{event="relay",code="ERR_INVALID_PAYLOAD"\} 1/,
    );
  });

  it('relays state messages between workers of a job and counts the bytes', async () => {
    await start();
    const a = client();
    const b = client();
    const ra = (await hello(a)) as Assignment;
    const rb = (await hello(b)) as Assignment;
    const got = nextEvent<{ from: string; data: ArrayBuffer }>(b, 'relay');
    a.emit('relay', { to: rb.workerId, data: new Uint8Array([1, 2, 3, 4]) });
    const m = await got;
    expect(m.from).toBe(ra.workerId);
    expect([...new Uint8Array(m.data)]).toEqual([1, 2, 3, 4]);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/meshgrad_relayed_bytes_total 4/);
  });

  it('stores an uploaded state as an evaluated checkpoint and resumes from it after a restart', async () => {
    await start();
    const s = client();
    const a = (await hello(s)) as Assignment;
    s.emit('stats', {
      jobId: 'blobs',
      samples: 500,
      samplesPerSec: 100,
      loss: 1.5,
      offered: 0,
      accepted: 0,
      paused: false,
      links: [],
    });
    const job = server.jobs.get('blobs');
    if (!job) throw new Error('job missing');
    await expect.poll(() => job.samples).toBe(500);
    const request = nextEvent<{ requestId: string }>(s, 'requestState');
    expect(server.requestCheckpoint('blobs')).not.toBeNull();
    const { requestId } = await request;
    const { reply, params } = await uploadState(s, job, requestId, 500);
    expect(reply).toEqual({ ok: true });
    expect(job.latest).toMatchObject({ seq: 1, samples: 500 });
    expect(job.latest?.testObjective).toBeGreaterThan(0);
    const history = (await (await fetch(`${server.url}/api/jobs/blobs/metrics`)).json()) as {
      history: unknown[];
    };
    expect(history.history.at(-1)).toMatchObject({ checkpoint: 1, samples: 500 });
    void a;

    // Restart on the same data directory: the job resumes with its samples and checkpoint.
    fixture.disconnectAll();
    await server.close();
    await start();
    const resumed = server.jobs.get('blobs');
    expect(resumed?.samples).toBe(500);
    expect(resumed?.latest?.seq).toBe(1);
    const again = (await hello(client())) as Assignment;
    expect(again.checkpoint.url).toMatch(/checkpoints\/1$/);
    const w = new Float32Array(
      await (await fetch(server.url + again.checkpoint.url)).arrayBuffer(),
    );
    expect(w[0]).toBe(params[0]);
  });

  it('has every event on disk once close resolves, the leaves of the sockets it closed too', async () => {
    await start();
    const a = (await hello(client())) as Assignment;
    await server.close();
    const events = await readFile(
      path.join(fixture.dataDir, 'jobs', 'blobs', 'events.jsonl'),
      'utf8',
    );
    const lines = events
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; worker?: string });
    expect(lines.filter((e) => e.worker === a.workerId).map((e) => e.event)).toEqual([
      'join',
      'leave',
    ]);
  });

  it('closes while a client holds a request open, and that client sees its connection end', async () => {
    await start();
    // An admin's job spec, headers and part of the body, the rest never sent (a link that went
    // quiet): the server reads the body before it answers.
    // Without a bound the close waits for Node's request timeout (5 minutes).
    const held = netConnect(server.port, '127.0.0.1');
    await new Promise<void>((resolve) => held.once('connect', () => resolve()));
    const ended = new Promise<void>((resolve) => held.once('close', () => resolve()));
    held.resume(); // read what the server answers, so the socket can end
    held.write(
      'POST /api/admin/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Authorization: Bearer ${server.adminToken}\r\nContent-Length: 1000\r\n\r\n{"id":`,
    );
    // The server has the request once its headers are parsed; give it a turn to read them.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await server.close();
    await ended;
    expect(held.destroyed).toBe(true);
  }, 20_000);
});
