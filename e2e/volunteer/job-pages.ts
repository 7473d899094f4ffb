/**
 * What the volunteer and sync specs share: one server process per spec file, the server's
 * metrics history and health as the specs read them, and volunteer tabs that open the page and
 * join the job.
 */
import { mkdirSync } from 'node:fs';
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { getJson } from '../harness/http.ts';
import { buildOnce, freePort, ServerProcess } from './server-process.ts';

/**
 * The volunteer and sync specs' job without its training settings: the MNIST MLP (784-128-10)
 * at batch 32 and η = 0.1, checkpointed every 3 s.
 */
export const MNIST_MLP_JOB = {
  id: 'mnist-mlp',
  name: 'MNIST digits, 784-128-10 MLP',
  host: 'meshgrad e2e',
  model: { kind: 'mlp', inputs: 784, hidden: [128], classes: 10 },
  dataset: { kind: 'mnist' },
  batchSize: 32,
  learningRate: 0.1,
  checkpointIntervalSec: 3,
};

/** A spec file's server and the browser contexts its tests opened. */
export interface ServedJob {
  /** The server process (throws before the file's first test). */
  readonly server: ServerProcess;
  readonly contexts: BrowserContext[];
}

/**
 * Runs the file's tests in order against one server process serving `job`: built and started
 * before the first test (artefacts go to `artifacts`), stopped after the last, with every
 * context the tests opened closed.
 */
export function serveJobForFile(
  /** The job file's spec; `null` runs the server's built-in default job, as `npm start` does. */
  job: object | null,
  artifacts: string,
  /** More `meshgrad serve` options. */
  extraArgs: readonly string[] = [],
): ServedJob {
  let server: ServerProcess | undefined;
  const contexts: BrowserContext[] = [];
  test.describe.configure({ mode: 'serial' });
  test.beforeAll(async () => {
    test.setTimeout(300_000);
    buildOnce();
    mkdirSync(artifacts, { recursive: true });
    server = new ServerProcess(await freePort(), job, extraArgs);
    await server.start();
  });
  // eslint-disable-next-line no-empty-pattern -- Playwright reads the fixtures from a pattern
  test.afterEach(({}, testInfo) => {
    // A failed test shows what the server said meanwhile (warnings and errors only).
    if (server && testInfo.status !== testInfo.expectedStatus) {
      console.log(`[server log, last 4,000 characters]\n${server.output.slice(-4000)}`);
    }
  });
  test.afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await server?.stop();
  });
  return {
    get server() {
      if (!server) throw new Error("the spec file's server has not started");
      return server;
    },
    contexts,
  };
}

/** A job's metrics history (`/api/jobs/<job>/metrics`), the fields the specs read. */
export interface History {
  samples: number;
  history: Array<{ samples: number; testAccuracy?: number; checkpoint?: number; workers: number }>;
}

/**
 * GET `path` of the server as JSON (a reset connection retried, see harness/http.ts); a server
 * that stopped answering fails every time, and the error carries the end of its log.
 */
async function fetchJson<T>(server: ServerProcess, path: string): Promise<T> {
  try {
    return await getJson<T>(`${server.url}${path}`);
  } catch (err) {
    throw new Error(`${String(err)}; server log:\n${server.output.slice(-4000)}`, { cause: err });
  }
}

/** The job's metrics history (`/api/jobs/<job>/metrics`). */
export function fetchHistory(server: ServerProcess, jobId: string): Promise<History> {
  return fetchJson<History>(server, `/api/jobs/${jobId}/metrics`);
}

/** The test accuracy of the last evaluated record (0 before the first evaluation). */
export function latestTestAccuracy(history: History): number {
  return history.history.filter((h) => h.testAccuracy !== undefined).at(-1)?.testAccuracy ?? 0;
}

/** The history's sample counts never go backwards. */
export function expectSamplesNeverDecrease(history: History): void {
  for (let i = 1; i < history.history.length; i++) {
    expect(history.history[i]!.samples).toBeGreaterThanOrEqual(history.history[i - 1]!.samples);
  }
}

/**
 * Closes the last context the spec opened (one tab), with `read` of each remaining tab taken
 * just before, and waits until the server counts one volunteer fewer.
 */
export async function closeLastTab<T>(
  served: ServedJob,
  read: (page: Page) => Promise<T>,
): Promise<{ remaining: Page[]; before: T[] }> {
  const closing = served.contexts.pop();
  if (!closing) throw new Error('no tab to close');
  const remaining = served.contexts.map((c) => c.pages()[0]!);
  const before = await Promise.all(remaining.map(read));
  await closing.close();
  await expect
    .poll(async () => (await fetchHealth(served.server)).workers, { timeout: 10_000 })
    .toBe(remaining.length);
  return { remaining, before };
}

/** The server's `/healthz`: connected volunteers. */
export function fetchHealth(server: ServerProcess): Promise<{ workers: number }> {
  return fetchJson<{ workers: number }>(server, '/healthz');
}

/**
 * Opens the volunteer page with `query` in a fresh context (added to `contexts` for the
 * caller to close), logs the tab's console, and waits until it shows `jobName`.
 */
export async function openVolunteer(
  browser: Browser,
  server: ServerProcess,
  contexts: BrowserContext[],
  query: string,
  jobName: string,
): Promise<Page> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  page.on('console', (msg) => console.log(`[tab ${query}] ${msg.text()}`));
  page.on('pageerror', (err) => console.log(`[tab ${query}:error] ${err.message}`));
  await page.goto(`${server.url}/${query}`);
  await expect(page.locator('#job-name')).toHaveText(jobName);
  return page;
}

/** Clicks Join and waits until the tab trains. */
export async function joinJob(page: Page): Promise<void> {
  await page.locator('#join').click();
  await expect(page.locator('#state')).toHaveText('Training', { timeout: 60_000 });
}
