/**
 * The credit book (DESIGN §9): in isolation on a real data directory, and through a real server
 * whose volunteers prove identities and report statistics over socket.io.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MAX_LEADERBOARD_ENTRIES,
  trainingFlopsPerSample,
  type AdminCreditReport,
  type CreditReport,
} from '@meshgrad/core';
import { pino } from 'pino';
import type { Logger } from '../logger.ts';
import { ServerMetrics } from '../metrics.ts';
import { BLOBS_JOB, ServerFixture } from '../server.test-support.ts';
import { stats } from '../jobs/job.test-support.ts';
import {
  CREDIT_FILE,
  CreditBook,
  FLAG_INFLATED,
  INFLATED_CLAIM_SAMPLES,
  MAX_IDENTITIES,
} from './book.ts';
import { identityId } from './identity.ts';
import { joinAs, TestIdentity } from './identity.test-support.ts';

const silent = pino({ level: 'silent' }) as Logger;

describe('CreditBook', () => {
  let dir = '';
  let metrics: ServerMetrics;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-book-'));
    metrics = new ServerMetrics();
  });
  afterEach(async () => {
    metrics.close();
    await rm(dir, { recursive: true, force: true });
  });

  const vA = `v-${'a'.repeat(20)}`;
  const vB = `v-${'b'.repeat(20)}`;

  it('credits samples × FLOPs per sample to the bound identity, per job and overall', () => {
    const book = new CreditBook(dir, metrics, silent);
    book.bind('w-1', { id: vA, name: 'Ada', team: 'Lab' });
    book.bind('w-2', { id: vB, team: 'Lab' });
    book.credit('j1', 'w-1', { claimed: 100, credited: 100 }, 60);
    book.credit('j2', 'w-1', { claimed: 10, credited: 10 }, 1_000);
    book.credit('j1', 'w-2', { claimed: 50, credited: 50 }, 60);
    book.credit('j1', 'w-anonymous', { claimed: 1e6, credited: 1e6 }, 60);
    const r = book.report({ identity: vB });
    expect(r.overall.volunteers.map((v) => [v.id, v.credit, v.samples])).toEqual([
      [vA, 100 * 60 + 10 * 1_000, 110],
      [vB, 50 * 60, 50],
    ]);
    expect(r.overall.volunteers[0]?.name).toBe('Ada');
    expect(r.jobs.j1?.volunteers.map((v) => v.credit)).toEqual([6_000, 3_000]);
    expect(r.jobs.j2?.volunteers.map((v) => v.id)).toEqual([vA]);
    expect(r.overall.teams).toEqual([
      { rank: 1, id: 'Lab', team: 'Lab', credit: 19_000, samples: 160, members: 2 },
    ]);
    expect(r.you).toMatchObject({ id: vB, rank: 2 });
    expect(r.identities).toBe(2);
  });

  it('gives a report that claims far over the bound nothing, and flags its identity', () => {
    const book = new CreditBook(dir, metrics, silent);
    book.bind('w-1', { id: vA });
    book.credit('j1', 'w-1', { claimed: 10, credited: 10 }, 6);
    book.credit('j1', 'w-1', { claimed: INFLATED_CLAIM_SAMPLES + 1, credited: 5e6 }, 6);
    const [row] = book.adminReport().identities;
    expect(row).toMatchObject({
      credit: 60,
      samples: 10,
      inflatedReports: 1,
      flags: [FLAG_INFLATED],
    });
  });

  it('credits a fast tab what passed the bound, without flagging it', () => {
    const book = new CreditBook(dir, metrics, silent);
    book.bind('w-1', { id: vA });
    book.credit('j1', 'w-1', { claimed: 5e6, credited: 1e6 }, 6);
    const [row] = book.adminReport().identities;
    expect(row).toMatchObject({ credit: 6e6, samples: 1e6, inflatedReports: 0, flags: [] });
  });

  it('persists atomically and loads what it wrote', async () => {
    const book = new CreditBook(dir, metrics, silent);
    book.bind('w-1', { id: vA, name: 'Ada' });
    book.credit('j1', 'w-1', { claimed: 7, credited: 7 }, 6);
    await book.flush();
    const again = new CreditBook(dir, new ServerMetrics(), silent);
    await again.load();
    expect(again.report().overall.volunteers).toEqual([
      { rank: 1, id: vA, name: 'Ada', credit: 42, samples: 7 },
    ]);
    const file = JSON.parse(await readFile(path.join(dir, CREDIT_FILE), 'utf8')) as {
      version: number;
    };
    expect(file.version).toBe(1);
  });

  it('sets a file that does not parse aside and starts anew', async () => {
    await writeFile(path.join(dir, CREDIT_FILE), '{"version":1,"identities":{"<b>":{}}}');
    const book = new CreditBook(dir, metrics, silent);
    await book.load();
    expect(book.report().identities).toBe(0);
  });

  it(`keeps at most ${MAX_IDENTITIES} identities, forgetting the least credited unbound one`, () => {
    const book = new CreditBook(dir, metrics, silent);
    for (let i = 0; i < MAX_IDENTITIES; i++) {
      const id = `v-${i.toString(16).padStart(20, '0')}`;
      book.bind(`w-${i}`, { id });
      book.credit('j1', `w-${i}`, { claimed: i + 1, credited: i + 1 }, 1);
      if (i > 0) book.unbind(`w-${i}`);
    }
    // Identity 0 has the least credit but is still bound: identity 1 goes instead.
    book.bind('w-new', { id: vA });
    book.credit('j1', 'w-new', { claimed: 1, credited: 1 }, 1e9);
    expect(book.adminReport().total).toBe(MAX_IDENTITIES);
    expect(book.standing(vA)?.rank).toBe(1);
    expect(book.standing(`v-${'0'.repeat(20)}`)).toBeDefined();
    expect(book.standing(`v-${'1'.padStart(20, '0')}`)).toBeUndefined();
    expect(book.report().overall.volunteers).toHaveLength(MAX_LEADERBOARD_ENTRIES);
  });
});

describe('credit through a real server', () => {
  const fixture = new ServerFixture('meshgrad-credit-');

  const credit = async (url: string, query = ''): Promise<CreditReport> =>
    (await (await fetch(`${url}/api/credit${query}`)).json()) as CreditReport;

  async function until(check: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('condition not met');
  }

  it('credits two identities, flags an inflated count, and keeps the board across a restart', async () => {
    let server = await fixture.start({ jobs: [BLOBS_JOB], adminToken: 'admin-token-0123456789' });
    const flops = trainingFlopsPerSample(server.jobs.get(BLOBS_JOB.id)!.layout.size);
    const ada = await TestIdentity.make();
    const bob = await TestIdentity.make();
    const sa = fixture.socket();
    const sb = fixture.socket();
    await joinAs(sa, ada, { name: 'Ada', team: 'Lab' });
    await joinAs(sb, bob, { name: 'Bob' });
    sa.emit('stats', stats(400));
    sb.emit('stats', stats(100));
    // Bob then claims more than time allows: that report earns him nothing.
    sb.emit('stats', stats(2 ** 53 - 1));
    await until(async () => (await credit(server.url)).overall.volunteers.length === 2);
    await until(async () =>
      server.metrics.creditRefusedReports.get().then((m) => m.values.length > 0),
    );

    const board = await credit(server.url, `?identity=${identityId(bob.publicKey)}`);
    expect(board.overall.volunteers.map((v) => [v.name, v.samples, v.credit])).toEqual([
      ['Ada', 400, 400 * flops],
      ['Bob', 100, 100 * flops],
    ]);
    expect(board.jobs[BLOBS_JOB.id]?.teams).toEqual([
      { rank: 1, id: 'Lab', team: 'Lab', credit: 400 * flops, samples: 400, members: 1 },
    ]);
    expect(board.you).toMatchObject({ rank: 2, name: 'Bob' });

    const admin = (await (
      await fetch(`${server.url}/api/admin/credit`, {
        headers: { authorization: 'Bearer admin-token-0123456789' },
      })
    ).json()) as AdminCreditReport;
    const flagged = admin.identities.find((r) => r.id === identityId(bob.publicKey));
    expect(flagged).toMatchObject({ inflatedReports: 1, flags: [FLAG_INFLATED] });

    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain(`meshgrad_credit_flops_total{job="blobs"} ${500 * flops}`);
    expect(text).toContain('meshgrad_credited_samples_total{job="blobs"} 500');
    expect(text).toContain(
      'meshgrad_credit_refused_reports_total{job="blobs",reason="inflated"} 1',
    );

    // A restart on the same data directory keeps the leaderboard.
    fixture.disconnectAll();
    await server.close();
    server = await fixture.start({ jobs: [BLOBS_JOB] });
    const after = await credit(server.url);
    expect(after.overall.volunteers.map((v) => [v.name, v.credit])).toEqual([
      ['Ada', 400 * flops],
      ['Bob', 100 * flops],
    ]);
  });

  it('refuses a malformed identity query with 400 and an unknown job with 404', async () => {
    const server = await fixture.start({ jobs: [BLOBS_JOB] });
    expect((await fetch(`${server.url}/api/credit?identity=<script>`)).status).toBe(400);
    expect((await fetch(`${server.url}/api/credit?job=nope`)).status).toBe(404);
  });
});
