/**
 * The admin console end to end: the real server process (`apps/server/dist/main.js`), real
 * volunteer tabs on the CPU backend, and the console in real Chromium. One server and one
 * console page for the whole file; the tests run in order and build on each other.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page } from '@playwright/test';
import { io as connect } from 'socket.io-client';
import {
  decodeSafetensors,
  evaluate,
  importParameters,
  loadMnist,
  parameterLayout,
  type ModelSpec,
} from '@meshgrad/core';
import { test, expect as baseExpect } from './fixtures.ts';
import {
  ARTIFACTS,
  openView,
  parseSafetensorsFraming,
  readF32,
  screenshot,
  signIn,
} from '../admin/helpers.ts';
import { serveJobForFile } from '../volunteer/job-pages.ts';
import type { ServerProcess } from '../volunteer/server-process.ts';

/**
 * Console actions wait for a server round trip (which fsyncs job progress) and a live update,
 * while the volunteer tabs keep both cores of a CI machine busy: 5 s is too tight there.
 */
const expect = baseExpect.configure({ timeout: 20_000 });

const MODEL: ModelSpec = { kind: 'mlp', inputs: 784, hidden: [64], classes: 10 };
const JOB = {
  id: 'mnist-admin',
  name: 'MNIST digits for the admin console',
  host: 'meshgrad e2e',
  model: MODEL,
  dataset: { kind: 'mnist' },
  batchSize: 32,
  learningRate: 0.1,
  checkpointIntervalSec: 3,
  communication: { communicationPeriod: 128, blocksPerMessage: 1, encoding: 'f32' },
};

const served = serveJobForFile(JOB, ARTIFACTS);
const contexts = served.contexts;
let server: ServerProcess;
let token: string;
let admin: Page;
const volunteers: Page[] = [];

test.beforeAll(() => {
  server = served.server;
  // No MESHGRAD_ADMIN_TOKEN: the server made one and keeps it in the data directory.
  token = readFileSync(join(server.dataDir, 'admin-token'), 'utf8').trim();
  expect(token.length).toBeGreaterThanOrEqual(24);
});

async function newPage(browser: Browser, label: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') console.log(`[${label}] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.log(`[${label}:error] ${err.message}`));
  return page;
}

async function joinVolunteer(browser: Browser, n: number): Promise<Page> {
  const page = await newPage(browser, `volunteer ${n}`);
  await page.goto(`${server.url}/?backend=cpu`);
  await expect(page.locator('#job-name')).toHaveText(JOB.name);
  await page.locator('#join').click();
  await expect(page.locator('#state')).toHaveText('Training', { timeout: 60_000 });
  return page;
}

const workerIdOf = (page: Page) =>
  page.evaluate(() => sessionStorage.getItem('meshgrad.workerId') ?? '');

const numberIn = async (page: Page, selector: string) =>
  Number(((await page.locator(selector).first().textContent()) ?? '').replace(/[^0-9.]/g, ''));

const api = (path: string, auth?: string, init: RequestInit = {}) =>
  fetch(`${server.url}${path}`, {
    ...init,
    headers: {
      ...(init.headers as Record<string, string> | undefined),
      ...(auth === undefined ? {} : { authorization: `Bearer ${auth}` }),
    },
  });

test('without the token the console asks for it, and the API and namespace refuse and leak nothing', async ({
  browser,
}) => {
  admin = await newPage(browser, 'admin');
  await admin.goto(`${server.url}/admin`);
  await expect(admin.locator('#login-card')).toBeVisible();
  await expect(admin.locator('#console')).toBeHidden();
  await expect(admin.locator('#token')).toBeFocused();
  await screenshot(admin, 'admin-login');
  await admin.locator('#token').fill('not-the-token');
  await admin.locator('#sign-in').click();
  await expect(admin.locator('#login-error')).toContainText('That token is wrong');
  await expect(admin.locator('#console')).toBeHidden();
  await screenshot(admin, 'admin-login-wrong-token');

  for (const path of [
    '/api/admin/session',
    '/api/admin/jobs',
    `/api/admin/jobs/${JOB.id}`,
    `/api/admin/jobs/${JOB.id}/metrics`,
    `/api/admin/jobs/${JOB.id}/checkpoints`,
    `/api/admin/jobs/${JOB.id}/checkpoints/1.safetensors`,
    '/api/admin/not-a-route',
  ]) {
    for (const [auth, status] of [
      [undefined, 401],
      ['wrong', 403],
      [token.slice(1), 403],
    ] as const) {
      const res = await api(path, auth);
      expect(res.status, `${path} with ${String(auth)}`).toBe(status);
      const body = await res.text();
      expect(body).not.toContain(JOB.id);
      expect(body).not.toContain('MNIST');
    }
  }
  const stop = await api(`/api/admin/jobs/${JOB.id}/control`, 'wrong', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ state: 'stopped' }),
  });
  expect(stop.status).toBe(403);
  const publicJobs = (await (await api('/api/jobs')).json()) as { jobs: { state: string }[] };
  expect(publicJobs.jobs[0]?.state).toBe('running');

  for (const auth of [undefined, { token: 'wrong' }]) {
    const s = connect(`${server.url}/admin`, {
      transports: ['websocket'],
      reconnection: false,
      ...(auth ? { auth } : {}),
    });
    const events: string[] = [];
    s.onAny((e: string) => events.push(e));
    const err = await new Promise<Error>((resolve) => s.once('connect_error', resolve));
    expect(err.message).toMatch(/admin token is (required|wrong)/);
    await new Promise((r) => setTimeout(r, 500));
    expect(events).toEqual([]);
    s.disconnect();
  }
});

test('with the token the charts and tables show the running volunteers and update live', async ({
  browser,
}) => {
  test.setTimeout(240_000);
  volunteers.push(await joinVolunteer(browser, 1), await joinVolunteer(browser, 2));
  const ids = await Promise.all(volunteers.map(workerIdOf));
  expect(ids.every((id) => id.startsWith('w-'))).toBe(true);

  await signIn(admin, token);
  await expect(admin.locator('#job-select')).toHaveValue(JOB.id);
  await expect(admin.locator('#kpi-workers')).toHaveText('2', { timeout: 15_000 });
  await expect.poll(() => numberIn(admin, '#kpi-sps'), { timeout: 20_000 }).toBeGreaterThan(0);

  // Charts fill from the metrics history and grow as records arrive (one every 5 s).
  const points = () =>
    admin.locator('[data-chart="throughput"]').getAttribute('data-points').then(Number);
  await expect.poll(points, { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
  const before = await points();
  await expect.poll(points, { timeout: 20_000 }).toBeGreaterThan(before);
  for (const chart of ['loss', 'throughput', 'workers', 'b', 'm', 'encoding']) {
    await expect(admin.locator(`[data-chart="${chart}"] canvas`).first()).toBeVisible();
  }
  await expect.poll(() => numberIn(admin, '#kpi-samples'), { timeout: 30_000 }).toBeGreaterThan(0);
  await screenshot(admin, 'admin-overview');

  await openView(admin, 'workers');
  for (const id of ids) {
    const row = admin.locator(`#workers-table tr[data-worker="${id}"]`);
    await expect(row).toBeVisible();
    await expect(row.locator('.backend')).toContainText('CPU');
    // The automatic balancer tunes them from the job's defaults and says why.
    await expect(row.locator('.settings')).toHaveText(/^b=\d+ · m=\d+ · (f32|f16|int8)$/);
    await expect(row.locator('.balance')).toContainText('budget');
    await expect(row).toHaveAttribute('data-state', 'training', { timeout: 15_000 });
    await expect(row.locator('.neighbours')).toContainText(ids.find((x) => x !== id) as string);
  }
  // The table updates live: a worker's contribution keeps growing without a reload.
  const contribution = `#workers-table tr[data-worker="${ids[0]}"] .contribution`;
  const first = await numberIn(admin, contribution);
  await expect
    .poll(() => numberIn(admin, contribution), { timeout: 20_000 })
    .toBeGreaterThan(first);
  await screenshot(admin, 'admin-workers');

  await openView(admin, 'links');
  await expect(admin.locator('#links-graph circle')).toHaveCount(2);
  // Each volunteer reports its link to the other: one row per direction, direct or relayed.
  await expect(admin.locator('#links-table')).toBeVisible({ timeout: 30_000 });
  await expect(admin.locator('#links-table tbody tr')).toHaveCount(2, { timeout: 30_000 });
  await expect(
    admin.locator(`#links-table tr[data-from="${ids[0]}"][data-to="${ids[1]}"]`),
  ).toContainText(/direct|relayed/);
  await screenshot(admin, 'admin-links');
});

test('pause, resume, a learning-rate change and fixed settings reach the running volunteers', async () => {
  test.setTimeout(180_000);
  await openView(admin, 'control');
  await expect(admin.locator('#lr')).toHaveValue('0.1');

  await admin.locator('#pause').click();
  for (const v of volunteers) await expect(v.locator('#state')).toHaveText('Paused by the host');
  await expect(admin.locator('#job-state')).toHaveText('paused');
  await expect(admin.locator('#resume')).toBeEnabled();
  await expect(admin.locator('#pause')).toBeDisabled();
  await admin.locator('#resume').click();
  for (const v of volunteers) await expect(v.locator('#state')).toHaveText('Training');
  await expect(admin.locator('#job-state')).toHaveText('running');

  // A bad value is refused with the reason next to the field; a good one reaches every tab.
  await admin.locator('#lr').fill('0');
  await admin.locator('#lr-apply').click();
  await expect(admin.locator('#lr-form [data-error-for="learningRate"]')).toContainText('> 0');
  await expect(admin.locator('#lr')).toHaveAttribute('aria-invalid', 'true');
  await admin.locator('#lr').fill('0.05');
  await admin.locator('#lr-apply').click();
  for (const v of volunteers) await expect(v.locator('#lr')).toHaveText('0.05');
  await expect(admin.locator('#lr-form [data-error-for="learningRate"]')).toBeEmpty();

  await admin.locator('#balancer-fixed').check();
  await admin.locator('#b').fill('64');
  await admin.locator('#m').fill('99');
  await admin.locator('#encoding').selectOption('f16');
  await admin.locator('#balancer-apply').click();
  await expect(admin.locator('#balancer-form [data-error-for="blocksPerMessage"]')).toContainText(
    'at most',
  );
  await screenshot(admin, 'admin-control-errors');
  await admin.locator('#m').fill('2');
  await admin.locator('#balancer-apply').click();
  await expect(admin.locator('#balancer-form [data-error-for="blocksPerMessage"]')).toBeEmpty();
  await expect(admin.locator('#control-toast')).toContainText('b=64 · m=2 · f16');
  await screenshot(admin, 'admin-control');

  await openView(admin, 'workers');
  const rows = admin.locator('#workers-table tbody tr');
  await expect(rows).toHaveCount(2);
  for (const row of await rows.all()) {
    await expect(row.locator('.settings')).toHaveText('b=64 · m=2 · f16');
    await expect(row.locator('.balance')).toHaveCount(0);
  }
  // The per-worker charts pick the change up from the next metrics record.
  await openView(admin, 'overview');
  await expect
    .poll(
      async () =>
        (
          (await (await api(`/api/admin/jobs/${JOB.id}/metrics`, token)).json()) as {
            history: { perWorker?: Record<string, { encoding: string }> }[];
          }
        ).history.at(-1)?.perWorker?.[(await workerIdOf(volunteers[0] as Page)) as string]
          ?.encoding,
      { timeout: 20_000 },
    )
    .toBe('f16');
  // Back to automatic: the balancer takes over from the current settings, as the page says.
  await openView(admin, 'control');
  await expect(admin.locator('#balancer-note')).toContainText('from the current settings');
  await admin.locator('#balancer-automatic').check();
  await admin.locator('#balancer-apply').click();
  await expect(admin.locator('#control-toast')).toContainText('automatic');
  await openView(admin, 'workers');
  for (const row of await rows.all()) await expect(row.locator('.balance')).toContainText('budget');
});

test('a downloaded safetensors checkpoint parses and evaluates to the accuracy the console shows', async () => {
  test.setTimeout(180_000);
  await openView(admin, 'checkpoints');
  const newest = admin.locator('#checkpoints-table tbody tr').first();
  await expect(newest).toBeVisible({ timeout: 60_000 });
  // Wait until training has moved the model off chance level, so the check means something.
  await expect
    .poll(
      async () =>
        Number(((await newest.locator('.quality').textContent()) ?? '0').replace('%', '')),
      {
        timeout: 120_000,
        intervals: [2_000],
      },
    )
    .toBeGreaterThan(30);
  await screenshot(admin, 'admin-checkpoints');
  // New checkpoints keep arriving on top: pin the row by its number from here on.
  const seq = Number(await newest.getAttribute('data-seq'));
  const row = admin.locator(`#checkpoints-table tr[data-seq="${seq}"]`);
  const shown = (await row.locator('.quality').textContent()) ?? '';

  const download = admin.waitForEvent('download');
  await row.locator('.download-safetensors').click();
  const file = await download;
  expect(file.suggestedFilename()).toBe(`${JOB.id}-checkpoint-${seq}.safetensors`);
  const savedTo = join(ARTIFACTS, file.suggestedFilename());
  await file.saveAs(savedTo);
  const bytes = new Uint8Array(readFileSync(savedTo));

  // The framing, read by hand: header JSON with the model's tensors, in order, as F32.
  const layout = parameterLayout(MODEL);
  const { header, headerBytes, dataStart } = parseSafetensorsFraming(bytes);
  expect(headerBytes % 8).toBe(0);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  expect(names).toEqual(['dense0.weight', 'dense0.bias', 'dense1.weight', 'dense1.bias']);
  const expectedShapes = {
    'dense0.weight': [784, 64],
    'dense0.bias': [64],
    'dense1.weight': [64, 10],
    'dense1.bias': [10],
  };
  const byHand = new Float32Array(layout.size);
  let end = 0;
  for (const t of layout.tensors) {
    const entry = header[t.name] as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    expect(entry.dtype).toBe('F32');
    expect(entry.shape).toEqual(expectedShapes[t.name as keyof typeof expectedShapes]);
    expect(entry.data_offsets[0]).toBe(end);
    end = entry.data_offsets[1];
    byHand.set(readF32(bytes, dataStart, entry.data_offsets), t.offset);
  }
  expect(dataStart + end).toBe(bytes.byteLength);
  const metadata = header.__metadata__ as Record<string, string>;
  expect(metadata['meshgrad.checkpoint']).toBe(String(seq));
  expect(metadata['meshgrad.job']).toBe(JOB.id);

  // The project's reader agrees with the hand parse.
  const params = importParameters(layout, decodeSafetensors(bytes));
  expect(params).toEqual(byHand);

  // Evaluated here, independently of the server, on the MNIST test split.
  const { test: testSet } = await loadMnist();
  const result = evaluate(layout, params, testSet);
  expect(`${((result.accuracy ?? -1) * 100).toFixed(2)}%`).toBe(shown);
  const listed = (await (await api(`/api/admin/jobs/${JOB.id}/checkpoints`, token)).json()) as {
    checkpoints: { seq: number; testAccuracy?: number }[];
  };
  expect(listed.checkpoints.find((c) => c.seq === seq)?.testAccuracy).toBe(result.accuracy);

  // The raw download is the same vector as float32 little-endian.
  const raw = admin.waitForEvent('download');
  await row.locator('.download-binary').click();
  const rawFile = await raw;
  const rawPath = join(ARTIFACTS, rawFile.suggestedFilename());
  await rawFile.saveAs(rawPath);
  const rawBytes = readFileSync(rawPath);
  expect(new Float32Array(rawBytes.buffer, rawBytes.byteOffset, rawBytes.byteLength / 4)).toEqual(
    params,
  );
});

test('jobs are created from the form or a spec file, with errors next to the field', async () => {
  test.setTimeout(120_000);
  await openView(admin, 'new-job');
  await screenshot(admin, 'admin-new-job');
  await admin.locator('#job-id').fill('Blobs One');
  await admin.locator('#job-name').fill('Blobs from the form');
  await admin.locator('#job-model-kind').selectOption('kmeans');
  await expect(admin.locator('#job-model-inputs')).toBeHidden();
  await admin.locator('#job-model-dims').fill('3');
  await admin.locator('#job-model-clusters').fill('4');
  await admin.locator('#job-dataset-kind').selectOption('clusters');
  await admin.locator('#job-dataset-clusters').fill('4');
  await admin.locator('#job-dataset-dims').fill('3');
  await admin.locator('#job-dataset-count').fill('400');
  await admin.locator('#job-learningRate').fill('-1');
  await admin.locator('#create-job').click();
  const idError = admin.locator('[data-error-for="id"]');
  await expect(idError).toContainText('lower-case');
  await expect(admin.locator('#job-id')).toHaveAttribute('aria-invalid', 'true');
  await admin.locator('#job-id').fill('blobs-one');
  await admin.locator('#create-job').click();
  await expect(idError).toBeEmpty();
  await expect(admin.locator('#job-form [data-error-for="learningRate"]')).not.toBeEmpty();
  await screenshot(admin, 'admin-new-job-errors');
  await admin.locator('#job-learningRate').fill('0.05');
  await admin.locator('#create-job').click();
  await expect(admin.locator('#view-overview')).toBeVisible();
  await expect(admin.locator('#job-select')).toHaveValue('blobs-one');
  await expect(admin.locator('#kpi-workers')).toHaveText('0');

  // A spec file fills the form; creating it runs it.
  await openView(admin, 'new-job');
  const spec = {
    id: 'blobs-two',
    name: 'Blobs from a file',
    model: { kind: 'kmeans', dims: 2, clusters: 3 },
    dataset: { kind: 'clusters', clusters: 3, dims: 2, count: 300, testCount: 100 },
    batchSize: 16,
  };
  await admin.locator('#spec-file').setInputFiles({
    name: 'blobs-two.json',
    mimeType: 'application/json',
    buffer: Buffer.from(JSON.stringify(spec)),
  });
  await expect(admin.locator('#job-id')).toHaveValue('blobs-two');
  await expect(admin.locator('#job-model-kind')).toHaveValue('kmeans');
  await expect(admin.locator('#job-batchSize')).toHaveValue('16');
  await admin.locator('#create-job').click();
  await expect(admin.locator('#job-select')).toHaveValue('blobs-two');
  const jobs = (await (await api('/api/admin/jobs', token)).json()) as { jobs: { id: string }[] };
  expect(jobs.jobs.map((j) => j.id)).toEqual([JOB.id, 'blobs-one', 'blobs-two']);
  // Volunteers stay on the first running job.
  for (const v of volunteers) await expect(v.locator('#state')).toHaveText('Training');
  await admin.locator('#job-select').selectOption(JOB.id);
  await expect(admin.locator('#kpi-workers')).toHaveText('2');
});

test('a reload shows the whole run from the metrics history', async () => {
  test.setTimeout(60_000);
  await admin.reload();
  await expect(admin.locator('#console')).toBeVisible();
  await expect(admin.locator('#job-select')).toHaveValue(JOB.id);
  const history = (await (await api(`/api/admin/jobs/${JOB.id}/metrics`, token)).json()) as {
    history: unknown[];
  };
  const points = () =>
    admin.locator('[data-chart="throughput"]').getAttribute('data-points').then(Number);
  await expect.poll(points, { timeout: 15_000 }).toBeGreaterThanOrEqual(history.history.length);
  await expect(admin.locator('[data-chart="accuracy"]')).not.toHaveAttribute('data-points', '0');
  await screenshot(admin, 'admin-overview-after-reload');
});

test('stopping the job reaches the volunteers and locks the controls', async () => {
  test.setTimeout(60_000);
  await openView(admin, 'control');
  await admin.locator('#stop').click();
  await expect(admin.locator('#stop-confirm-box')).toBeVisible();
  await admin.locator('#stop-confirm').click();
  for (const v of volunteers) await expect(v.locator('#state')).toHaveText('Paused by the host');
  await expect(admin.locator('#job-state')).toHaveText('stopped');
  for (const id of ['pause', 'resume', 'stop', 'lr-apply', 'balancer-apply', 'checkpoint-now']) {
    await expect(admin.locator(`#${id}`)).toBeDisabled();
  }
  await screenshot(admin, 'admin-control-stopped');
  const res = await api(`/api/admin/jobs/${JOB.id}/control`, token, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ state: 'running' }),
  });
  expect(res.status).toBe(409);
});
