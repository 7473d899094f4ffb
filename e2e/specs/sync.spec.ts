/**
 * Synchronous parameter-server SGD (job spec `training.mode: "sync"`, issue 5 part 3) end to
 * end: real Chromium tabs (WebGPU on SwiftShader, and the CPU backend), the real server process,
 * real socket.io. Each round the server sends its parameters to every tab, each tab steps once
 * and sends its parameters back, and the server applies the mean once all have answered.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from '@playwright/test';
import { test, expect } from './fixtures.ts';
import {
  closeLastTab,
  expectSamplesNeverDecrease,
  fetchHealth,
  fetchHistory,
  joinJob,
  latestTestAccuracy,
  MNIST_MLP_JOB,
  openVolunteer,
  serveJobForFile,
} from '../volunteer/job-pages.ts';

const ARTIFACTS = join(import.meta.dirname, '../artifacts');
/** The volunteer spec's job, in sync mode. */
const JOB = {
  ...MNIST_MLP_JOB,
  id: 'mnist-mlp-sync',
  name: 'MNIST digits, 784-128-10 MLP, synchronous',
  // Longer than the closed-tab test waits: progress there can only come from the tab leaving.
  training: { mode: 'sync', roundTimeoutSec: 120 },
};
/** The volunteer spec's target, evaluated by the server on the held-out digits. */
const TARGET_ACCURACY = 0.85;

const served = serveJobForFile(JOB, ARTIFACTS);
const contexts = served.contexts;

const history = () => fetchHistory(served.server, JOB.id);

/** The admin API, with the token the server wrote to its data directory. */
async function admin<T>(path: string, body?: unknown): Promise<T> {
  const token = readFileSync(join(served.server.dataDir, 'admin-token'), 'utf8').trim();
  const res = await fetch(`${served.server.url}/api/admin/jobs/${JOB.id}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  expect(res.ok, `${path}: ${res.status}`).toBe(true);
  return (await res.json()) as T;
}

const health = () => fetchHealth(served.server);

async function volunteer(browser: Browser, query: string): Promise<Page> {
  const page = await openVolunteer(browser, served.server, contexts, query, JOB.name);
  await expect(page.locator('#mode')).toContainText('synchronous');
  return page;
}

/** The last round a tab contributed to. */
const roundOf = async (page: Page) =>
  Number((await page.locator('body').getAttribute('data-round')) ?? '0');

test('three tabs train the sync job to 85% test accuracy, round by round, without peers', async ({
  browser,
}) => {
  test.setTimeout(420_000);
  const gpuTab = await volunteer(browser, '?backend=webgpu');
  const cpuTab = await volunteer(browser, '?backend=cpu');
  const autoTab = await volunteer(browser, '');
  const tabs = [gpuTab, cpuTab, autoTab];
  for (const tab of tabs) await joinJob(tab);
  await expect(gpuTab.locator('#backend')).toContainText('WebGPU');
  await expect(cpuTab.locator('#backend')).toContainText('CPU backend');
  await expect.poll(async () => (await health()).workers, { timeout: 10_000 }).toBe(3);

  const started = Date.now();
  await expect
    .poll(async () => latestTestAccuracy(await history()), {
      timeout: 360_000,
      intervals: [2_000],
    })
    .toBeGreaterThanOrEqual(TARGET_ACCURACY);
  const rounds = await Promise.all(tabs.map(roundOf));
  const h = await history();
  const reached = h.history.filter((r) => (r.testAccuracy ?? 0) >= TARGET_ACCURACY)[0];
  console.log(
    `sync: ${TARGET_ACCURACY} test accuracy (${reached?.testAccuracy}) at checkpoint ${reached?.checkpoint}, ` +
      `${reached?.samples} samples, tabs at rounds ${rounds.join('/')}, ${((Date.now() - started) / 1000).toFixed(0)} s after joining`,
  );
  await gpuTab.screenshot({ path: join(ARTIFACTS, 'volunteer-sync.png'), fullPage: true });

  // Every tab took part in the rounds, as the barrier demands: none fell far behind.
  for (const r of rounds) expect(r).toBeGreaterThan(10);
  expect(Math.max(...rounds) - Math.min(...rounds)).toBeLessThan(Math.max(...rounds) / 2);
  // No peer links in sync mode: the server's rounds carry the model.
  for (const tab of tabs) {
    await expect(tab.locator('#peers')).toHaveText('0');
    expect(
      await tab.evaluate(
        () => (window as unknown as { meshgrad: { links(): unknown[] } }).meshgrad.links().length,
      ),
    ).toBe(0);
  }
  // The console shows the mode and the round; checkpoints are the server's own parameters.
  const snapshot = await admin<{ job: { training?: { mode: string; round: number } } }>('');
  expect(snapshot.job.training?.mode).toBe('sync');
  expect(snapshot.job.training?.round).toBeGreaterThan(10);
  const { checkpoints } = await admin<{ checkpoints: Array<{ worker: string }> }>('/checkpoints');
  expect(checkpoints.length).toBeGreaterThan(0);
  for (const c of checkpoints) expect(c.worker).toBe('server');
  expectSamplesNeverDecrease(h);
});

test('a tab closed mid-training leaves its round; the other tabs go on at once', async () => {
  test.setTimeout(90_000);
  // Close while rounds run, so the tab leaves with a round still waiting for it.
  const { remaining, before } = await closeLastTab(served, roundOf);
  const after = await Promise.all(remaining.map(roundOf));
  // Well within the 120 s round timeout: the barrier released when the tab left.
  await expect
    .poll(
      async () => (await Promise.all(remaining.map(roundOf))).every((r, i) => r >= after[i]! + 5),
      {
        timeout: 45_000,
      },
    )
    .toBe(true);
  console.log(
    `sync: after closing a tab, rounds ${before.join('/')} → ${(await Promise.all(remaining.map(roundOf))).join('/')}`,
  );
});

test('pausing the job from the admin holds the rounds; resuming goes on', async () => {
  test.setTimeout(90_000);
  const tabs = contexts.map((c) => c.pages()[0]!);
  await admin('/control', { state: 'paused' });
  for (const tab of tabs) {
    await expect(tab.locator('#state')).toHaveText('Paused by the host', { timeout: 10_000 });
  }
  // A step in flight when the pause arrived may still be sent; after that nothing moves.
  await new Promise((r) => setTimeout(r, 1_000));
  const held = await Promise.all(tabs.map(roundOf));
  await new Promise((r) => setTimeout(r, 3_000));
  expect(await Promise.all(tabs.map(roundOf))).toEqual(held);
  await admin('/control', { state: 'running' });
  await expect
    .poll(async () => (await Promise.all(tabs.map(roundOf))).every((r, i) => r > held[i]! + 3), {
      timeout: 30_000,
    })
    .toBe(true);
});
