/**
 * Credit for verified work end to end (DESIGN §9): real Chromium tabs make their identities in
 * IndexedDB and earn credit, the leaderboard and the admin console show it, a reload keeps the
 * identity and its credit, an inflated sample count earns nothing and is flagged, and a server
 * restart keeps the leaderboard. One server process for the whole file.
 */
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from '@playwright/test';
import { io as connect } from 'socket.io-client';
import {
  identityMessage,
  PROTOCOL_VERSION,
  type Assignment,
  type ChallengeReply,
  type CreditReport,
  type AdminCreditReport,
  type ErrorReply,
} from '@meshgrad/core';
import { test, expect } from './fixtures.ts';
import { getJson } from '../harness/http.ts';
import { joinJob, openVolunteer, serveJobForFile } from '../volunteer/job-pages.ts';

const ARTIFACTS = join(import.meta.dirname, '../artifacts');
/** K-Means on Gaussian clusters: quick on the CPU backend, so the tabs earn credit at once. */
const JOB = {
  id: 'credit-blobs',
  name: 'Gaussian clusters for credit',
  host: 'meshgrad e2e',
  model: { kind: 'kmeans', dims: 8, clusters: 4 },
  dataset: { kind: 'clusters', clusters: 4, dims: 8, count: 4_000, testCount: 400 },
  shards: 2,
  batchSize: 32,
  learningRate: 0.05,
  checkpointIntervalSec: 5,
};

// Spot checks about every 5 s at a new identity's trust (1 s × 30^0.5), so the tabs see some.
const served = serveJobForFile(JOB, ARTIFACTS, ['--spot-check-seconds', '1']);
const credit = (query = '') => getJson<CreditReport>(`${served.server.url}/api/credit${query}`);

async function volunteer(browser: Browser, name: string, team: string): Promise<Page> {
  const page = await openVolunteer(
    browser,
    served.server,
    served.contexts,
    '?backend=cpu',
    JOB.name,
  );
  await page.locator('#display-name').fill(name);
  await page.locator('#team-name').fill(team);
  return page;
}

const creditOf = async (page: Page) =>
  Number((await page.locator('body').getAttribute('data-credit')) ?? '0');
const identityOf = async (page: Page) =>
  (await page.locator('body').getAttribute('data-identity')) ?? '';

let ada: Page;
let bob: Page;

test('two tabs earn credit under their identities; the leaderboard shows them as text', async ({
  browser,
}) => {
  test.setTimeout(120_000);
  ada = await volunteer(browser, 'Ada <script>', 'Lovelace Lab');
  // Markup is refused on the page, before anything joins.
  await ada.locator('#join').click();
  await expect(ada.locator('#join-hint')).toHaveText('Display name must not contain < or >');
  await ada.locator('#display-name').fill('Ada');
  bob = await volunteer(browser, 'Bob', 'Lovelace Lab');
  await joinJob(ada);
  await joinJob(bob);
  await expect(ada.locator('#identity')).toHaveText(/^v-[0-9a-f]{20}$/);
  const [a, b] = [await identityOf(ada), await identityOf(bob)];
  expect(a).not.toBe(b);

  await expect
    .poll(async () => (await credit()).overall.volunteers.filter((v) => v.credit > 0).length, {
      timeout: 30_000,
    })
    .toBe(2);
  // The pages poll their own line every 5 s.
  await expect.poll(() => creditOf(ada), { timeout: 20_000 }).toBeGreaterThan(0);
  await expect.poll(() => creditOf(bob), { timeout: 20_000 }).toBeGreaterThan(0);
  await expect(ada.locator('#rank')).toHaveText(/^[12] of 2$/);
  await expect(ada.locator('#identity-profile')).toHaveText('Ada, team Lovelace Lab');
  await ada.screenshot({ path: join(ARTIFACTS, 'credit-volunteer.png'), fullPage: true });

  const board = await credit();
  expect(board.overall.teams).toEqual([
    expect.objectContaining({ id: 'Lovelace Lab', members: 2 }),
  ]);
  expect(board.jobs[JOB.id]?.volunteers.map((v) => v.name).sort()).toEqual(['Ada', 'Bob']);

  const leaderboard = await ada.context().newPage();
  await leaderboard.goto(`${served.server.url}/leaderboard`);
  await expect(leaderboard.locator('#volunteers-table tbody tr')).toHaveCount(2);
  await expect(leaderboard.locator(`#volunteers-table tr[data-identity="${a}"]`)).toContainText(
    'Ada',
  );
  await expect(leaderboard.locator('#teams-table tbody')).toContainText('Lovelace Lab');
  await leaderboard.screenshot({ path: join(ARTIFACTS, 'credit-leaderboard.png'), fullPage: true });
  await leaderboard.close();
});

test('the tabs answer the server’s spot checks, and pass them', async () => {
  test.setTimeout(90_000);
  const token = readFileSync(join(served.server.dataDir, 'admin-token'), 'utf8').trim();
  const rows = async () =>
    (
      await getJson<AdminCreditReport>(`${served.server.url}/api/admin/credit`, {
        authorization: `Bearer ${token}`,
      })
    ).identities;
  const ids = [await identityOf(ada), await identityOf(bob)];
  await expect
    .poll(
      async () => {
        const r = await rows();
        return ids.every((id) => (r.find((x) => x.id === id)?.checksPassed ?? 0) >= 1);
      },
      { timeout: 60_000, intervals: [1_000] },
    )
    .toBe(true);
  for (const r of (await rows()).filter((x) => ids.includes(x.id))) {
    expect(r.checksFailed).toBe(0);
    expect(r.flags).toEqual([]);
    expect(r.trust).toBeGreaterThan(0.5);
  }
});

/** A volunteer outside the browser that proves an identity and then claims 2^53 − 1 samples. */
async function inflatingVolunteer(url: string): Promise<string> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ]);
  const jwk = await webcrypto.subtle.exportKey('jwk', keys.publicKey);
  const s = connect(`${url}/volunteer`, { transports: ['websocket'], reconnection: false });
  const c = (await s.timeout(5_000).emitWithAck('challenge', {})) as ChallengeReply;
  if (!c.ok) throw new Error(c.message);
  const signature = await webcrypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    keys.privateKey,
    new TextEncoder().encode(identityMessage(c.challenge)),
  );
  const a = (await s.timeout(5_000).emitWithAck('hello', {
    protocolVersion: PROTOCOL_VERSION,
    device: { backend: 'cpu', userAgent: 'e2e inflater' },
    identity: {
      publicKey: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y },
      challenge: c.challenge,
      signature: Buffer.from(signature).toString('base64url'),
      name: 'Inflater',
    },
  })) as Assignment | ErrorReply;
  if (!a.ok) throw new Error(a.message);
  s.emit('stats', {
    jobId: JOB.id,
    samples: Number.MAX_SAFE_INTEGER,
    samplesPerSec: 1e9,
    offered: 0,
    accepted: 0,
    paused: false,
    links: [],
  });
  // The report must arrive before the socket goes.
  await new Promise((r) => setTimeout(r, 1_000));
  s.disconnect();
  return a.identity?.id ?? '';
}

test('an inflated sample count earns nothing and is flagged in the admin console', async ({
  browser,
}) => {
  test.setTimeout(60_000);
  const cheat = await inflatingVolunteer(served.server.url);
  expect(cheat).toMatch(/^v-/);
  const board = await credit(`?identity=${cheat}`);
  expect(board.you).toBeUndefined();
  expect(board.overall.volunteers.map((v) => v.id)).not.toContain(cheat);

  const context = await browser.newContext();
  served.contexts.push(context);
  const admin = await context.newPage();
  await admin.goto(`${served.server.url}/admin#credit`);
  const token = readFileSync(join(served.server.dataDir, 'admin-token'), 'utf8').trim();
  await admin.locator('#token').fill(token);
  await admin.locator('#sign-in').click();
  const row = admin.locator(`#credit-table tr[data-identity="${cheat}"]`);
  await expect(row).toHaveAttribute('data-flagged', '');
  await expect(row.locator('.flags')).toContainText('inflated sample count');
  await expect(
    admin.locator(`#credit-table tr[data-identity="${await identityOf(ada)}"] .flags`),
  ).toHaveText('ok');
  await admin.screenshot({ path: join(ARTIFACTS, 'credit-admin.png'), fullPage: true });
});

test('a reload keeps the identity and its credit', async () => {
  test.setTimeout(90_000);
  const id = await identityOf(ada);
  const before = (await credit(`?identity=${id}`)).you?.credit ?? 0;
  expect(before).toBeGreaterThan(0);
  await ada.reload();
  await expect(ada.locator('#job-name')).toHaveText(JOB.name);
  // The name and team come back from IndexedDB with the key.
  await expect(ada.locator('#display-name')).toHaveValue('Ada');
  await joinJob(ada);
  await expect(ada.locator('#identity')).toHaveText(id);
  await expect.poll(() => creditOf(ada), { timeout: 20_000 }).toBeGreaterThan(before);
});

test('a server restart keeps the leaderboard', async () => {
  test.setTimeout(120_000);
  const before = await credit();
  const lines = new Map(before.overall.volunteers.map((v) => [v.id, v.credit]));
  expect(lines.size).toBeGreaterThanOrEqual(2);
  await served.server.stop();
  await served.server.start();
  const after = await credit();
  for (const [id, c] of lines) {
    expect(after.overall.volunteers.find((v) => v.id === id)?.credit ?? 0).toBeGreaterThanOrEqual(
      c,
    );
  }
  // The tabs reconnect on their own and keep earning under the same identities.
  const id = await identityOf(bob);
  await expect
    .poll(async () => (await credit(`?identity=${id}`)).you?.credit ?? 0, { timeout: 30_000 })
    .toBeGreaterThan(lines.get(id) ?? Infinity);
});
