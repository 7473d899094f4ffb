/**
 * Helpers for the peer-to-peer spec: volunteer tabs with chosen worker ids, the page's
 * debugging hook (`window.meshgrad`), the admin HTTP API and the server's metrics.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getJson, getText } from '../harness/http.ts';
import {
  expect,
  type Browser,
  type BrowserContext,
  type Page,
  type TestInfo,
} from '@playwright/test';
import type { AdminJobSnapshot, LinkStats } from '@meshgrad/core';
import { buildOnce, type ServerProcess } from '../volunteer/server-process.ts';
import type { TurnServer } from './turn.ts';

export interface Tab {
  readonly id: string;
  readonly page: Page;
  readonly context: BrowserContext;
}

/** What a spec's tests started, for its teardown to close: push each onto its list. */
export interface Started {
  readonly tabs: Tab[];
  readonly servers: ServerProcess[];
  readonly turns: TurnServer[];
}

/** The part of Playwright's `test` the shared hooks use. */
interface Hooks {
  beforeAll(fn: () => void): void;
  afterEach(fn: (args: object, testInfo: TestInfo) => Promise<void>): void;
  setTimeout(ms: number): void;
}

/**
 * The hooks the peer-to-peer specs share: the build (`npm run build`) before the first test,
 * and after each test the last output of every server and TURN server when it failed, then
 * every tab, server and TURN server it started closed. Returns the lists to push them onto.
 */
export function volunteerHarness(test: Hooks): Started {
  const started: Started = { tabs: [], servers: [], turns: [] };
  test.beforeAll(() => {
    test.setTimeout(300_000);
    buildOnce();
  });
  // Playwright reads the fixtures a hook uses from its first parameter, which must be a pattern.
  // eslint-disable-next-line no-empty-pattern
  test.afterEach(async ({}, testInfo) => {
    if (testInfo.status !== testInfo.expectedStatus) {
      for (const s of started.servers) console.log(`[server output]\n${s.output.slice(-4000)}`);
      for (const t of started.turns) console.log(`[turnserver output]\n${t.output.slice(-4000)}`);
    }
    for (const t of started.tabs.splice(0)) await t.context.close().catch(() => undefined);
    for (const s of started.servers.splice(0)) await s.stop();
    for (const t of started.turns.splice(0)) await t.stop();
  });
  return started;
}

/** The admin token the server keeps in its data directory (no MESHGRAD_ADMIN_TOKEN in tests). */
export function adminToken(server: ServerProcess): string {
  return (
    process.env.MESHGRAD_ADMIN_TOKEN ??
    readFileSync(join(server.dataDir, 'admin-token'), 'utf8').trim()
  );
}

/** Pauses or resumes a job through the admin API. */
export async function setJobState(
  server: ServerProcess,
  job: string,
  state: 'running' | 'paused',
): Promise<void> {
  const res = await fetch(`${server.url}/api/admin/jobs/${job}/control`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${adminToken(server)}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ state }),
  });
  expect(res.status, await res.text()).toBe(200);
}

/** The job as the admin console sees it (admin API). */
export function adminSnapshot(server: ServerProcess, job: string): Promise<AdminJobSnapshot> {
  return getJson<AdminJobSnapshot>(`${server.url}/api/admin/jobs/${job}`, {
    authorization: `Bearer ${adminToken(server)}`,
  });
}

/** What the server last heard from each worker about its links (admin API). */
export async function serverLinks(
  server: ServerProcess,
  job: string,
): Promise<Map<string, readonly LinkStats[]>> {
  const snapshot = await adminSnapshot(server, job);
  return new Map(snapshot.workers.map((w) => [w.id, w.links]));
}

/** Bans a worker through the admin API, as the console's Ban button does. */
export async function banWorker(server: ServerProcess, job: string, worker: string): Promise<void> {
  const res = await fetch(`${server.url}/api/admin/jobs/${job}/workers/${worker}/ban`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken(server)}` },
  });
  expect(res.status, await res.text()).toBe(200);
}

/**
 * A Prometheus metric of the server, summed over its series. A metric the server does not
 * export at all is an error, not 0: "zero relayed bytes" must not pass because the metric was
 * renamed. A declared metric with no series yet (a labelled counter nothing has incremented)
 * is 0.
 */
export async function metricValue(server: ServerProcess, name: string): Promise<number> {
  const text = await getText(`${server.url}/metrics`);
  if (!new RegExp(`^# TYPE ${name} `, 'm').test(text)) {
    throw new Error(`metric ${name} is not exported by the server's /metrics`);
  }
  const series = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))];
  return series.reduce((sum, m) => sum + Number(m[1]), 0);
}

/**
 * Opens the volunteer page in its own browser context as worker `id` (the page reuses the id
 * it finds in sessionStorage, as after a reload) and joins the job.
 */
export async function openTab(
  browser: Browser,
  server: ServerProcess,
  id: string,
  query: string,
  setup?: (context: BrowserContext) => Promise<void>,
  dutyPercent?: number,
): Promise<Tab> {
  const context = await browser.newContext();
  await context.addInitScript((workerId) => {
    sessionStorage.setItem('meshgrad.workerId', workerId);
  }, id);
  if (setup) await setup(context);
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') console.log(`[${id}] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.log(`[${id}:error] ${err.message}`));
  await page.goto(`${server.url}/${query}`);
  await expect(page.locator('#join')).toBeEnabled({ timeout: 30_000 });
  await page.locator('#join').click();
  await expect(page.locator('#state')).toHaveText(/Training|Paused/, { timeout: 60_000 });
  if (dutyPercent !== undefined) await page.locator('#duty').fill(String(dutyPercent));
  expect(await page.evaluate(() => window.meshgrad.workerId())).toBe(id);
  return { id, page, context };
}

/** The tab's link statistics as it last reported them to the server. */
export function links(tab: Tab): Promise<LinkStats[]> {
  return tab.page.evaluate(() => [...window.meshgrad.links()]);
}

export async function samples(tab: Tab): Promise<number> {
  return Number((await tab.page.evaluate(() => document.body.dataset.samples)) ?? '0');
}

/** The tab's current parameters, read through the page's debugging hook. */
export async function readParameters(tab: Tab): Promise<{ samples: number; params: Float32Array }> {
  const r = await tab.page.evaluate(async () => {
    const { samples, params } = await window.meshgrad.readParameters();
    return { samples, params: Array.from(params) };
  });
  return { samples: r.samples, params: Float32Array.from(r.params) };
}

/** Waits until every tab has an open link of `route` to each of its `peers` other tabs. */
export async function waitForMesh(
  tabs: readonly Tab[],
  route: 'direct' | 'turn' | 'server',
  timeout = 30_000,
): Promise<void> {
  await expect
    .poll(
      async () => {
        const all = await Promise.all(tabs.map(links));
        return all.map((l) => l.filter((x) => x.route === route).length);
      },
      { timeout, intervals: [500] },
    )
    .toEqual(tabs.map(() => tabs.length - 1));
}

declare global {
  interface Window {
    /** The volunteer page's debugging hook (apps/client/src/volunteer/main.ts). */
    meshgrad: {
      workerId(): string | null;
      links(): readonly LinkStats[];
      readParameters(): Promise<{ samples: number; params: Float32Array }>;
    };
  }
}
