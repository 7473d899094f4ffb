/**
 * WebRTC signaling through the job server and ICE configuration in the assignment: real server,
 * real socket.io clients (no browser; the e2e p2p spec covers real data channels).
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, type Assignment, type IceReply, type SignalIn } from '@meshgrad/core';
import type { MeshgradServer, ServerOptions } from './server.ts';
import { nextEvent as next, ServerFixture, TEST_DEVICE } from './server.test-support.ts';

const job = (id: string) => ({
  id,
  name: `blobs ${id}`,
  model: { kind: 'kmeans', dims: 4, clusters: 3 },
  dataset: { kind: 'clusters', clusters: 3, dims: 4, count: 300, testCount: 100 },
  shards: 2,
});

const offer = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' };

const fixture = new ServerFixture('meshgrad-signal-');
let server: MeshgradServer;

async function start(options: Partial<ServerOptions> = {}): Promise<void> {
  server = await fixture.start({ jobs: [job('one')], ...options });
}

async function join(): Promise<{ s: Socket; a: Assignment }> {
  const s = fixture.socket();
  const a = (await s.timeout(5_000).emitWithAck('hello', {
    protocolVersion: PROTOCOL_VERSION,
    device: TEST_DEVICE,
  })) as Assignment;
  expect(a.ok).toBe(true);
  return { s, a };
}

describe('signaling relay', () => {
  it('forwards offers and candidates to a worker of the same job, with the sender named', async () => {
    await start();
    const x = await join();
    const y = await join();
    const got = next<SignalIn>(y.s, 'signal');
    x.s.emit('signal', { to: y.a.workerId, data: offer });
    expect(await got).toEqual({ from: x.a.workerId, data: offer });
    const candidate = {
      type: 'candidate',
      candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' },
    };
    const got2 = next<SignalIn>(x.s, 'signal');
    y.s.emit('signal', { to: x.a.workerId, data: candidate });
    expect(await got2).toEqual({ from: y.a.workerId, data: candidate });
  });

  it('refuses malformed, oversized, self-addressed and cross-job signals with named errors', async () => {
    await start({ jobs: [job('one'), job('two')] });
    const x = await join();
    // Stop job one so the next volunteer lands in job two.
    server.jobs.get('one')?.setControl('stopped', 0.1);
    const other = await join();
    expect(other.a.job.id).toBe('two');
    const refusals: Array<{ event: string; code: string; message: string }> = [];
    x.s.on('refused', (e: (typeof refusals)[number]) => refusals.push(e));
    const leaked: unknown[] = [];
    other.s.on('signal', (m: unknown) => leaked.push(m));

    x.s.emit('signal', { to: other.a.workerId, data: offer });
    x.s.emit('signal', { to: x.a.workerId, data: offer });
    x.s.emit('signal', { to: other.a.workerId, data: { type: 'offer', sdp: 'x'.repeat(20_000) } });
    x.s.emit('signal', { to: other.a.workerId, data: { type: 'renegotiate', renegotiate: true } });
    x.s.emit('signal', 'garbage');
    await expect.poll(() => refusals.length, { timeout: 5_000 }).toBe(5);
    expect(refusals.map((r) => r.code)).toEqual([
      'ERR_UNKNOWN_PEER',
      'ERR_UNKNOWN_PEER',
      'ERR_INVALID_PAYLOAD',
      'ERR_INVALID_PAYLOAD',
      'ERR_INVALID_PAYLOAD',
    ]);
    expect(refusals[2]?.message).toMatch(/^data\.sdp: /);
    expect(refusals.every((r) => r.event === 'signal')).toBe(true);
    expect(leaked).toEqual([]);
  });

  it('refuses signals before hello', async () => {
    await start();
    const s = fixture.socket();
    const refused = next<{ event: string; code: string }>(s, 'refused');
    s.emit('signal', { to: 'w-x', data: offer });
    expect(await refused).toMatchObject({ event: 'signal', code: 'ERR_NOT_JOINED' });
  });
});

describe('ICE configuration', () => {
  it('gives no ICE servers by default', async () => {
    await start();
    const { a } = await join();
    expect(a.ice).toEqual({ iceServers: [] });
  });

  it('hands out STUN and TURN with minted credentials in the assignment and on request', async () => {
    await start({
      iceServers: [{ urls: 'stun:127.0.0.1:3478' }],
      turnUrls: ['turn:127.0.0.1:3478?transport=udp'],
      turnSecret: 'sekrit',
      turnTtlSec: 300,
    });
    const { s, a } = await join();
    const turn = a.ice?.iceServers[1];
    expect(a.ice?.iceServers[0]).toEqual({ urls: 'stun:127.0.0.1:3478' });
    expect(turn?.username).toMatch(new RegExp(`^\\d+:${a.workerId}$`));
    const expiry = Number(turn?.username?.split(':')[0]);
    expect(expiry * 1000 - Date.now()).toBeGreaterThan(290_000);
    expect(expiry * 1000 - Date.now()).toBeLessThanOrEqual(300_000);
    expect(turn?.credential).toBe(
      createHmac('sha1', 'sekrit')
        .update(turn?.username ?? '')
        .digest('base64'),
    );
    const fresh = (await s.timeout(5_000).emitWithAck('ice', {})) as IceReply;
    expect(fresh.ok).toBe(true);
    // Minted anew: expires no earlier than the first (the clock may have ticked a second).
    if (fresh.ok) expect(fresh.expiresAt).toBeGreaterThanOrEqual(expiry * 1000);
  });

  it('refuses to start with TURN URLs but no secret', async () => {
    await expect(start({ turnUrls: ['turn:127.0.0.1:3478'] })).rejects.toThrow(/turnSecret/);
  });
});
