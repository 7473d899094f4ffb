/**
 * `npm run bench:server`: how many protocol-level volunteers one job server process holds, and
 * what they cost it. The server runs in a child process; the volunteers run in worker threads of
 * this one (load-worker.ts). For each N it ramps N volunteers up, holds them for a while as they
 * send statistics every second, and reads the server's own /metrics: event-loop delay p99,
 * resident memory, job-tick duration; hello latency is measured by the volunteers, and the admin
 * snapshot of the job is fetched and timed. The last line is one JSON summary at the largest N.
 *
 * Options: --counts=100,1000 (volunteers per step), --threads=4, --hold=10 (seconds),
 * --connects-per-sec=400, --max-seconds=900 (the whole run is bounded by it),
 * --server-cpu-prof=DIR (the server process writes a V8 CPU profile there when it exits).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BENCH_ADMIN_TOKEN, benchJob } from './bench-job.ts';
import type { LoadWorkerConfig, LoadWorkerReport } from './load-worker.ts';

interface Options {
  readonly counts: number[];
  readonly threads: number;
  readonly holdSec: number;
  readonly connectsPerSec: number;
  readonly maxSeconds: number;
  /** Where the server process writes its CPU profile; null for none. */
  readonly serverCpuProfDir: string | null;
}

function parseOptions(args: readonly string[]): Options {
  const get = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const int = (name: string, fallback: number) => {
    const raw = get(name);
    const v = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
    return v;
  };
  const counts = (get('counts') ?? '100,1000').split(',').map(Number);
  if (counts.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error('--counts must be positive integers, e.g. --counts=100,1000');
  }
  return {
    counts,
    threads: int('threads', 4),
    holdSec: int('hold', 10),
    connectsPerSec: int('connects-per-sec', 400),
    maxSeconds: int('max-seconds', 900),
    serverCpuProfDir: get('server-cpu-prof') ?? null,
  };
}

/** Value of a Prometheus sample line `name{labels} value` (the first match). */
function sample(text: string, name: string, labels = ''): number {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^${escaped}(\\{[^}]*${labels}[^}]*\\})? ([0-9.eE+-]+|NaN)$`, 'm');
  const m = re.exec(text);
  return m ? Number(m[2]) : NaN;
}

async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

const round = (v: number, digits = 1) => Number(v.toFixed(digits));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface StepResult {
  readonly volunteers: number;
  readonly held: number;
  readonly failed: number;
  readonly helloP50Ms: number;
  readonly helloP99Ms: number;
  readonly eventLoopP99Ms: number;
  readonly eventLoopMaxMs: number;
  readonly rssKbPerVolunteer: number;
  readonly tickMs: number;
  readonly snapshotBytes: number;
  readonly snapshotMs: number;
  /** Messages the server refused during the step, by `event code` (from its own counter). */
  readonly refused: Record<string, number>;
  /** What the volunteers saw go wrong, by kind (load-worker.ts). */
  readonly failures: Record<string, number>;
}

function sumCounts(counts: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of counts) for (const [k, v] of Object.entries(c)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** `meshgrad_rejected_messages_total` by `event code`. */
function refusals(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = /^meshgrad_rejected_messages_total\{([^}]*)\} ([0-9.eE+-]+)$/gm;
  for (const m of text.matchAll(re)) {
    const labels = m[1] ?? '';
    const event = /event="([^"]*)"/.exec(labels)?.[1] ?? '?';
    const code = /code="([^"]*)"/.exec(labels)?.[1] ?? '?';
    out.set(`${event} ${code}`, Number(m[2]));
  }
  return out;
}

async function startServer(
  dataDir: string,
  cpuProfDir: string | null,
): Promise<{ child: ChildProcess; url: string }> {
  const entry = path.join(path.dirname(new URL(import.meta.url).pathname), 'server-process.mjs');
  // Node refuses --cpu-prof in NODE_OPTIONS: the server's profile is asked for here.
  const execArgv = cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`];
  const child = fork(entry, [dataDir], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv,
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the server process exited (${code})`)));
    child.on('message', (m: { type?: string; url?: string }) => {
      if (m.type === 'listening' && m.url) resolve(m.url.replace('localhost', '127.0.0.1'));
    });
  });
  child.removeAllListeners('exit');
  return { child, url };
}

async function runStep(
  url: string,
  n: number,
  options: Options,
  baselineRssBytes: number,
  deadline: number,
): Promise<StepResult> {
  const threads = Math.min(options.threads, n);
  const workerFile = path.join(path.dirname(new URL(import.meta.url).pathname), 'load-worker.mjs');
  const state = Array.from({ length: threads }, () => ({
    joined: 0,
    failed: 0,
    failures: {} as Record<string, number>,
  }));
  const hello: number[] = [];
  const workers = state.map((s, i) => {
    const config: LoadWorkerConfig = {
      url,
      jobId: benchJob.id,
      count: Math.floor(n / threads) + (i < n % threads ? 1 : 0),
      connectsPerSec: Math.max(1, Math.round(options.connectsPerSec / threads)),
      statsIntervalMs: 1_000,
    };
    const w = new Worker(workerFile, { workerData: config });
    w.on('message', (r: LoadWorkerReport) => {
      if (r.type !== 'progress') return;
      s.joined = r.joined;
      s.failed = r.failed;
      s.failures = r.failures;
      hello.push(...r.helloMs);
    });
    w.on('error', (err) => process.stderr.write(`[bench:server] load worker: ${String(err)}\n`));
    return w;
  });
  const total = () => state.reduce((a, s) => a + s.joined + s.failed, 0);
  // Ramp: until every volunteer joined or failed, bounded by the rate plus a minute.
  const refusedBefore = refusals(await scrape(url));
  const rampEnd = Math.min(deadline, Date.now() + (n / options.connectsPerSec) * 1000 + 60_000);
  while (total() < n && Date.now() < rampEnd) await sleep(250);
  await scrape(url); // starts a new event-loop delay window for the hold
  const before = await scrape(url);
  await sleep(Math.max(0, Math.min(options.holdSec * 1000, deadline - Date.now())));
  const after = await scrape(url);
  const label = `job="${benchJob.id}"`;
  const tickSum =
    sample(after, 'meshgrad_balancer_tick_seconds_sum', label) -
    sample(before, 'meshgrad_balancer_tick_seconds_sum', label);
  const tickCount =
    sample(after, 'meshgrad_balancer_tick_seconds_count', label) -
    sample(before, 'meshgrad_balancer_tick_seconds_count', label);
  const rss = sample(after, 'meshgrad_process_process_resident_memory_bytes');
  const held = state.reduce((a, s) => a + s.joined, 0);
  const snapshots: Array<{ ms: number; bytes: number }> = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const res = await fetch(`${url}/api/admin/jobs/${benchJob.id}`, {
      headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` },
    });
    const bytes = (await res.arrayBuffer()).byteLength;
    snapshots.push({ ms: performance.now() - t0, bytes });
  }
  for (const w of workers) w.postMessage({ type: 'stop' });
  await sleep(1_000);
  await Promise.all(workers.map((w) => w.terminate()));
  // Let the server see every disconnect before the next step measures its baseline.
  const drainEnd = Date.now() + 60_000;
  while (Date.now() < drainEnd) {
    const h = (await (await fetch(`${url}/healthz`)).json()) as { workers: number };
    if (h.workers === 0) break;
    await sleep(500);
  }
  const refused: Record<string, number> = {};
  for (const [key, v] of refusals(await scrape(url))) {
    const d = v - (refusedBefore.get(key) ?? 0);
    if (d > 0) refused[key] = d;
  }
  const median = [...snapshots].sort((a, b) => a.ms - b.ms)[1] ?? { ms: NaN, bytes: NaN };
  return {
    volunteers: n,
    held,
    failed: state.reduce((a, s) => a + s.failed, 0),
    helloP50Ms: round(percentile(hello, 50)),
    helloP99Ms: round(percentile(hello, 99)),
    eventLoopP99Ms: round(sample(after, 'meshgrad_event_loop_delay_p99_seconds') * 1000),
    eventLoopMaxMs: round(sample(after, 'meshgrad_event_loop_delay_max_seconds') * 1000),
    rssKbPerVolunteer: held > 0 ? round((rss - baselineRssBytes) / 1024 / held) : NaN,
    tickMs: tickCount > 0 ? round((tickSum / tickCount) * 1000, 2) : NaN,
    snapshotBytes: median.bytes,
    snapshotMs: round(median.ms),
    refused,
    failures: sumCounts(state.map((s) => s.failures)),
  };
}

export async function main(args: readonly string[]): Promise<void> {
  const options = parseOptions(args);
  const deadline = Date.now() + options.maxSeconds * 1000;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'meshgrad-bench-server-'));
  const { child, url } = await startServer(dataDir, options.serverCpuProfDir);
  const out = (line: string) => process.stdout.write(line + '\n');
  try {
    await sleep(2_000);
    const baseline = sample(await scrape(url), 'meshgrad_process_process_resident_memory_bytes');
    out(
      `bench:server: server ${url} (its own process), ${options.threads} load threads, hold ${options.holdSec} s`,
    );
    out(`baseline server RSS ${round(baseline / 1024 / 1024)} MiB`);
    let last: StepResult | null = null;
    for (const n of options.counts) {
      if (Date.now() >= deadline) {
        out(`N=${n}: skipped, the run reached --max-seconds`);
        continue;
      }
      let r: StepResult;
      try {
        r = await runStep(url, n, options, baseline, deadline);
      } catch (err) {
        // A stalled or dead server is a result too: say so and stop climbing.
        const cause = (err as { cause?: unknown }).cause;
        out(`N=${n}: the server stopped answering (${String(cause ?? err)}); no larger N is tried`);
        break;
      }
      out(
        `N=${r.volunteers}: held ${r.held} (failed ${r.failed}), hello p50 ${r.helloP50Ms} ms p99 ${r.helloP99Ms} ms, ` +
          `event loop p99 ${r.eventLoopP99Ms} ms (max ${r.eventLoopMaxMs}), RSS ${r.rssKbPerVolunteer} KB/volunteer, ` +
          `tick ${r.tickMs} ms, admin snapshot ${r.snapshotBytes} B in ${r.snapshotMs} ms, ` +
          `refused ${JSON.stringify(r.refused)}, volunteers saw ${JSON.stringify(r.failures)}`,
      );
      last = r;
    }
    out(
      JSON.stringify({
        bench: 'server',
        volunteers_held: last?.held ?? 0,
        event_loop_p99_ms: last?.eventLoopP99Ms ?? null,
        hello_p99_ms: last?.helloP99Ms ?? null,
        rss_kb_per_volunteer: last?.rssKbPerVolunteer ?? null,
        tick_ms_at_max: last?.tickMs ?? null,
      }),
    );
  } finally {
    child.send({ type: 'close' });
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
    });
    await rm(dataDir, { recursive: true, force: true });
  }
}
