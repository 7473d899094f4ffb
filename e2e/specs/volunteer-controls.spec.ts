/**
 * What a volunteer relies on, in real Chromium against the real server process running the
 * built-in default job exactly as `npm start` runs it (no job file, no changed copy): the job
 * trains; the page's own Pause and Resume stop and restart training; a hidden tab pauses; the
 * duty-cycle slider slows training; the host's pause stops it. Whether training runs is read
 * from the training worker's own sample count (`window.meshgrad.readParameters()`), never from
 * a label, and slowing is a ratio of rates measured in the same tab in the same run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect } from './fixtures.ts';
import { fetchHistory, joinJob, openVolunteer, serveJobForFile } from '../volunteer/job-pages.ts';
import type { ServerProcess } from '../volunteer/server-process.ts';

/** The default job's id and name (apps/server/src/jobs/job-spec.ts, DEFAULT_JOB). */
const DEFAULT_JOB_ID = 'mnist-mlp';
const DEFAULT_JOB_NAME = 'MNIST digits, 784-128-10 MLP';
/**
 * Test accuracy that shows the job learns: ten classes make chance 0.1; a model that reads
 * digits at all passes 0.5 within its first checkpoints.
 */
const LEARNED_ACCURACY = 0.5;
/** How long a held count is watched to see that it stays held: several stats intervals, ms. */
const HELD_WINDOW_MS = 3_000;
/** One rate measurement of the duty-cycle comparison, ms. */
const RATE_WINDOW_MS = 4_000;
const ARTIFACTS = join(import.meta.dirname, '../artifacts');

// No job: the server runs its built-in default job, as `npm start` does.
const served = serveJobForFile(null, ARTIFACTS);
const contexts = served.contexts;
let server: ServerProcess;
let tab: Page;

test.beforeAll(() => {
  server = served.server;
});

/** Samples the training worker itself has processed (not the page's last statistics). */
async function trainedSamples(page: Page): Promise<number> {
  return page.evaluate(async () => {
    // The page's debugging hook (MeshgradDebug in apps/client/src/volunteer/main.ts).
    const hook = (
      window as unknown as { meshgrad: { readParameters(): Promise<{ samples: number }> } }
    ).meshgrad;
    return (await hook.readParameters()).samples;
  });
}

/** Waits until the worker's count stops moving, then checks it stays put for HELD_WINDOW_MS. */
async function expectHeld(page: Page): Promise<void> {
  let previous = -1;
  await expect
    .poll(
      async () => {
        const now = await trainedSamples(page);
        const held = now === previous;
        previous = now;
        return held;
      },
      { timeout: 15_000, intervals: [500] },
    )
    .toBe(true);
  const held = await trainedSamples(page);
  await page.waitForTimeout(HELD_WINDOW_MS);
  expect(await trainedSamples(page)).toBe(held);
}

/** Waits until the worker's count grows past what it is now. */
async function expectGrowing(page: Page): Promise<void> {
  const from = await trainedSamples(page);
  await expect.poll(() => trainedSamples(page), { timeout: 20_000 }).toBeGreaterThan(from);
}

/** Samples per second over RATE_WINDOW_MS, by the worker's count and this process's clock. */
async function sampleRate(page: Page): Promise<number> {
  const startSamples = await trainedSamples(page);
  const start = performance.now();
  await page.waitForTimeout(RATE_WINDOW_MS);
  const samples = (await trainedSamples(page)) - startSamples;
  return (samples * 1000) / (performance.now() - start);
}

/** Makes the page see itself hidden or visible, as a tab switch does. */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  // Headless Chromium keeps every page visible, so the page's view of it is overridden and the
  // event a real tab switch fires is dispatched; the page reads `document.visibilityState`.
  await page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', {
      configurable: true,
      get: () => (h ? 'hidden' : 'visible'),
    });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

async function hostControl(state: 'paused' | 'running'): Promise<void> {
  const token = readFileSync(join(server.dataDir, 'admin-token'), 'utf8').trim();
  const res = await fetch(`${server.url}/api/admin/jobs/${DEFAULT_JOB_ID}/control`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ state }),
  });
  expect(res.status, await res.text()).toBe(200);
}

test('the default job, as `npm start` runs it, trains above chance', async ({ browser }) => {
  test.setTimeout(240_000);
  tab = await openVolunteer(browser, server, contexts, '', DEFAULT_JOB_NAME);
  await joinJob(tab);
  await expect
    .poll(
      async () =>
        (await fetchHistory(server, DEFAULT_JOB_ID)).history
          .filter((h) => h.testAccuracy !== undefined)
          .at(-1)?.testAccuracy ?? 0,
      { timeout: 180_000, intervals: [2_000] },
    )
    .toBeGreaterThanOrEqual(LEARNED_ACCURACY);
});

test("the volunteer's own Pause stops training and Resume restarts it", async () => {
  test.setTimeout(90_000);
  await expectGrowing(tab);
  await tab.locator('#pause').click();
  await expect(tab.locator('#state')).toHaveText('Paused');
  await expect(tab.locator('#pause')).toHaveText('Resume');
  await expectHeld(tab);
  await tab.locator('#pause').click();
  await expect(tab.locator('#state')).toHaveText('Training');
  await expectGrowing(tab);
});

test('a hidden tab pauses, unless the volunteer unticked the box', async () => {
  test.setTimeout(120_000);
  await setHidden(tab, true);
  await expect(tab.locator('#state')).toHaveText('Paused (tab hidden)');
  await expectHeld(tab);
  await setHidden(tab, false);
  await expect(tab.locator('#state')).toHaveText('Training');
  await expectGrowing(tab);

  await tab.locator('#pause-hidden').uncheck();
  await setHidden(tab, true);
  await expect(tab.locator('#state')).toHaveText('Training');
  await expectGrowing(tab);
  await setHidden(tab, false);
  await tab.locator('#pause-hidden').check();
});

test('the duty-cycle slider set low slows training against full duty', async () => {
  test.setTimeout(120_000);
  const duty = tab.locator('#duty');
  const rounds: Array<{ full: number; low: number }> = [];
  // Alternating rounds, so a change in the machine's load hits both settings alike.
  for (let round = 0; round < 2; round++) {
    await duty.fill('100');
    await expect(tab.locator('#duty-value')).toHaveText('100%');
    const full = await sampleRate(tab);
    await duty.fill('10');
    await expect(tab.locator('#duty-value')).toHaveText('10%');
    const low = await sampleRate(tab);
    rounds.push({ full, low });
    console.log(
      `duty cycle round ${round}: ${full.toFixed(0)} samples/s at 100%, ${low.toFixed(0)} at 10%, ratio ${(low / full).toFixed(2)}`,
    );
  }
  await duty.fill('100');
  for (const { full } of rounds) expect(full).toBeGreaterThan(0);
  // At 10% the loop rests nine times as long as it works: ideally a tenth of the rate. Half
  // leaves room for the steps already queued when the slider moved.
  const ratio = rounds.reduce((s, r) => s + r.low, 0) / rounds.reduce((s, r) => s + r.full, 0);
  expect(ratio).toBeLessThan(0.5);
});

test("in ASGD mode the host's pause stops the volunteers' samples; resume restarts them", async () => {
  test.setTimeout(90_000);
  await expect(tab.locator('body')).toHaveAttribute('data-mode', 'asgd');
  await expectGrowing(tab);
  await hostControl('paused');
  await expectHeld(tab);
  await hostControl('running');
  await expectGrowing(tab);
});
