/**
 * One-way neighbour lists over real data channels. The balancer chooses whom each worker sends
 * to, so worker a may name b while b does not name a; a data channel carries both ways, so the
 * pair still needs one, whichever id is the smaller (apps/client/src/volunteer/peers.ts). Here a
 * ring with one neighbour each (a → b → c → a): c names a, the smaller id, which does not name
 * c, so c must offer itself. And when c joins, b's list changes from a to c while a still names
 * b: b must keep the link a sends over (before, a fell back to the server relay).
 */
import { type Browser } from '@playwright/test';
import { test, expect } from './fixtures.ts';
import { buildOnce, freePort, ServerProcess } from '../volunteer/server-process.ts';
import {
  links,
  metricValue,
  openTab,
  serverLinks,
  waitForMesh,
  type Tab,
} from '../p2p/volunteers.ts';

const IDS = ['w-oneway-a', 'w-oneway-b', 'w-oneway-c'];

const JOB = {
  id: 'p2p-one-way',
  name: 'p2p one-way neighbours',
  host: 'meshgrad e2e',
  model: { kind: 'softmax', inputs: 784, classes: 10 },
  dataset: { kind: 'mnist' },
  batchSize: 32,
  learningRate: 0.5,
  seed: 1,
  shards: 3,
  neighbours: 1,
  checkpointIntervalSec: 3600,
  // Fixed settings keep the ring: each worker names exactly the next id.
  balancer: { mode: 'fixed', communicationPeriod: 32, blocksPerMessage: 1, encoding: 'f32' },
};

let server: ServerProcess | null = null;
const tabs: Tab[] = [];

test.beforeAll(() => {
  test.setTimeout(300_000);
  buildOnce();
});

// eslint-disable-next-line no-empty-pattern
test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && server) {
    console.log(`[server output]\n${server.output.slice(-4000)}`);
  }
  for (const t of tabs.splice(0)) await t.context.close().catch(() => undefined);
  await server?.stop();
  server = null;
});

async function open(browser: Browser, s: ServerProcess): Promise<Tab[]> {
  for (const id of IDS) tabs.push(await openTab(browser, s, id, '?backend=cpu', undefined, 30));
  return tabs;
}

test('a worker named by a peer it does not name gets a direct link both ways; nothing is relayed', async ({
  browser,
}) => {
  test.setTimeout(180_000);
  server = new ServerProcess(await freePort(), JOB);
  await server.start();
  const run = await open(browser, server);
  // Each tab has two direct links: to the peer it names and from the peer that names it.
  await waitForMesh(run, 'direct', 60_000);
  await expect
    .poll(
      async () =>
        Math.min(
          ...(await Promise.all(run.map(links))).flat().map((l) => l.blocksReceived + l.blocksSent),
        ),
      {
        timeout: 60_000,
      },
    )
    .toBeGreaterThan(0);
  const [a, , c] = run as [Tab, Tab, Tab];
  const fromA = (await links(a)).find((l) => l.peer === c.id);
  const fromC = (await links(c)).find((l) => l.peer === a.id);
  // c sends to a over the link c offered; a sends nothing back over it.
  expect(fromC).toMatchObject({ route: 'direct', relayed: false });
  expect(fromC?.blocksSent).toBeGreaterThan(0);
  expect(fromA).toMatchObject({ route: 'direct', relayed: false, blocksSent: 0 });
  await expect
    .poll(async () => (await links(a)).find((l) => l.peer === c.id)?.blocksReceived)
    .toBeGreaterThan(0);
  expect(await metricValue(server, 'meshgrad_relayed_bytes_total')).toBe(0);
  // The server sees the neighbour lists it handed out: one each, around the ring.
  const reported = await serverLinks(server, JOB.id);
  expect(
    reported
      .get(c.id)
      ?.map((l) => l.peer)
      .sort(),
  ).toEqual([a.id, IDS[1]].sort());
});
