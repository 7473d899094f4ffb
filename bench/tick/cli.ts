/**
 * `npm run bench:tick`: the server's balancer tick (`Balancer.update`, DESIGN §3) on synthetic
 * jobs of N reporting workers, timed against the all-pairs balancer it replaced (the same
 * function as of the baseline commit, loaded by scripts/bench-tick.mjs), side by side in the
 * same process: each round ticks the current version and then the baseline, on the same input.
 * The baseline stops after `--baseline-budget-s` of its own time per N (one all-pairs tick at
 * 10,000 workers takes far longer than a run should); N where it did not run say so.
 *
 * The current tick runs in slices, as the server runs it (`balanceSteps`): its time is the sum of
 * its slices, and the longest slice is what it blocks an event loop for. Then, unless --job=0,
 * the server's whole `Job.tick` at the same N (job-tick.ts) and the longest the event loop went
 * without a turn during it.
 *
 * Options: --counts=250,1000,2000,10000  --rounds=7  --baseline-budget-s=120 (0: no baseline)
 * --job=1 (--baseline=URL is set by the script). Ends with one JSON line.
 */
import {
  balanceSteps,
  emptyBalancerState,
  type balance,
  type BalancerState,
  type BalanceResult,
} from '@meshgrad/core';
import { syntheticJob, NEIGHBOURS } from './job.ts';
import { openJobTick } from './job-tick.ts';

type Balance = typeof balance;

interface Options {
  readonly counts: readonly number[];
  readonly rounds: number;
  readonly baselineBudgetS: number;
  readonly baseline: string;
  /** What the baseline is, for the log (set by the script). */
  readonly baselineLabel: string;
  /** Also time the server's whole job tick (`Job.tick`) at each N. */
  readonly job: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  let counts = [250, 1000, 2000, 10_000];
  let rounds = 7;
  let baselineBudgetS = 120;
  let baseline = '';
  let baselineLabel = 'all-pairs';
  let job = true;
  for (const a of argv) {
    const [key, value = ''] = a.split('=', 2);
    if (key === '--counts') counts = value.split(',').map(Number);
    else if (key === '--job') job = value !== '0';
    else if (key === '--rounds') rounds = Number(value);
    else if (key === '--baseline-budget-s') baselineBudgetS = Number(value);
    else if (key === '--baseline') baseline = value;
    else if (key === '--baseline-label') baselineLabel = value;
    else {
      throw new Error(
        `unknown option ${a} (use --counts=, --rounds=, --baseline-budget-s=, --job=0|1; the script takes --baseline-commit=)`,
      );
    }
  }
  if (!counts.every((n) => Number.isInteger(n) && n > 1)) throw new Error('--counts: integers > 1');
  if (!(rounds >= 1)) throw new Error('--rounds: at least 1');
  if (!baseline) throw new Error('--baseline missing: run this through `npm run bench:tick`');
  return { counts, rounds, baselineBudgetS, baseline, baselineLabel, job };
}

const log = (line: string) => console.log(`[bench:tick] ${line}`);

const OPTIONS = { neighbours: NEIGHBOURS, seed: 1 };

/**
 * The current tick, run as the server runs it: in slices (`balanceSteps`), each timed; its
 * duration is the sum of its slices.
 */
function sliced(state: BalancerState, input: Parameters<Balance>[1]) {
  const steps = balanceSteps(state, input, OPTIONS);
  let longestMs = 0;
  let totalMs = 0;
  for (;;) {
    const started = performance.now();
    const step = steps.next();
    const ms = performance.now() - started;
    totalMs += ms;
    longestMs = Math.max(longestMs, ms);
    if (step.done) return { result: step.value, totalMs, longestMs };
  }
}

/** One implementation ticking its own state over the job's inputs. */
class Ticker {
  private state: BalancerState = emptyBalancerState();
  private neighbours: ReadonlyMap<string, readonly string[]> = new Map();
  private t = 0;
  readonly timesMs: number[] = [];
  /** The longest slice of each tick, ms (the current, sliced tick only). */
  readonly slicesMs: number[] = [];

  /** `run`: the baseline's `balance`, or null for the current tick in slices. */
  constructor(private readonly run: Balance | null) {}

  /** One tick of `n` workers; returns its duration, ms (recorded unless `warmUp`). */
  tick(job: ReturnType<typeof syntheticJob>, warmUp = false): number {
    this.t++;
    const input = job.input(this.t, this.neighbours);
    let result: BalanceResult;
    let ms: number;
    if (this.run) {
      const started = performance.now();
      result = this.run(this.state, input, OPTIONS);
      ms = performance.now() - started;
    } else {
      const run = sliced(this.state, input);
      result = run.result;
      ms = run.totalMs;
      if (!warmUp) this.slicesMs.push(run.longestMs);
    }
    this.state = result.state;
    this.neighbours = new Map([...result.plans].map(([id, plan]) => [id, plan.neighbours]));
    if (!warmUp) this.timesMs.push(ms);
    return ms;
  }

  spent(): number {
    return this.timesMs.reduce((a, b) => a + b, 0);
  }
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const spread = (xs: readonly number[]) =>
  `${ms(median(xs))} ms (${ms(Math.min(...xs))}–${ms(Math.max(...xs))}, ${xs.length} round${xs.length === 1 ? '' : 's'})`;

export async function main(argv: readonly string[]): Promise<void> {
  const options = parseArgs(argv);
  const baseline = ((await import(options.baseline)) as { balance: Balance }).balance;
  log(
    `Balancer.update on synthetic jobs, k = ${NEIGHBOURS}; ${options.rounds} rounds per N after one warm-up tick; baseline: ${options.baselineLabel === 'all-pairs' ? 'all-pairs neighbour choice' : options.baselineLabel}, at most ${options.baselineBudgetS} s per N`,
  );
  const results: {
    n: number;
    currentMs: number;
    sliceMs: number;
    baselineMs: number | null;
    jobMs: number | null;
    jobBlockMs: number | null;
  }[] = [];
  for (const n of options.counts) {
    const job = syntheticJob(n);
    const current = new Ticker(null);
    const old = new Ticker(baseline);
    current.tick(job, true);
    const budgetMs = options.baselineBudgetS * 1000;
    // All-pairs work grows as N²: from the last timed N, a tick past the budget is not started.
    const previous = [...results].reverse().find((r) => r.baselineMs !== null);
    const predictedMs =
      previous?.baselineMs !== undefined && previous.baselineMs !== null
        ? previous.baselineMs * (n / previous.n) ** 2
        : 0;
    let oldSpent = predictedMs > budgetMs || budgetMs === 0 ? Infinity : old.tick(job, true);
    for (let r = 0; r < options.rounds; r++) {
      current.tick(job);
      if (oldSpent < budgetMs) oldSpent += old.tick(job);
    }
    const currentMs = median(current.timesMs);
    const sliceMs = median(current.slicesMs);
    const baselineMs = old.timesMs.length ? median(old.timesMs) : null;
    log(
      `N = ${n}: sampled ${spread(current.timesMs)}, longest slice ${spread(current.slicesMs)}; ${options.baselineLabel} ${
        baselineMs === null
          ? budgetMs === 0
            ? 'off'
            : oldSpent === Infinity
              ? `not run (about ${(predictedMs / 1000).toFixed(0)} s a tick, as N² from N = ${previous?.n}: over the budget)`
              : `not timed (its warm-up tick alone took ${ms(oldSpent)} ms, over the budget)`
          : `${spread(old.timesMs)}; ${options.baselineLabel} / sampled ${(baselineMs / currentMs).toFixed(baselineMs / currentMs < 10 ? 2 : 0)}×`
      }`,
    );
    const jobTick = options.job ? await timeJobTick(n, options.rounds) : null;
    results.push({
      n,
      currentMs,
      sliceMs,
      baselineMs,
      jobMs: jobTick && median(jobTick.timesMs),
      jobBlockMs: jobTick && median(jobTick.blocksMs),
    });
  }
  const last = results.at(-1)!;
  const ratioAt = (n: number) => {
    const r = results.find((x) => x.n === n);
    return r && r.baselineMs !== null ? Number((r.baselineMs / r.currentMs).toFixed(1)) : null;
  };
  const round1 = (x: number | null) => (x === null ? null : Number(x.toFixed(1)));
  console.log(
    JSON.stringify({
      bench: 'tick',
      n_max: last.n,
      tick_ms_at_max: round1(last.currentMs),
      slice_ms_at_max: round1(last.sliceMs),
      baseline_ms_at_max: round1(last.baselineMs),
      job_tick_ms_at_max: round1(last.jobMs),
      job_block_ms_at_max: round1(last.jobBlockMs),
      ratio_at_1000: ratioAt(1000),
      ratio_at_2000: ratioAt(2000),
    }),
  );
}

/**
 * The server's whole job tick at `n` workers, `rounds` times after a warm-up tick: its duration,
 * and the longest the event loop went without a turn meanwhile (a probe re-queues itself with
 * `setImmediate` and records the gaps between its runs), beside the same probe over a pause of
 * the job tick's length in which nothing runs: the probe's own resolution.
 */
async function timeJobTick(n: number, rounds: number) {
  const joinStarted = performance.now();
  const run = await openJobTick(n);
  const joinMs = performance.now() - joinStarted;
  const timesMs: number[] = [];
  const blocksMs: number[] = [];
  const idleMs: number[] = [];
  try {
    run.report(1);
    await run.tick();
    for (let r = 0; r < rounds; r++) {
      run.report(r + 2);
      const probe = probeEventLoop();
      const tickMs = await run.tick();
      blocksMs.push(probe.stop());
      timesMs.push(tickMs);
      const idle = probeEventLoop();
      await new Promise((resolve) => setTimeout(resolve, Math.min(tickMs, 1000)));
      idleMs.push(idle.stop());
    }
  } finally {
    await run.close();
  }
  log(
    `N = ${n}: Job.tick ${spread(timesMs)}, event loop blocked at most ${spread(blocksMs)} meanwhile (idle probe: ${spread(idleMs)}); ${n} joins took ${ms(joinMs)} ms; sent ${run.sent.settings} settings, ${run.sent.neighbours} neighbour lists`,
  );
  return { timesMs, blocksMs };
}

/** Records the longest gap between turns of the event loop until `stop`. */
function probeEventLoop(): { stop(): number } {
  let last = performance.now();
  let longest = 0;
  let running = true;
  const turn = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (running) setImmediate(turn);
  };
  setImmediate(turn);
  return {
    stop() {
      running = false;
      return Math.max(longest, performance.now() - last);
    },
  };
}
