/**
 * `npm run bench:tick`: the server's balancer tick (`Balancer.update`, DESIGN §3) on synthetic
 * jobs of N reporting workers, timed against the all-pairs balancer it replaced (the same
 * function as of the baseline commit, loaded by scripts/bench-tick.mjs), side by side in the
 * same process: each round ticks the current version and then the baseline, on the same input.
 * The baseline stops after `--baseline-budget-s` of its own time per N (one all-pairs tick at
 * 10,000 workers takes far longer than a run should); N where it did not run say so.
 *
 * Options: --counts=250,1000,2000,10000  --rounds=7  --baseline-budget-s=120 (0: no baseline)
 * (--baseline=URL is set by the script). Ends with one JSON line.
 */
import { balance, emptyBalancerState, type BalancerState } from '@meshgrad/core';
import { syntheticJob, NEIGHBOURS } from './job.ts';

type Balance = typeof balance;

interface Options {
  readonly counts: readonly number[];
  readonly rounds: number;
  readonly baselineBudgetS: number;
  readonly baseline: string;
}

function parseArgs(argv: readonly string[]): Options {
  let counts = [250, 1000, 2000, 10_000];
  let rounds = 7;
  let baselineBudgetS = 120;
  let baseline = '';
  for (const a of argv) {
    const [key, value = ''] = a.split('=', 2);
    if (key === '--counts') counts = value.split(',').map(Number);
    else if (key === '--rounds') rounds = Number(value);
    else if (key === '--baseline-budget-s') baselineBudgetS = Number(value);
    else if (key === '--baseline') baseline = value;
    else throw new Error(`unknown option ${a} (use --counts=, --rounds=, --baseline-budget-s=)`);
  }
  if (!counts.every((n) => Number.isInteger(n) && n > 1)) throw new Error('--counts: integers > 1');
  if (!(rounds >= 1)) throw new Error('--rounds: at least 1');
  if (!baseline) throw new Error('--baseline missing: run this through `npm run bench:tick`');
  return { counts, rounds, baselineBudgetS, baseline };
}

const log = (line: string) => console.log(`[bench:tick] ${line}`);

/** One implementation ticking its own state over the job's inputs. */
class Ticker {
  private state: BalancerState = emptyBalancerState();
  private neighbours: ReadonlyMap<string, readonly string[]> = new Map();
  private t = 0;
  readonly timesMs: number[] = [];

  constructor(private readonly run: Balance) {}

  /** One tick of `n` workers; returns its duration, ms (recorded unless `warmUp`). */
  tick(job: ReturnType<typeof syntheticJob>, warmUp = false): number {
    this.t++;
    const input = job.input(this.t, this.neighbours);
    const started = performance.now();
    const { state, plans } = this.run(this.state, input, { neighbours: NEIGHBOURS, seed: 1 });
    const ms = performance.now() - started;
    this.state = state;
    this.neighbours = new Map([...plans].map(([id, plan]) => [id, plan.neighbours]));
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
    `Balancer.update on synthetic jobs, k = ${NEIGHBOURS}; ${options.rounds} rounds per N after one warm-up tick; baseline: all-pairs neighbour choice, at most ${options.baselineBudgetS} s per N`,
  );
  const results: { n: number; currentMs: number; baselineMs: number | null }[] = [];
  for (const n of options.counts) {
    const job = syntheticJob(n);
    const current = new Ticker(balance);
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
    const baselineMs = old.timesMs.length ? median(old.timesMs) : null;
    results.push({ n, currentMs, baselineMs });
    log(
      `N = ${n}: sampled ${spread(current.timesMs)}; all-pairs ${
        baselineMs === null
          ? oldSpent === Infinity
            ? `not run (about ${(predictedMs / 1000).toFixed(0)} s a tick, as N² from N = ${previous?.n}: over the budget)`
            : `not timed (its warm-up tick alone took ${ms(oldSpent)} ms, over the budget)`
          : `${spread(old.timesMs)}; all-pairs / sampled ${(baselineMs / currentMs).toFixed(0)}×`
      }`,
    );
  }
  const last = results.at(-1)!;
  const ratioAt = (n: number) => {
    const r = results.find((x) => x.n === n);
    return r && r.baselineMs !== null ? Number((r.baselineMs / r.currentMs).toFixed(1)) : null;
  };
  console.log(
    JSON.stringify({
      bench: 'tick',
      n_max: last.n,
      tick_ms_at_max: Number(last.currentMs.toFixed(1)),
      baseline_ms_at_max: last.baselineMs === null ? null : Number(last.baselineMs.toFixed(1)),
      ratio_at_1000: ratioAt(1000),
      ratio_at_2000: ratioAt(2000),
    }),
  );
}
