/**
 * A host's own WGSL kernel, run by a volunteer tab: the examples/custom-wgsl-linreg job on the
 * real server process. The tab must use WebGPU even on a software adapter (the kernel has no
 * CPU implementation), and a browser without WebGPU is told it cannot join.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from '@playwright/test';
import { test, expect } from './fixtures.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../harness/chromium.ts';
import { getJson } from '../harness/http.ts';
import { buildOnce, freePort, ServerProcess } from '../volunteer/server-process.ts';

const EXAMPLE = resolve(import.meta.dirname, '../../examples/custom-wgsl-linreg');

interface History {
  history: Array<{ testLoss?: number; checkpoint?: number }>;
}

let server: ServerProcess;
let job: { id: string; name: string; stop: { targetLoss: number } };

// Serial, and the refusal first: once the job reaches its target it stops itself.
test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  test.setTimeout(300_000);
  buildOnce();
  const spec = JSON.parse(readFileSync(join(EXAMPLE, 'job.json'), 'utf8')) as {
    id: string;
    name: string;
    stop: { targetLoss: number };
    model: { kernel: string };
    dataset: { file: string };
    checkpointIntervalSec?: number;
  };
  // The server copies the spec into its data directory, so its relative paths become absolute.
  spec.model.kernel = join(EXAMPLE, spec.model.kernel);
  spec.dataset.file = join(EXAMPLE, spec.dataset.file);
  spec.checkpointIntervalSec = 3;
  job = spec;
  server = new ServerProcess(await freePort(), spec);
  await server.start();
});

test.afterAll(async () => {
  await server?.stop();
});

test('a browser without WebGPU is told it cannot join a custom-WGSL job', async () => {
  test.setTimeout(60_000);
  const plain = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'),
  });
  try {
    const page = await plain.newPage();
    await page.goto(`${server.url}/`);
    await expect(page.locator('#job-name')).toHaveText(job.name);
    await page.locator('#join').click();
    await expect(page.locator('#error')).toContainText('needs WebGPU', { timeout: 30_000 });
  } finally {
    await plain.close();
  }
});

test('a tab trains a custom-WGSL job on WebGPU, even on a software adapter, to its target', async ({
  page,
}) => {
  test.setTimeout(180_000);
  page.on('console', (msg) => console.log(`[tab] ${msg.text()}`));
  await page.goto(`${server.url}/`);
  await expect(page.locator('#job-name')).toHaveText(job.name);
  await page.locator('#join').click();
  await expect(page.locator('#state')).toHaveText('Training', { timeout: 60_000 });
  await expect(page.locator('#backend')).toContainText('WebGPU (this job runs its own WGSL kernel');
  await expect
    .poll(
      async () => {
        const h = await getJson<History>(`${server.url}/api/jobs/${job.id}/metrics`);
        return h.history.filter((r) => r.testLoss !== undefined).at(-1)?.testLoss ?? Infinity;
      },
      { timeout: 150_000, intervals: [2_000] },
    )
    .toBeLessThanOrEqual(job.stop.targetLoss);
});
