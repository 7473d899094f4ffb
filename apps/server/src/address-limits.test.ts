import { describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, type AdminError } from '@meshgrad/core';
import { MAX_TOKEN_LENGTH } from './admin/schemas.ts';
import { ServerFixture, BLOBS_JOB, TEST_DEVICE, capturingLogger } from './server.test-support.ts';

const TOKEN = 'test-admin-token-limits';
const fixture = new ServerFixture('meshgrad-limits-');

function connected(s: Socket): Promise<'connected' | string> {
  return new Promise((resolve) => {
    s.once('connect', () => resolve('connected'));
    s.once('connect_error', (err) => resolve(err.message));
  });
}

/**
 * Connects to the running test server's /admin socket with `auth` and disconnects: `connected`,
 * or the refusal's error code (its message where it has none).
 */
async function adminConnect(auth: Record<string, unknown>): Promise<string> {
  const s = fixture.socket('/admin', { auth });
  const outcome = await new Promise<string>((resolve) => {
    s.once('connect', () => resolve('connected'));
    s.once('connect_error', (err: Error & { data?: { code?: string } }) =>
      resolve(err.data?.code ?? err.message),
    );
  });
  s.disconnect();
  return outcome;
}

/** A server whose admin token throttle allows 3 wrong tokens a minute, and its log lines. */
async function throttledServer() {
  const { lines, logger } = capturingLogger();
  const server = await fixture.start({
    jobs: [BLOBS_JOB],
    adminToken: TOKEN,
    logger,
    tokenThrottle: { failuresPerWindow: 3, windowMs: 60_000 },
  });
  return { lines, server };
}

describe('limits per remote address', () => {
  it('refuses sockets over the connection limit with a reason, and admits again once one leaves', async () => {
    await fixture.start({ jobs: [BLOBS_JOB], addressLimits: { maxConnectionsPerAddress: 3 } });
    const held = [fixture.socket(), fixture.socket(), fixture.socket()];
    expect(await Promise.all(held.map(connected))).toEqual(['connected', 'connected', 'connected']);
    const extra = fixture.socket();
    expect(await connected(extra)).toMatch(/too many connections from your address/);
    // The admin namespace counts against the same address.
    expect(await connected(fixture.socket('/admin'))).toMatch(/too many connections/);
    held[0]?.disconnect();
    await expect
      .poll(async () => connected(fixture.socket()), { timeout: 20_000, interval: 200 })
      .toBe('connected');
  });

  it('answers hellos over the per-minute limit with ERR_RATE_LIMITED and keeps the socket', async () => {
    const server = await fixture.start({
      jobs: [BLOBS_JOB],
      addressLimits: { hellosPerMinute: 2 },
    });
    const hello = (s: Socket) =>
      s
        .timeout(5_000)
        .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, device: TEST_DEVICE });
    const a = fixture.socket();
    const b = fixture.socket();
    expect(await hello(a)).toMatchObject({ ok: true });
    expect(await hello(b)).toMatchObject({ ok: true });
    const c = fixture.socket();
    expect(await hello(c)).toMatchObject({ ok: false, code: 'ERR_RATE_LIMITED' });
    expect(c.connected).toBe(true);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/meshgrad_address_limited_total\{limit="hellos"\} 1/);
  });

  it('throttles wrong admin tokens with 429 and Retry-After, logging one line per burst', async () => {
    const { lines, server } = await throttledServer();
    const get = (token: string) =>
      fetch(`${server.url}/api/admin/session`, { headers: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 3; i++) expect((await get(`wrong-${i}`)).status).toBe(403);
    const throttled = await get('wrong-again');
    expect(throttled.status).toBe(429);
    const retryAfter = Number(throttled.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(((await throttled.json()) as AdminError).code).toBe('ERR_RATE_LIMITED');
    // Even the right token waits: a guess made while throttled must not learn anything.
    expect((await get(TOKEN)).status).toBe(429);
    for (let i = 0; i < 20; i++) await get(`more-${i}`);
    const refusals = lines.filter((l) => l.includes('refused a wrong token'));
    expect(refusals).toHaveLength(1);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/meshgrad_admin_refused_total\{outcome="throttled"\} 22/);
    expect(metrics).toMatch(/meshgrad_admin_refused_total\{outcome="forbidden"\} 3/);
  });

  it('throttles wrong tokens on the /admin socket with the API’s own throttle, logging one line per burst', async () => {
    const { lines, server } = await throttledServer();
    const admin = (token: string) => adminConnect({ token });
    const get = (token: string) =>
      fetch(`${server.url}/api/admin/session`, { headers: { authorization: `Bearer ${token}` } });
    expect(await admin(TOKEN)).toBe('connected');
    // Two wrong guesses on the socket and one over HTTP use up the address's three.
    expect(await admin('wrong-0')).toBe('ERR_FORBIDDEN');
    expect(await admin('wrong-1')).toBe('ERR_FORBIDDEN');
    expect((await get('wrong-2')).status).toBe(403);
    // From now on both doors refuse, the right token too, before it is checked.
    expect(await admin('wrong-3')).toBe('ERR_RATE_LIMITED');
    expect(await admin(TOKEN)).toBe('ERR_RATE_LIMITED');
    expect((await get(TOKEN)).status).toBe(429);
    for (let i = 0; i < 10; i++) expect(await admin(`more-${i}`)).toBe('ERR_RATE_LIMITED');
    expect(lines.filter((l) => l.includes('refused a wrong token'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('admin socket connection refused'))).toHaveLength(0);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/meshgrad_admin_refused_total\{outcome="throttled"\} 13/);
    expect(metrics).toMatch(/meshgrad_admin_refused_total\{outcome="forbidden"\} 3/);
  });

  it('takes an over-long token on the /admin socket for a wrong one: refused, counted and throttled', async () => {
    const { server } = await throttledServer();
    const long = 'x'.repeat(MAX_TOKEN_LENGTH + 1);
    // No token is still a missing one, and not counted against the address.
    expect(await adminConnect({})).toBe('ERR_UNAUTHORIZED');
    for (let i = 0; i < 3; i++) expect(await adminConnect({ token: long })).toBe('ERR_FORBIDDEN');
    expect(await adminConnect({ token: long })).toBe('ERR_RATE_LIMITED');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/meshgrad_admin_refused_total\{outcome="forbidden"\} 3/);
    expect(metrics).toMatch(/meshgrad_admin_refused_total\{outcome="unauthorized"\} 1/);
  });
});
