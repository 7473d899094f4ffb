/**
 * The bandwidth-aware balancer on real shaped links (issue 5, DESIGN §3): three volunteers, each
 * its own Chromium inside its own network namespace, behind `tbf` rate limits of different
 * speeds (e2e/harness/netns.ts). The real server process runs the automatic balancer from the
 * workers' per-link reports. The spec checks, from the server's side, that the slow volunteer
 * is given less traffic per sample (a larger b, a smaller m or a coarser encoding) than the fast
 * one, that the slow volunteer's data-channel backlog stays bounded throughout, and that
 * training reaches its target accuracy.
 *
 * Needs root for `ip netns` and `tc`; skips, saying why, only where `ip netns add` is refused.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from '@playwright/test';
import {
  messageBytes,
  type AdminJobSnapshot,
  type LinkStats,
  type ModelTraffic,
  type WorkerSettings,
} from '@meshgrad/core';
import { test, expect } from './fixtures.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../harness/chromium.ts';
import { getJson } from '../harness/http.ts';
import {
  LAB_LOCK_WAIT_MS,
  NetnsLab,
  netnsRefusedReason,
  type ShapedLink,
  type ShapedLinkSpec,
} from '../harness/netns.ts';
import { buildOnce, freePort, ServerProcess } from '../volunteer/server-process.ts';
import { adminToken, links, setJobState, waitForMesh, type Tab } from '../p2p/volunteers.ts';

const ARTIFACTS = join(import.meta.dirname, '../artifacts');
/** Names this spec's namespaces and interfaces; unique to it, so stale ones can be removed. */
const PREFIX = 'mgbal-';
const JOB_ID = 'balance-netns';
const TARGET_ACCURACY = 0.85;
/**
 * Per-direction rates. The MLP 784-128-10 is about 400 KB in float32: the slow uplink cannot
 * carry one model per second, the fast one carries a dozen.
 */
const LINKS: readonly ShapedLinkSpec[] = [
  { name: 'fast', uploadKbit: 50_000, downloadKbit: 50_000 },
  { name: 'mid', uploadKbit: 20_000, downloadKbit: 20_000 },
  // Home broadband: the upload is the slow direction. A download as slow as the upload would
  // cap what the fast volunteers can send to this one (a send goes to a random neighbour), so
  // every sender would look alike to the balancer.
  { name: 'slow', uploadKbit: 2_000, downloadKbit: 8_000 },
];
/** The page's compute duty cycle: three browsers share two cores with the network stack. */
const DUTY_PERCENT = 50;
/**
 * Bound on the slow volunteer's backlog (all of its channels), as seconds of what its shaped
 * uplink drains (the tbf rate), so it does not move with the settings the balancer chooses: a
 * worse choice (larger messages, more traffic) must fail the test, not loosen it. The design
 * asks for a short queue (DESIGN §3.5): the page's valve, held at every send, lets the channels
 * hold about half a second of the link (a quarter second of a drain rate it counts as at most
 * twice its goodput) or two sends of m blocks, so one second of the link covers it. The margin,
 * a factor 2 on that second, is for the loaded machine: three Chromiums and the server share
 * two cores, and while Chromium's network thread waits for a core the channels drain below the
 * tbf rate.
 */
const BACKLOG_DRAIN_SECONDS = 2;
/**
 * Seconds of training (sampler ticks, one per balancer tick) before the settings are compared:
 * the target accuracy comes within seconds on three CPU-backend tabs, the balancer needs longer.
 */
const SETTLE_TICKS = 60;
/** Ticks in a row the slow worker must have the coarser settings: a steady state, not a blip. */
const STEADY_TICKS = 10;
/**
 * Once settled (from SETTLE_TICKS on) the slow volunteer's link is steady, and so must its
 * settings be: for STEADY_WINDOW_TICKS samples its planned bytes per sample stay within a factor
 * STEADY_FACTOR of their median. The link's own noise is large: SCTP in Chromium behind `tbf`
 * has single seconds of goodput at a fifth of the estimate, and two messages to the same peer
 * sit in that channel's queue now and then. When one such second counted as a bandwidth drop, or
 * one such queue as a link cap, the settings fell to a third of their median for 10 s or more
 * (CI failed at 0.327 of it); the balancer now waits for a second tick for both (controller
 * rules 1 and 4). Measured since, in five runs: 0.93–1.47, 1.00–1.00, 1.00–1.00, 1.00–1.00 and
 * 0.79–1.44 of the median. Before these and the earlier fixes (fresh reports only, browsers'
 * busy fractions discounted, checkpoints from the fastest uplink) the same window spanned
 * 0.4–2.8 and the budget could run away (stale reports: 131 kB/s to 8.4 MB/s) or sit at zero.
 */
const STEADY_WINDOW_TICKS = 30;
const STEADY_FACTOR = 3;

const MODEL = { kind: 'mlp', inputs: 784, hidden: [128], classes: 10 } as const;
const JOB = {
  id: JOB_ID,
  name: 'Balancer on shaped links',
  host: 'meshgrad e2e',
  model: MODEL,
  dataset: { kind: 'mnist' },
  batchSize: 32,
  learningRate: 0.1,
  seed: 1,
  shards: 3,
  neighbours: 4,
  // Checkpoints are uploads of the whole model over the same shaped links; not too often.
  checkpointIntervalSec: 10,
  // Where every worker starts: one float32 block every 4096 samples, which even the slow link
  // carries. The balancer has to find out how much more each link takes.
  communication: { communicationPeriod: 4096, blocksPerMessage: 1, encoding: 'f32' },
  balancer: { mode: 'automatic' },
};

interface Volunteer extends Tab {
  readonly link: ShapedLink;
  readonly browser: Browser;
}

/** One second's view of one worker, from the server's admin API and the kernel's counters. */
interface WorkerSample {
  readonly settings: WorkerSettings;
  readonly samplesPerSec: number;
  /** Bytes buffered on all of the worker's data channels, as it last reported. */
  readonly backlogBytes: number;
  readonly goodputBytesPerSec: number;
  readonly routes: string[];
  /** Why the balancer set these settings (budget, capacity estimate, rule), when it says. */
  readonly balance: AdminJobSnapshot['workers'][number]['balance'] | null;
  /** Bytes/s through the shaped link since the previous sample (kernel counters). */
  readonly uploadBytesPerSec: number;
  readonly downloadBytesPerSec: number;
}

interface Sample {
  readonly t: number;
  readonly workers: Record<string, WorkerSample>;
}

const lab = new NetnsLab(PREFIX);
const browsers: Browser[] = [];
let server: ServerProcess | null = null;
let refused: string | null = null;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  // Another run of this spec on the machine holds the namespaces until it is done.
  test.setTimeout(300_000 + LAB_LOCK_WAIT_MS);
  refused = netnsRefusedReason(PREFIX);
  if (refused !== null) {
    console.log(`[balance-netns] skipped: ${refused}`);
    return;
  }
  await lab.lock();
  // A run that died earlier may have left namespaces behind.
  lab.removeStale();
  buildOnce();
  mkdirSync(ARTIFACTS, { recursive: true });
});

test.afterAll(async () => {
  for (const b of browsers.splice(0)) await b.close().catch(() => undefined);
  await server?.stop();
  server = null;
  lab.cleanup();
});

// eslint-disable-next-line no-empty-pattern
test.afterEach(({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && server) {
    console.log(`[server output]\n${server.output.slice(-6000)}`);
    for (const l of lab.links) console.log(`[tc ${l.name}] ${lab.qdiscStats(l)}`);
  }
});

/** Traffic a worker's settings plan per sample, bytes (the balancer's own accounting). */
function bytesPerSample(s: WorkerSettings, model: ModelTraffic): number {
  return (s.blocksPerMessage * messageBytes(model, s.encoding)) / s.communicationPeriod;
}

const PRECISION: Record<WorkerSettings['encoding'], number> = { f32: 4, f16: 2, int8: 1 };

function describeSettings(s: WorkerSettings): string {
  return `b=${s.communicationPeriod} m=${s.blocksPerMessage} ${s.encoding}`;
}

async function snapshot(srv: ServerProcess): Promise<AdminJobSnapshot> {
  return getJson<AdminJobSnapshot>(`${srv.url}/api/admin/jobs/${JOB_ID}`, {
    authorization: `Bearer ${adminToken(srv)}`,
  });
}

async function lastAccuracy(srv: ServerProcess): Promise<number> {
  const h = await getJson<{ history: Array<{ samples: number; testAccuracy?: number }> }>(
    `${srv.url}/api/jobs/${JOB_ID}/metrics`,
  );
  return h.history.filter((r) => r.testAccuracy !== undefined).at(-1)?.testAccuracy ?? 0;
}

/**
 * Launches Chromium inside the link's namespace and joins the job as worker `w-<name>`. The
 * page is served from the host end of the veth, an address that is not `localhost`, so Chromium
 * is told to treat that origin as secure (the page needs a secure context). mDNS host
 * candidates are turned off: a `.local` name does not resolve across namespaces.
 */
async function launchVolunteer(srv: ServerProcess, link: ShapedLink): Promise<Volunteer> {
  const origin = `http://${link.hostAddress}:${srv.port}`;
  const browser = await chromium.launch({
    executablePath: lab.browserWrapper(link, CHROMIUM_PATH, ['WebRtcHideLocalIpsWithMdns']),
    headless: true,
    args: [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${origin}`],
  });
  browsers.push(browser);
  const id = `w-${link.name}`;
  const context = await browser.newContext();
  await context.addInitScript((workerId) => {
    sessionStorage.setItem('meshgrad.workerId', workerId);
  }, id);
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') console.log(`[${id}] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.log(`[${id}:error] ${err.message}`));
  await page.goto(`${origin}/?backend=cpu`);
  await expect(page.locator('#join')).toBeEnabled({ timeout: 60_000 });
  await page.locator('#join').click();
  await expect(page.locator('#state')).toHaveText(/Training|Paused/, { timeout: 180_000 });
  await page.locator('#duty').fill(String(DUTY_PERCENT));
  expect(await page.evaluate(() => window.meshgrad.workerId())).toBe(id);
  return { id, page, context, link, browser };
}

/** Samples the server's view of every worker and the kernel's link counters once a second. */
class Sampler {
  readonly samples: Sample[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;
  private last = new Map<string, { t: number; up: number; down: number }>();
  private readonly started = Date.now();

  constructor(
    private readonly srv: ServerProcess,
    private readonly volunteers: readonly Volunteer[],
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), 1_000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const snap = await snapshot(this.srv);
      const t = (Date.now() - this.started) / 1000;
      const workers: Record<string, WorkerSample> = {};
      for (const v of this.volunteers) {
        const w = snap.workers.find((x) => x.id === v.id);
        if (!w) continue;
        const c = lab.counters(v.link);
        const prev = this.last.get(v.id);
        this.last.set(v.id, { t, up: c.uploadBytes, down: c.downloadBytes });
        const dt = prev ? t - prev.t : 0;
        const linkStats: readonly LinkStats[] = w.links;
        workers[v.id] = {
          settings: w.settings,
          samplesPerSec: w.samplesPerSec,
          backlogBytes: linkStats.reduce((a, l) => a + l.backlogBytes, 0),
          goodputBytesPerSec: linkStats.reduce((a, l) => a + l.goodputBytesPerSec, 0),
          routes: linkStats.map((l) => `${l.peer}:${l.route ?? '?'}`),
          balance: w.balance ?? null,
          uploadBytesPerSec: prev && dt > 0 ? (c.uploadBytes - prev.up) / dt : 0,
          downloadBytesPerSec: prev && dt > 0 ? (c.downloadBytes - prev.down) / dt : 0,
        };
      }
      this.samples.push({ t, workers });
      if (process.env.MESHGRAD_E2E_BALANCE_TRACE === '1') console.log(traceLine(t, workers));
    } catch (err) {
      console.log(`[balance-netns] sample failed: ${String(err)}`);
    } finally {
      this.busy = false;
    }
  }

  /** Samples of one worker from `fromS` seconds on. */
  of(id: string, fromS = 0): WorkerSample[] {
    return this.samples
      .filter((s) => s.t >= fromS)
      .flatMap((s) => (s.workers[id] ? [s.workers[id]] : []));
  }
}

/** One line per sample for MESHGRAD_E2E_BALANCE_TRACE=1: what the balancer saw and chose. */
function traceLine(t: number, workers: Record<string, WorkerSample>): string {
  const parts = Object.entries(workers).map(([id, w]) => {
    const b = w.balance;
    const plan = b
      ? ` ${b.reason} budget ${(b.budgetBytesPerSec / 1000).toFixed(0)} kB/s cap ${
          b.capacityBytesPerSec === null ? '?' : (b.capacityBytesPerSec / 1000).toFixed(0)
        }${b.congested ? ' congested' : ''}`
      : '';
    return (
      `${id} ${describeSettings(w.settings)}${plan} | ${w.samplesPerSec.toFixed(0)}/s ` +
      `goodput ${(w.goodputBytesPerSec / 1000).toFixed(0)} backlog ${(w.backlogBytes / 1000).toFixed(0)} ` +
      `up ${(w.uploadBytesPerSec / 1000).toFixed(0)} down ${(w.downloadBytesPerSec / 1000).toFixed(0)} kB`
    );
  });
  return `[balance-netns t=${t.toFixed(0)}] ${parts.join(' ‖ ')}`;
}

const mean = (v: readonly number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : 0);

test('volunteers behind tbf links of different speeds: the slow one gets less traffic per sample, its backlog stays bounded, training reaches 85%', async () => {
  test.skip(refused !== null, refused ?? '');
  test.setTimeout(900_000);
  const started = Date.now();
  const shaped = lab.setup(LINKS);
  server = new ServerProcess(await freePort(), JOB);
  await server.start();
  const srv = server;
  await setJobState(srv, JOB_ID, 'paused');

  // Volunteers join at full speed (each downloads a data shard of tens of MB), then the links
  // are shaped before any training or block exchange starts.
  const volunteers: Volunteer[] = [];
  for (const link of shaped) volunteers.push(await launchVolunteer(srv, link));
  await waitForMesh(volunteers, 'direct', 60_000);
  for (const link of shaped) lab.shape(link);
  const [fast, , slow] = volunteers as [Volunteer, Volunteer, Volunteer];
  const job = (await snapshot(srv)).job;
  const model: ModelTraffic = { blockCount: job.blockCount, parameterCount: job.parameters };

  const sampler = new Sampler(srv, volunteers);
  sampler.start();
  await setJobState(srv, JOB_ID, 'running');
  const trainingStarted = Date.now();
  let accuracySeconds: number;
  let settingsError: unknown = null;
  try {
    await expect
      .poll(() => lastAccuracy(srv), { timeout: 600_000, intervals: [2_000] })
      .toBeGreaterThanOrEqual(TARGET_ACCURACY);
    accuracySeconds = (Date.now() - trainingStarted) / 1000;

    // The balancer's view, polled: after SETTLE_TICKS, the slow worker plans fewer bytes per
    // sample than the fast one, through a larger b, a smaller m or a coarser encoding, for
    // STEADY_TICKS samples in a row.
    const slowIsCoarser = (sample: Sample): boolean => {
      const f = sample.workers[fast.id]?.settings;
      const s = sample.workers[slow.id]?.settings;
      if (!f || !s) return false;
      const coarser =
        s.communicationPeriod > f.communicationPeriod ||
        s.blocksPerMessage < f.blocksPerMessage ||
        PRECISION[s.encoding] < PRECISION[f.encoding];
      return coarser && bytesPerSample(s, model) < bytesPerSample(f, model);
    };
    try {
      await expect
        .poll(
          () => {
            const recent = sampler.samples.slice(-STEADY_TICKS);
            const last = recent.at(-1);
            const f = last?.workers[fast.id]?.settings;
            const s = last?.workers[slow.id]?.settings;
            return sampler.samples.length >= SETTLE_TICKS &&
              recent.length === STEADY_TICKS &&
              recent.every(slowIsCoarser)
              ? 'slow has less traffic per sample'
              : `${sampler.samples.length} ticks; fast ${f ? describeSettings(f) : '?'}, ` +
                  `slow ${s ? describeSettings(s) : '?'}`;
          },
          { timeout: 240_000, intervals: [1_000] },
        )
        .toBe('slow has less traffic per sample');
    } catch (err) {
      // Reported after the summary, which says what the balancer saw.
      settingsError = err;
    }
    await expect
      .poll(() => sampler.samples.length, { timeout: 120_000, intervals: [1_000] })
      .toBeGreaterThanOrEqual(SETTLE_TICKS + STEADY_WINDOW_TICKS);
  } finally {
    sampler.stop();
  }
  const accuracy = await lastAccuracy(srv);
  const settled = sampler.samples
    .slice(SETTLE_TICKS, SETTLE_TICKS + STEADY_WINDOW_TICKS)
    .flatMap((s) => {
      const w = s.workers[slow.id];
      return w ? [bytesPerSample(w.settings, model)] : [];
    });
  const sorted = [...settled].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const spread = {
    ticks: settled.length,
    medianBytesPerSample: median,
    low: median > 0 ? (sorted[0] ?? 0) / median : 0,
    high: median > 0 ? (sorted.at(-1) ?? 0) / median : 0,
  };

  // Every link direct: the blocks went through the shaped veths, not the server relay.
  const pageLinks = await Promise.all(volunteers.map(links));
  const report = volunteers.map((v) => {
    const ss = sampler.of(v.id);
    const last = ss.at(-1);
    const uploadBytesPerSec = (v.link.uploadKbit * 1000) / 8;
    return {
      id: v.id,
      uploadKbit: v.link.uploadKbit,
      downloadKbit: v.link.downloadKbit,
      settings: last?.settings ?? null,
      balance: last?.balance ?? null,
      bytesPerSample: last ? bytesPerSample(last.settings, model) : null,
      meanSamplesPerSec: mean(ss.map((s) => s.samplesPerSec)),
      meanUploadBytesPerSec: mean(ss.map((s) => s.uploadBytesPerSec)),
      meanDownloadBytesPerSec: mean(ss.map((s) => s.downloadBytesPerSec)),
      meanGoodputBytesPerSec: mean(ss.map((s) => s.goodputBytesPerSec)),
      maxBacklogBytes: Math.max(0, ...ss.map((s) => s.backlogBytes)),
      backlogBoundBytes: BACKLOG_DRAIN_SECONDS * uploadBytesPerSec,
      settingsSeen: [...new Set(ss.map((s) => describeSettings(s.settings)))],
      links: pageLinks[volunteers.indexOf(v)] ?? [],
    };
  });
  const summary = {
    accuracy,
    accuracySeconds,
    totalSeconds: (Date.now() - started) / 1000,
    ticks: sampler.samples.length,
    slowSettledSpread: spread,
    workers: report,
  };
  writeFileSync(
    join(ARTIFACTS, 'balance-netns.json'),
    JSON.stringify({ summary, samples: sampler.samples }, null, 2),
  );
  await slow.page.screenshot({ path: join(ARTIFACTS, 'balance-netns-slow.png'), fullPage: true });
  const kB = (bytes: number) => (bytes / 1000).toFixed(0);
  for (const r of report) {
    const b = r.balance;
    console.log(
      `[balance-netns] ${r.id} (up ${r.uploadKbit / 1000} / down ${r.downloadKbit / 1000} Mbit/s): ` +
        `${r.settings ? describeSettings(r.settings) : '?'}, ${r.bytesPerSample?.toFixed(1)} B/sample` +
        (b
          ? `, ${b.reason} budget ${kB(b.budgetBytesPerSec)} kB/s capacity ` +
            `${b.capacityBytesPerSec === null ? '?' : kB(b.capacityBytesPerSec)} kB/s`
          : '') +
        `; mean up ${kB(r.meanUploadBytesPerSec)} down ${kB(r.meanDownloadBytesPerSec)} kB/s, ` +
        `${r.meanSamplesPerSec.toFixed(0)} samples/s; max backlog ${kB(r.maxBacklogBytes)} kB ` +
        `(bound ${kB(r.backlogBoundBytes)} kB); settings seen: ${r.settingsSeen.join(', ')}`,
    );
  }
  console.log(
    `[balance-netns] test accuracy ${accuracy.toFixed(3)} (≥ ${TARGET_ACCURACY} after ` +
      `${accuracySeconds.toFixed(0)} s of training), ${summary.ticks} ticks sampled, ` +
      `${summary.totalSeconds.toFixed(0)} s in all`,
  );

  console.log(
    `[balance-netns] slow volunteer settled (ticks ${SETTLE_TICKS}–${SETTLE_TICKS + STEADY_WINDOW_TICKS}): ` +
      `bytes/sample median ${median.toFixed(1)}, from ${(spread.low * 100).toFixed(0)}% to ` +
      `${(spread.high * 100).toFixed(0)}% of it (bound ${(100 / STEADY_FACTOR).toFixed(0)}–` +
      `${(100 * STEADY_FACTOR).toFixed(0)}%)`,
  );

  for (const r of report) {
    expect(
      r.links.map((l) => l.route),
      r.id,
    ).toEqual(r.links.map(() => 'direct'));
    expect(r.links.length, r.id).toBe(volunteers.length - 1);
    expect(
      r.links.every((l) => l.blocksSent > 0 && l.blocksReceived > 0),
      r.id,
    ).toBe(true);
  }
  const slowReport = report.find((r) => r.id === slow.id);
  expect(slowReport?.maxBacklogBytes ?? Infinity).toBeLessThanOrEqual(
    slowReport?.backlogBoundBytes ?? 0,
  );
  expect(accuracy).toBeGreaterThanOrEqual(TARGET_ACCURACY);
  if (settingsError) throw settingsError;
  expect(spread.ticks).toBe(STEADY_WINDOW_TICKS);
  expect(spread.low, 'slow volunteer: lowest bytes/sample over the median').toBeGreaterThanOrEqual(
    1 / STEADY_FACTOR,
  );
  expect(spread.high, 'slow volunteer: highest bytes/sample over the median').toBeLessThanOrEqual(
    STEADY_FACTOR,
  );
});
