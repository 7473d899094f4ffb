/**
 * `npm run bench:server`: how many protocol-level volunteers a job server process holds, and
 * what they cost it. The server runs in a child process; the volunteers run in worker threads of
 * this one (load-worker.ts). For each N it ramps N volunteers up, holds them for a while as they
 * send statistics every second, and reads the server's own /metrics and /healthz: volunteers
 * held at the end of the hold (not dropped as silent), event-loop delay p99,
 * resident memory, job-tick wall time and the balancer's main-thread time in it; hello latency is measured by the volunteers, and the admin
 * snapshot of the job is fetched and timed. The last line is one JSON summary at the largest N.
 *
 * With --servers=K (K > 1) it starts a redis-server (Debian's package) and K server processes
 * joined over it (`meshgrad serve --redis URL`, DESIGN §5); N is then per process, volunteers
 * are dealt to the processes in turn, each process is measured on its own, and the summary gives
 * the worst process's figure for each.
 *
 * Options: --counts=100,1000 (volunteers per step, per process), --servers=1, --threads=4,
 * --load-processes (each load thread a process of its own: one process's descriptor limit, often
 * 20,000, bounds the sockets it can hold),
 * --links=1 (each volunteer reports a link to each neighbour the server gave it, with counters
 * that advance, so the balancer weighs links as in a real job; 0: no links),
 * --hold=10 (seconds), --connects-per-sec=400 (over all processes), --max-seconds=900 (the whole
 * run is bounded by it), --server-cpu-prof=DIR (each server process writes a V8 CPU profile
 * there when it exits).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { RedisServer } from '../../apps/server/src/scale/redis-server.test-support.ts';
import { BENCH_ADMIN_TOKEN, benchJob } from './bench-job.ts';
import type { LoadWorkerConfig, LoadWorkerReport } from './load-worker.ts';

interface Options {
  readonly counts: number[];
  /** Server processes; more than one share a redis-server. */
  readonly servers: number;
  readonly threads: number;
  /** Each load thread in a process of its own (its descriptor limit bounds the sockets it holds). */
  readonly loadProcesses: boolean;
  readonly holdSec: number;
  readonly connectsPerSec: number;
  /** Volunteers report a link to each neighbour the server gave them (--links=0: none). */
  readonly links: boolean;
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
  const flag = (name: string, fallback: boolean) => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    if (raw !== '0' && raw !== '1') throw new Error(`--${name} must be 0 or 1`);
    return raw === '1';
  };
  const counts = (get('counts') ?? '100,1000').split(',').map(Number);
  if (counts.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error('--counts must be positive integers, e.g. --counts=100,1000');
  }
  return {
    counts,
    servers: int('servers', 1),
    threads: int('threads', 4),
    loadProcesses: args.includes('--load-processes'),
    holdSec: int('hold', 10),
    connectsPerSec: int('connects-per-sec', 400),
    links: flag('links', true),
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

/** CPU seconds (user + system) a process has used: /proc/<pid>/stat on Linux, NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ ticks
  } catch {
    return NaN;
  }
}

/**
 * The kernel's count of connections dropped because a listen queue was full (TcpExt
 * ListenOverflows in /proc/net/netstat, machine-wide); NaN where there is none. A connection
 * dropped there is retried by its client after a back-off of 1, 2, 4… s.
 */
function listenOverflows(): number {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = (lines[i] as string).split(' ');
      const values = (lines[i + 1] as string).split(' ');
      if (names[0] !== 'TcpExt:') continue;
      const at = names.indexOf('ListenOverflows');
      return at < 0 ? NaN : Number(values[at]);
    }
  } catch {
    // not Linux
  }
  return NaN;
}

/** The harness's own CPU seconds (its main thread and its load threads). */
function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

const round = (v: number, digits = 1) => Number(v.toFixed(digits));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One server process's figures over a step. */
interface ProcessResult {
  /** Volunteers the process holds at the end of the hold (its /healthz): not dropped, not lost. */
  readonly held: number;
  /** Volunteers whose hello this process answered during the step (the harness's count). */
  readonly joined: number;
  readonly eventLoopP99Ms: number;
  readonly eventLoopMaxMs: number;
  readonly rssKbPerVolunteer: number;
  /** The job tick's mean wall time (meshgrad_balancer_tick_seconds). */
  readonly tickMs: number;
  /** The balancer's mean main-thread time per tick (meshgrad_balancer_busy_seconds). */
  readonly busyMs: number;
  readonly snapshotBytes: number;
  readonly snapshotMs: number;
  /** Messages the server refused during the step, by `event code` (from its own counter). */
  readonly refused: Record<string, number>;
}

interface StepResult {
  /** Volunteers started: N per process. */
  readonly volunteers: number;
  /** Held by the processes at the end of the hold (their /healthz). */
  readonly held: number;
  /** Whose hello was answered. */
  readonly joined: number;
  readonly failed: number;
  readonly helloP50Ms: number;
  readonly helloP99Ms: number;
  /** Shard fetch after the hello, p99. */
  readonly shardP99Ms: number;
  /** Longest a volunteer went between two reports it sent (the harness's own lag shows here). */
  readonly statsGapMaxMs: number;
  /** CPU used over the hold, in cores: each server process, the load (harness), redis-server. */
  readonly cpuCores: {
    readonly servers: readonly number[];
    readonly load: number;
    readonly redis: number;
  };
  /** Connections the kernel dropped at a full listen queue during the step (machine-wide). */
  readonly listenOverflows: number;
  readonly processes: readonly ProcessResult[];
  /** What the volunteers saw go wrong, by kind (load-worker.ts). */
  readonly failures: Record<string, number>;
}

/** The worst of the processes' values (the largest; NaN when any is NaN). */
function worst(values: readonly number[]): number {
  return values.some((v) => Number.isNaN(v)) ? NaN : Math.max(...values);
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
  redisUrl: string | null,
  cpuProfDir: string | null,
): Promise<{ child: ChildProcess; url: string }> {
  const entry = path.join(path.dirname(new URL(import.meta.url).pathname), 'server-process.mjs');
  // Node refuses --cpu-prof in NODE_OPTIONS: the server's profile is asked for here.
  const execArgv = cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`];
  const child = fork(entry, redisUrl === null ? [dataDir] : [dataDir, redisUrl], {
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

/** The harness's view of a load thread, whether a worker thread or a process. */
interface LoadHost {
  on(event: 'message', fn: (r: LoadWorkerReport) => void): void;
  on(event: 'error', fn: (err: unknown) => void): void;
  postMessage(m: { type: string }): void;
  terminate(): Promise<unknown>;
  /** The load process's pid (undefined for a thread). */
  readonly pid?: number | undefined;
}

function processHost(file: string, config: LoadWorkerConfig): LoadHost {
  const child = fork(file, [JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return {
    pid: child.pid,
    on: (event: 'message' | 'error', fn: (x: LoadWorkerReport & Error) => void) =>
      child.on(event, fn),
    postMessage: (m) => {
      if (child.connected) child.send(m);
    },
    terminate: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  } as LoadHost;
}

async function snapshot(url: string): Promise<{ ms: number; bytes: number }> {
  const snapshots: Array<{ ms: number; bytes: number }> = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const res = await fetch(`${url}/api/admin/jobs/${benchJob.id}`, {
      headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` },
    });
    const bytes = (await res.arrayBuffer()).byteLength;
    snapshots.push({ ms: performance.now() - t0, bytes });
  }
  return [...snapshots].sort((a, b) => a.ms - b.ms)[1] ?? { ms: NaN, bytes: NaN };
}

async function runStep(
  urls: readonly string[],
  n: number,
  options: Options,
  baselineRssBytes: readonly number[],
  deadline: number,
  pids: {
    readonly servers: ReadonlyArray<number | undefined>;
    readonly redis?: number | undefined;
  },
): Promise<StepResult> {
  const total = n * urls.length;
  const threads = Math.min(options.threads, total);
  const workerFile = path.join(path.dirname(new URL(import.meta.url).pathname), 'load-worker.mjs');
  const state = Array.from({ length: threads }, () => ({
    joined: 0,
    joinedPer: urls.map(() => 0),
    failed: 0,
    failures: {} as Record<string, number>,
  }));
  const hello: number[] = [];
  const shard: number[] = [];
  let statsGapMaxMs = 0;
  const workers = state.map((s, i) => {
    const config: LoadWorkerConfig = {
      // Each thread deals its volunteers from a different first process, so the processes
      // get N each however N divides over the threads.
      urls: urls.map((_, k) => urls[(k + i) % urls.length] as string),
      jobId: benchJob.id,
      count: Math.floor(total / threads) + (i < total % threads ? 1 : 0),
      connectsPerSec: Math.max(1, Math.round(options.connectsPerSec / threads)),
      statsIntervalMs: 1_000,
      reportLinks: options.links,
    };
    const w = options.loadProcesses
      ? processHost(workerFile, config)
      : new Worker(workerFile, { workerData: config });
    w.on('message', (r: LoadWorkerReport) => {
      if (r.type !== 'progress') return;
      s.joined = r.joined;
      // Back to the harness's numbering of the processes.
      s.joinedPer = urls.map(
        (_, k) => r.joinedPer[(((k - i) % urls.length) + urls.length) % urls.length] ?? 0,
      );
      s.failed = r.failed;
      s.failures = r.failures;
      hello.push(...r.helloMs);
      shard.push(...r.shardMs);
      statsGapMaxMs = Math.max(statsGapMaxMs, r.statsGapMaxMs);
    });
    w.on('error', (err) => process.stderr.write(`[bench:server] load worker: ${String(err)}\n`));
    return w;
  });
  const started = () => state.reduce((a, s) => a + s.joined + s.failed, 0);
  const scrapeAll = () => Promise.all(urls.map((u) => scrape(u)));
  // Ramp: until every volunteer joined or failed, bounded by the rate plus a minute.
  const refusedBefore = (await scrapeAll()).map(refusals);
  const overflowsBefore = listenOverflows();
  const rampEnd = Math.min(deadline, Date.now() + (total / options.connectsPerSec) * 1000 + 60_000);
  while (started() < total && Date.now() < rampEnd) await sleep(250);
  await scrapeAll(); // starts a new event-loop delay window for the hold
  const before = await scrapeAll();
  const cpu = () => ({
    at: performance.now(),
    servers: pids.servers.map(cpuSeconds),
    load: options.loadProcesses
      ? workers.reduce((a, w) => a + cpuSeconds((w as LoadHost).pid), 0) + ownCpuSeconds()
      : ownCpuSeconds(),
    redis: cpuSeconds(pids.redis),
  });
  const cpu0 = cpu();
  await sleep(Math.max(0, Math.min(options.holdSec * 1000, deadline - Date.now())));
  const cpu1 = cpu();
  const wall = (cpu1.at - cpu0.at) / 1000;
  const cores = (a: number, b: number) => round((b - a) / wall, 2);
  const cpuCores = {
    servers: cpu1.servers.map((c, k) => cores(cpu0.servers[k] ?? NaN, c)),
    load: cores(cpu0.load, cpu1.load),
    redis: cores(cpu0.redis, cpu1.redis),
  };
  const after = await scrapeAll();
  const healthy = await Promise.all(
    urls.map(
      async (u) => ((await (await fetch(`${u}/healthz`)).json()) as { workers: number }).workers,
    ),
  );
  const label = `job="${benchJob.id}"`;
  const joinedPer = urls.map((_, k) => state.reduce((a, s) => a + (s.joinedPer[k] ?? 0), 0));
  const snapshots: Array<{ ms: number; bytes: number }> = [];
  for (const u of urls) snapshots.push(await snapshot(u));
  for (const w of workers) w.postMessage({ type: 'stop' });
  await sleep(1_000);
  await Promise.all(workers.map((w) => w.terminate()));
  // Let the servers see every disconnect before the next step measures its baseline.
  const drainEnd = Date.now() + 60_000;
  for (const u of urls) {
    while (Date.now() < drainEnd) {
      const h = (await (await fetch(`${u}/healthz`)).json()) as { workers: number };
      if (h.workers === 0) break;
      await sleep(500);
    }
  }
  const refusedAfter = (await scrapeAll()).map(refusals);
  const overflows = listenOverflows() - overflowsBefore;
  const processes = urls.map((_, k): ProcessResult => {
    const a = after[k] as string;
    const b = before[k] as string;
    /** A histogram's mean over the step, ms (NaN when nothing was observed). */
    const meanMs = (name: string) => {
      const sum = sample(a, `${name}_sum`, label) - sample(b, `${name}_sum`, label);
      const count = sample(a, `${name}_count`, label) - sample(b, `${name}_count`, label);
      return count > 0 ? round((sum / count) * 1000, 2) : NaN;
    };
    const rss = sample(a, 'meshgrad_process_process_resident_memory_bytes');
    const held = healthy[k] ?? 0;
    const refused: Record<string, number> = {};
    for (const [key, v] of refusedAfter[k] ?? new Map<string, number>()) {
      const d = v - (refusedBefore[k]?.get(key) ?? 0);
      if (d > 0) refused[key] = d;
    }
    const snap = snapshots[k] ?? { ms: NaN, bytes: NaN };
    return {
      held,
      joined: joinedPer[k] ?? 0,
      eventLoopP99Ms: round(sample(a, 'meshgrad_event_loop_delay_p99_seconds') * 1000),
      eventLoopMaxMs: round(sample(a, 'meshgrad_event_loop_delay_max_seconds') * 1000),
      rssKbPerVolunteer: held > 0 ? round((rss - (baselineRssBytes[k] ?? NaN)) / 1024 / held) : NaN,
      tickMs: meanMs('meshgrad_balancer_tick_seconds'),
      busyMs: meanMs('meshgrad_balancer_busy_seconds'),
      snapshotBytes: snap.bytes,
      snapshotMs: round(snap.ms),
      refused,
    };
  });
  return {
    volunteers: n,
    held: healthy.reduce((a, h) => a + h, 0),
    joined: joinedPer.reduce((a, h) => a + h, 0),
    failed: state.reduce((a, s) => a + s.failed, 0),
    helloP50Ms: round(percentile(hello, 50)),
    helloP99Ms: round(percentile(hello, 99)),
    shardP99Ms: round(percentile(shard, 99)),
    statsGapMaxMs: round(statsGapMaxMs),
    cpuCores,
    listenOverflows: overflows,
    processes,
    failures: sumCounts(state.map((s) => s.failures)),
  };
}

export async function main(args: readonly string[]): Promise<void> {
  const options = parseOptions(args);
  const deadline = Date.now() + options.maxSeconds * 1000;
  const out = (line: string) => process.stdout.write(line + '\n');
  const redis = options.servers > 1 ? await RedisServer.start() : null;
  const dataDirs: string[] = [];
  const servers: Array<{ child: ChildProcess; url: string }> = [];
  try {
    for (let k = 0; k < options.servers; k++) {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'meshgrad-bench-server-'));
      dataDirs.push(dataDir);
      servers.push(await startServer(dataDir, redis?.url ?? null, options.serverCpuProfDir));
    }
    const urls = servers.map((s) => s.url);
    await sleep(2_000);
    const baseline = await Promise.all(
      urls.map(async (u) =>
        sample(await scrape(u), 'meshgrad_process_process_resident_memory_bytes'),
      ),
    );
    out(
      redis
        ? `bench:server: ${urls.length} server processes over redis-server ${redis.url} (${urls.join(', ')}), ` +
            `${options.threads} load threads, hold ${options.holdSec} s; N is per process`
        : `bench:server: server ${urls[0]} (its own process), ${options.threads} load threads, hold ${options.holdSec} s`,
    );
    out(`baseline server RSS ${baseline.map((b) => `${round(b / 1024 / 1024)} MiB`).join(', ')}`);
    let last: StepResult | null = null;
    for (const n of options.counts) {
      if (Date.now() >= deadline) {
        out(`N=${n}: skipped, the run reached --max-seconds`);
        continue;
      }
      let r: StepResult;
      try {
        r = await runStep(urls, n, options, baseline, deadline, {
          servers: servers.map((x) => x.child.pid),
          redis: redis?.pid,
        });
      } catch (err) {
        // A stalled or dead server is a result too: say so and stop climbing.
        const cause = (err as { cause?: unknown }).cause;
        out(`N=${n}: a server stopped answering (${String(cause ?? err)}); no larger N is tried`);
        break;
      }
      const figures = (p: ProcessResult) =>
        `event loop p99 ${p.eventLoopP99Ms} ms (max ${p.eventLoopMaxMs}), RSS ${p.rssKbPerVolunteer} KB/volunteer, ` +
        `tick ${p.tickMs} ms (balancer busy ${p.busyMs} ms), admin snapshot ${p.snapshotBytes} B in ${p.snapshotMs} ms, ` +
        `refused ${JSON.stringify(p.refused)}`;
      const hello =
        `hello p50 ${r.helloP50Ms} ms p99 ${r.helloP99Ms} ms, shard fetch p99 ${r.shardP99Ms} ms, ` +
        `longest gap between a volunteer's reports ${r.statsGapMaxMs} ms`;
      const saw = `volunteers saw ${JSON.stringify(r.failures)}`;
      const c = r.cpuCores;
      const cpuLine =
        `  CPU over the hold, in cores of ${availableParallelism()}: server${c.servers.length > 1 ? 's' : ''} ` +
        `${c.servers.join(' + ')}, load harness ${c.load}` +
        (redis ? `, redis-server ${c.redis}` : '') +
        `; connections dropped at a full listen queue during the step ${r.listenOverflows}`;
      if (r.processes.length === 1) {
        const p = r.processes[0] as ProcessResult;
        out(
          `N=${r.volunteers}: held ${r.held} (failed ${r.failed}), ${hello}, ${figures(p)}, ${saw}`,
        );
      } else {
        out(
          `N=${r.volunteers} per process: held ${r.held} of ${r.volunteers * r.processes.length} (joined ${r.joined}, failed ${r.failed}), ${hello}, ${saw}`,
        );
        r.processes.forEach((p, k) =>
          out(`  process ${k + 1}: held ${p.held} (joined ${p.joined}), ${figures(p)}`),
        );
      }
      out(cpuLine);
      last = r;
    }
    const ps = last?.processes ?? [];
    const worstOf = (f: (p: ProcessResult) => number) => (ps.length ? worst(ps.map(f)) : null);
    out(
      JSON.stringify({
        bench: 'server',
        ...(options.servers > 1 ? { servers: options.servers } : {}),
        volunteers_held: last?.held ?? 0,
        ...(options.servers > 1
          ? { volunteers_held_per_process_min: ps.length ? Math.min(...ps.map((p) => p.held)) : 0 }
          : {}),
        event_loop_p99_ms: worstOf((p) => p.eventLoopP99Ms),
        hello_p99_ms: last?.helloP99Ms ?? null,
        rss_kb_per_volunteer: worstOf((p) => p.rssKbPerVolunteer),
        tick_ms_at_max: worstOf((p) => p.tickMs),
        balancer_busy_ms_at_max: worstOf((p) => p.busyMs),
      }),
    );
  } finally {
    await Promise.all(
      servers.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
            child.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            if (child.connected) child.send({ type: 'close' });
            else child.kill('SIGKILL');
          }),
      ),
    );
    await redis?.stop();
    for (const d of dataDirs) await rm(d, { recursive: true, force: true });
  }
}
