/**
 * The job server and the volunteer page end to end: real Chromium tabs (WebGPU on SwiftShader,
 * and the CPU backend), the real server process (`apps/server/dist/main.js`, what `npm start`
 * runs), real socket.io. One server for the whole file, killed and restarted mid-way.
 */
import { join } from 'node:path';
import { chromium, type Browser, type Page } from '@playwright/test';
import { io as connect } from 'socket.io-client';
import { test, expect } from './fixtures.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../harness/chromium.ts';
import { getText } from '../harness/http.ts';
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
const JOB = {
  ...MNIST_MLP_JOB,
  communication: { communicationPeriod: 128, blocksPerMessage: 1, encoding: 'f32' },
};

const served = serveJobForFile(JOB, ARTIFACTS);
const contexts = served.contexts;

const history = () => fetchHistory(served.server, JOB.id);
const health = () => fetchHealth(served.server);

function metricValue(text: string, name: string): number {
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm'));
  if (!m) throw new Error(`metric ${name} missing from /metrics`);
  return Number(m[1]);
}

const volunteer = (browser: Browser, query: string) =>
  openVolunteer(browser, served.server, contexts, query, JOB.name);

const samplesOf = async (page: Page) =>
  Number((await page.locator('#samples').textContent())?.replace(/,/g, '') ?? '0');

test('three tabs train the default job to 85% test accuracy; metrics agree', async ({
  browser,
}) => {
  test.setTimeout(300_000);
  const gpuTab = await volunteer(browser, '?backend=webgpu');
  await gpuTab.screenshot({ path: join(ARTIFACTS, 'volunteer-before-join.png'), fullPage: true });
  // Nothing computes before consent: the server has no worker yet.
  expect((await health()).workers).toBe(0);
  const cpuTab = await volunteer(browser, '?backend=cpu');
  const autoTab = await volunteer(browser, '');
  await joinJob(gpuTab);
  await joinJob(cpuTab);
  await joinJob(autoTab);
  await expect(gpuTab.locator('#backend')).toContainText('WebGPU');
  await expect(gpuTab.locator('#device')).toContainText(/swiftshader/i);
  await expect(cpuTab.locator('#backend')).toContainText('CPU backend');
  // On a software adapter the automatic choice is the CPU backend, and the page says why.
  await expect(autoTab.locator('#backend')).toContainText(/CPU backend: software adapter/);
  await expect.poll(async () => (await health()).workers, { timeout: 10_000 }).toBe(3);

  await expect
    .poll(async () => latestTestAccuracy(await history()), {
      timeout: 240_000,
      intervals: [2_000],
    })
    .toBeGreaterThanOrEqual(0.85);
  await gpuTab.screenshot({ path: join(ARTIFACTS, 'volunteer-training.png'), fullPage: true });
  expect(await samplesOf(gpuTab)).toBeGreaterThan(0);

  const h = await history();
  const lastEval = h.history.filter((r) => r.testAccuracy !== undefined).at(-1);
  const metrics = await getText(`${served.server.url}/metrics`);
  expect(metricValue(metrics, 'meshgrad_test_accuracy')).toBeGreaterThanOrEqual(
    lastEval?.testAccuracy ?? 1,
  );
  expect(metricValue(metrics, 'meshgrad_workers')).toBe(3);
  expect(metricValue(metrics, 'meshgrad_samples_total')).toBeGreaterThanOrEqual(
    lastEval?.samples ?? Infinity,
  );
  expectSamplesNeverDecrease(h);
});

test('a tab closed mid-training is dropped within seconds; the others go on', async () => {
  test.setTimeout(60_000);
  const { remaining, before } = await closeLastTab(served, samplesOf);
  await expect
    .poll(
      async () => (await Promise.all(remaining.map(samplesOf))).every((s, i) => s > before[i]!),
      {
        timeout: 20_000,
      },
    )
    .toBe(true);
});

test('the server killed and restarted: tabs reconnect and the job resumes from its checkpoint', async () => {
  test.setTimeout(120_000);
  const tabs = contexts.map((c) => c.pages()[0]!);
  const before = await history();
  const lastCheckpoint =
    before.history.filter((r) => r.checkpoint !== undefined).at(-1)?.checkpoint ?? 0;
  expect(lastCheckpoint).toBeGreaterThan(0);
  await served.server.kill();
  await expect(tabs[0]!.locator('#connection')).toContainText('reconnecting', { timeout: 15_000 });
  await served.server.start();
  await expect.poll(async () => (await health()).workers, { timeout: 30_000 }).toBe(2);
  for (const tab of tabs) await expect(tab.locator('#connection')).toHaveText('connected');
  const resumed = await history();
  // Nothing recorded was lost, and progress resumes from at least where it was.
  expect(resumed.history.length).toBeGreaterThanOrEqual(before.history.length);
  expect(resumed.samples).toBeGreaterThanOrEqual(before.history.at(-1)?.samples ?? 0);
  await expect
    .poll(async () => (await history()).history.at(-1)?.checkpoint ?? 0, {
      timeout: 60_000,
      intervals: [2_000],
    })
    .toBeGreaterThan(lastCheckpoint);
  const after = await history();
  for (let i = 1; i < after.history.length; i++) {
    expect(after.history[i]!.samples).toBeGreaterThanOrEqual(after.history[i - 1]!.samples);
  }
});

test('malformed, oversized and out-of-order messages get error replies; training goes on', async () => {
  test.setTimeout(60_000);
  const s = connect(`${served.server.url}/volunteer`, {
    transports: ['websocket'],
    reconnection: false,
  });
  try {
    await new Promise<void>((r) => s.once('connect', () => r()));
    const refused: Array<{ event: string; code: string; message: string }> = [];
    s.on('refused', (e: { event: string; code: string; message: string }) => refused.push(e));
    s.emit('stats', { jobId: 'mnist-mlp', samples: 1 }); // out of order: before hello
    const bad = await s.timeout(5_000).emitWithAck('hello', { protocolVersion: 1, device: 42 });
    expect(bad).toMatchObject({ ok: false, code: 'ERR_INVALID_PAYLOAD' });
    const ok = (await s.timeout(5_000).emitWithAck('hello', {
      protocolVersion: 1,
      device: { backend: 'cpu', userAgent: 'e2e attacker' },
    })) as { ok: boolean; neighbours: string[] };
    expect(ok.ok).toBe(true);
    s.emit('relay', { to: ok.neighbours[0] ?? 'x', data: new Uint8Array(1_000_000) }); // oversized
    s.emit('stats', 'garbage');
    await expect
      .poll(() => refused.map((r) => `${r.event}:${r.code}`).sort(), { timeout: 5_000 })
      .toEqual(['relay:ERR_INVALID_PAYLOAD', 'stats:ERR_INVALID_PAYLOAD', 'stats:ERR_NOT_JOINED']);
  } finally {
    s.disconnect();
  }
  const tabs = contexts.map((c) => c.pages()[0]!);
  const before = await Promise.all(tabs.map(samplesOf));
  await expect
    .poll(async () => (await Promise.all(tabs.map(samplesOf))).every((v, i) => v > before[i]!), {
      timeout: 20_000,
    })
    .toBe(true);
  expect((await health()).workers).toBe(2);
  const metrics = await getText(`${served.server.url}/metrics`);
  expect(metrics).toMatch(
    /meshgrad_rejected_messages_total\{event="relay",code="ERR_INVALID_PAYLOAD"\} [1-9]/,
  );
});

test('a browser without WebGPU trains on the CPU backend and says so', async () => {
  test.setTimeout(90_000);
  // Chromium on Linux blocks WebGPU unless --enable-unsafe-webgpu is given.
  const plain = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'),
  });
  try {
    const page = await volunteer(plain, '');
    await joinJob(page);
    await expect(page.locator('#backend')).toContainText('CPU backend');
    await expect(page.locator('#device')).toContainText('no WebGPU adapter');
    await expect.poll(() => samplesOf(page), { timeout: 20_000 }).toBeGreaterThan(0);
  } finally {
    await plain.close();
  }
});
