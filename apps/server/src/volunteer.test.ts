/**
 * The volunteer socket layer against clients that do not play by the rules: real server, real
 * socket.io clients. Worker ids are the server's and stay bound to their socket; relays go only
 * to neighbours and within a quota; an event carries a bounded number of attachments.
 */
import { describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import {
  MAX_RELAY_BYTES,
  PROTOCOL_VERSION,
  type Assignment,
  type ErrorReply,
} from '@meshgrad/core';
import type { MeshgradServer } from './server.ts';
import { ServerFixture, TEST_DEVICE } from './server.test-support.ts';
import { stats } from './jobs/job.test-support.ts';
import { RELAY_BURST_BYTES } from './relay-quota.ts';

const JOB = {
  id: 'blobs',
  name: 'blobs',
  model: { kind: 'kmeans', dims: 4, clusters: 3 },
  dataset: { kind: 'clusters', clusters: 3, dims: 4, count: 300, testCount: 100 },
  shards: 2,
};

const fixture = new ServerFixture('meshgrad-volunteer-');
let server: MeshgradServer;

async function hello(s: Socket, workerId?: string): Promise<Assignment | ErrorReply> {
  return (await s.timeout(5_000).emitWithAck('hello', {
    protocolVersion: PROTOCOL_VERSION,
    device: TEST_DEVICE,
    ...(workerId !== undefined ? { workerId } : {}),
  })) as Assignment | ErrorReply;
}

async function join(workerId?: string): Promise<{ s: Socket; a: Assignment }> {
  const s = fixture.socket();
  const a = await hello(s, workerId);
  if (!a.ok) throw new Error(`hello refused: ${a.code}: ${a.message}`);
  return { s, a };
}

type Refused = ErrorReply & { event: string };
const refusals = (s: Socket): Refused[] => {
  const out: Refused[] = [];
  s.on('refused', (r: Refused) => out.push(r));
  return out;
};

describe('worker ids', () => {
  it('are issued by the server: a client cannot choose one of its own', async () => {
    server = await fixture.start({ jobs: [JOB] });
    const { a } = await join('i-chose-this');
    expect(a.workerId).not.toBe('i-chose-this');
    expect(a.workerId).toMatch(/^w-[0-9a-f]{12}$/);
  });

  it('stay bound to their socket: a dropped worker rejoins on it, nobody else takes its id', async () => {
    server = await fixture.start({ jobs: [JOB] });
    const job = server.jobs.get('blobs')!;
    const first = await join();
    const id = first.a.workerId;
    // Dropped for silence, as the tick does, while its socket stays connected.
    job.leave(id, 'stale');
    expect(job.hasLocalWorker(id)).toBe(false);

    // Another client asks for that id: it gets one of its own.
    const thief = await join(id);
    expect(thief.a.workerId).not.toBe(id);

    // The dropped worker says hello again on the same socket and is back under its id.
    const again = await hello(first.s);
    expect(again).toMatchObject({ ok: true, workerId: id });
    first.s.emit('stats', stats(40));
    await expect.poll(() => job.workers.get(id)?.contributed).toBe(40);
    // The thief's disconnect unjoins only the thief.
    thief.s.disconnect();
    await expect.poll(() => job.hasLocalWorker(thief.a.workerId)).toBe(false);
    expect(job.hasLocalWorker(id)).toBe(true);
  });
});

describe('relays', () => {
  it('go only to neighbours', async () => {
    server = await fixture.start({ jobs: [{ ...JOB, neighbours: 1 }] });
    const workers = [await join(), await join(), await join()];
    const job = server.jobs.get('blobs')!;
    // With one neighbour each on a ring of three, some worker is not a neighbour of another.
    let pair: [(typeof workers)[number], (typeof workers)[number]] | null = null;
    for (const x of workers) {
      for (const y of workers) {
        const xs = job.workers.get(x.a.workerId)!.neighbours;
        if (x !== y && !xs.includes(y.a.workerId)) pair = [x, y];
      }
    }
    expect(pair).not.toBeNull();
    const [from, to] = pair!;
    const refused = refusals(from.s);
    let delivered = 0;
    to.s.on('relay', () => delivered++);
    from.s.emit('relay', { to: to.a.workerId, data: new Uint8Array([1, 2, 3]) });
    await expect.poll(() => refused.length).toBe(1);
    expect(refused[0]).toMatchObject({ event: 'relay', code: 'ERR_UNKNOWN_PEER' });
    expect(refused[0]?.message).toMatch(/not a neighbour/);
    expect(delivered).toBe(0);
  });

  it('are refused over the sender’s quota with a clear error, and what got through is bounded', async () => {
    server = await fixture.start({ jobs: [JOB] });
    const a = await join();
    const b = await join();
    const refused = refusals(a.s);
    let bytes = 0;
    b.s.on('relay', (m: { data: ArrayBuffer }) => (bytes += m.data.byteLength));
    const block = new Uint8Array(MAX_RELAY_BYTES);
    const sent = Math.ceil((4 * RELAY_BURST_BYTES) / MAX_RELAY_BYTES);
    for (let i = 0; i < sent; i++) a.s.emit('relay', { to: b.a.workerId, data: block });
    await expect.poll(() => refused.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(refused[0]).toMatchObject({ event: 'relay', code: 'ERR_RATE_LIMITED' });
    expect(refused[0]?.message).toMatch(/quota/);
    // Every relay was either refused or delivered, and the deliveries stayed near the burst.
    await expect
      .poll(() => refused.length + bytes / MAX_RELAY_BYTES, { timeout: 10_000 })
      .toBe(sent);
    expect(bytes).toBeLessThan(2 * RELAY_BURST_BYTES);
  });
});

describe('attachments', () => {
  it('an event with more binary attachments than any message needs closes that connection only', async () => {
    server = await fixture.start({ jobs: [JOB] });
    const a = await join();
    const b = await join();
    const closed = new Promise<string>((resolve) => a.s.on('disconnect', resolve));
    const big = () => new Uint8Array(1024);
    a.s.emit('relay', { to: b.a.workerId, data: big(), more: [big(), big(), big()] });
    expect(await closed).toBeTruthy();
    // The server carries on for everyone else.
    const c = await join();
    expect(c.a.ok).toBe(true);
  });
});
