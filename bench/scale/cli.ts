/**
 * `npm run bench:scale`: does adding volunteers make training faster? For each workload and
 * worker count it sweeps η for the ideal synchronous bound and for ASGD (LAN and home links),
 * reports speed-up, efficiency and ASGD's time relative to the bound, the fixed-work and weak
 * scaling views, the merge-rule comparison, and one 10,000-worker run's wall time. Writes CSV,
 * SVG and a Markdown summary; the last line printed is the JSON summary.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  gradientNoiseScale,
  runIdealSync,
  runScaleAsgd,
  scaleLinks,
  type ScaleProfileName,
  type ScaleRunResult,
} from '@meshgrad/core';
import { lineChart, type Series } from '../balance/svg.ts';
import { ARMS, armByKey, type Arm } from './arms.ts';
import { etaWindow, medianTime, spread, sweep, type SweepResult } from './sweep.ts';
import {
  benchWorkloads,
  SAMPLES_PER_SEC,
  type BenchWorkload,
  type WorkloadName,
} from './workloads.ts';

interface Options {
  readonly quick: boolean;
  readonly seeds: number;
  readonly sweepSeeds: number;
  readonly workloads: WorkloadName[];
  readonly out: string;
  readonly bigWorkers: number;
  readonly arm: string | null;
}

function parse(args: readonly string[]): Options {
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const quick = args.includes('--quick');
  const workloads = (value('--workloads') ?? 'kmeans,quadratic,mlp').split(',') as WorkloadName[];
  for (const w of workloads) {
    if (!['kmeans', 'quadratic', 'mlp'].includes(w)) throw new RangeError(`unknown workload ${w}`);
  }
  const seeds = Number(value('--seeds') ?? (quick ? 2 : 5));
  const sweepSeeds = Math.min(seeds, Number(value('--sweep-seeds') ?? 2));
  if (!(seeds >= 1 && sweepSeeds >= 1)) throw new RangeError('--seeds must be ≥ 1');
  return {
    quick,
    seeds,
    sweepSeeds,
    workloads,
    out: value('--out') ?? (quick ? 'bench-results/scale-quick' : 'docs/scale'),
    bigWorkers: Number(value('--big') ?? (quick ? 2_000 : 10_000)),
    arm: value('--arm') ?? null,
  };
}

const log = (line: string) => process.stdout.write(line + '\n');
const f = (x: number | null | undefined, d = 2) =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d);
const seq = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

interface Row {
  workload: WorkloadName;
  method: string;
  profile: ScaleProfileName | 'none';
  workers: number;
  eta: number;
  times: (number | null)[];
  capS: number;
}

export async function main(args: readonly string[]): Promise<void> {
  const options = parse(args);
  const started = performance.now();
  mkdirSync(options.out, { recursive: true });
  const seeds = seq(options.seeds);
  const sweepSeeds = seq(options.sweepSeeds);
  const benches = await benchWorkloads(options.workloads, options.quick);
  const rows: Row[] = [];
  const md: string[] = [];
  const stepSOf = (b: BenchWorkload) => b.workload.batchSize / SAMPLES_PER_SEC;

  // --- the bound: ideal synchronous SGD, η swept per N --------------------------------------
  const ideal = new Map<string, SweepResult>();
  // NaN for a worker count the bound was not run at (the large run).
  const idealTime = (b: BenchWorkload, n: number) => {
    const r = ideal.get(`${b.key}/${n}`);
    return r ? medianTime(r.best.times) : NaN;
  };
  for (const b of benches) {
    let around = b.workload.learningRates[0]!;
    let capS = b.oneWorkerCapS;
    for (const n of b.counts) {
      const etas = etaWindow(b.workload.learningRates, around, 4);
      const result = await sweep(
        etas,
        sweepSeeds,
        seeds,
        async (eta, seed, cap) =>
          runIdealSync({
            workload: b.workload,
            workers: n,
            learningRate: eta,
            samplesPerSec: SAMPLES_PER_SEC,
            // Every round at large N; at one worker every few rounds (interpolated).
            evalIntervalS: Math.max(stepSOf(b), capS / 200),
            maxTimeS: cap,
            seed,
          }),
        capS,
      );
      ideal.set(`${b.key}/${n}`, result);
      rows.push({
        workload: b.key,
        method: 'ideal',
        profile: 'none',
        workers: n,
        eta: result.best.eta,
        times: [...result.best.times],
        capS,
      });
      around = result.best.eta;
      const t = medianTime(result.best.times);
      if (Number.isFinite(t)) capS = Math.max(1.5 * t, 20 * stepSOf(b));
      log(
        `[ideal] ${b.key} N=${n} η=${result.best.eta} time ${f(t, 3)} s (${result.best.times.map((x) => f(x, 3)).join(' ')})`,
      );
    }
  }

  // --- gradient noise scale at the start and at the target ---------------------------------
  md.push(
    '| workload | parameters | batch | target | B_simple at start | B_simple at target | closed-form ideal speed-up at 64 |',
    '|---|---|---|---|---|---|---|',
  );
  const noise = new Map<WorkloadName, number>();
  for (const b of benches) {
    const atStart = gradientNoiseScale(b.workload, b.workload.initialParams, 512).bSimple;
    const end = ideal.get(`${b.key}/1`)!.best.results[0]!.finalParams;
    const atTarget = gradientNoiseScale(b.workload, end, 512).bSimple;
    noise.set(b.key, atTarget);
    let closed = '—';
    if (b.closedForm) {
      const best = (batch: number) =>
        Math.min(...b.workload.learningRates.map((e) => b.closedForm!.stepsToTarget(e, batch)));
      closed = f(best(b.workload.batchSize) / best(64 * b.workload.batchSize), 1);
    }
    log(
      `[noise] ${b.key}: B_simple ${f(atStart, 1)} at the start, ${f(atTarget, 1)} at the target (batch ${b.workload.batchSize}); closed-form ideal speed-up at 64: ${closed}`,
    );
    md.push(
      `| ${b.workload.name} | ${b.workload.size} | ${b.workload.batchSize} | ${b.workload.metric} ${b.workload.higherIsBetter ? '≥' : '≤'} ${f(b.workload.target, 4)} | ${f(atStart, 1)} | ${f(atTarget, 1)} | ${closed} |`,
    );
  }
  md.push('');

  const runAsgd =
    (
      b: BenchWorkload,
      arm: Arm,
      n: number,
      profile: ScaleProfileName,
      capS: number,
      extra: { stepsPerWorker?: number; stopAtTarget?: boolean } = {},
    ) =>
    async (eta: number, seed: number, cap = capS): Promise<ScaleRunResult & { wallS: number }> => {
      const stepS = stepSOf(b);
      const idealS = idealTime(b, n);
      const evalS = Math.max(
        b.key === 'mlp' ? stepS : stepS / 4,
        Number.isFinite(idealS) ? idealS / 40 : stepS,
      );
      const t0 = performance.now();
      const result = await runScaleAsgd({
        workload: b.workload,
        workers: n,
        links: scaleLinks(profile, seed),
        strategy: arm.strategy,
        learningRate: eta,
        samplesPerSec: SAMPLES_PER_SEC,
        pushesPerStep: arm.pushesPerStep,
        neighbours: Math.max(4, arm.pushesPerStep * 2),
        warmupS: arm.warmupFraction * (Number.isFinite(idealS) ? idealS : 0),
        probeAverage: arm.probeAverage,
        evalIntervalS: evalS,
        maxTimeS: Math.min(cap, capS),
        seed,
        ...extra,
      });
      return { ...result, wallS: (performance.now() - t0) / 1000 };
    };
  const asgdCap = (b: BenchWorkload, n: number) => {
    const t = idealTime(b, n);
    return Number.isFinite(t) ? Math.max(4 * t, 20 * stepSOf(b)) : b.oneWorkerCapS;
  };

  // --- which merge: every arm at the comparison size, LAN -----------------------------------
  const compareN = options.quick ? 16 : 64;
  const vsIdealOf = (b: BenchWorkload, n: number, times: readonly (number | null)[]) =>
    idealTime(b, n) / medianTime(times);
  const worst = new Map<string, number>();
  const arms = options.arm ? [armByKey(options.arm)] : ARMS;
  md.push(
    `ASGD time relative to the ideal bound at N = ${compareN}, LAN (ideal time / ASGD time, median over ${options.sweepSeeds} seeds, best η of the window):`,
    '',
  );
  md.push(
    `| merge | ${benches.map((b) => b.key).join(' | ')} | worst |`,
    `|---|${benches.map(() => '---|').join('')}---|`,
  );
  for (const arm of arms) {
    const cells: string[] = [];
    let worstHere = Infinity;
    for (const b of benches) {
      const idealEta = ideal.get(`${b.key}/${compareN}`)!.best.eta;
      const etas = etaWindow(b.workload.learningRates, idealEta / 4, 4);
      const r = await sweep(
        etas,
        sweepSeeds,
        sweepSeeds,
        runAsgd(b, arm, compareN, 'lan', asgdCap(b, compareN)),
        asgdCap(b, compareN),
      );
      const v = vsIdealOf(b, compareN, r.best.times);
      worstHere = Math.min(worstHere, v);
      cells.push(`${f(v)} (η ${r.best.eta})`);
      log(
        `[merge] ${arm.key} ${b.key} N=${compareN}: η=${r.best.eta} vs ideal ${f(v)} (${r.tried.map((p) => `${p.eta}:${f(medianTime(p.times), 3)}`).join(' ')})`,
      );
    }
    worst.set(arm.key, worstHere);
    md.push(`| ${arm.label} | ${cells.join(' | ')} | ${f(worstHere)} |`);
  }
  md.push('');
  let winner = arms[0]!;
  for (const arm of arms)
    if ((worst.get(arm.key) ?? 0) > (worst.get(winner.key) ?? 0)) winner = arm;
  log(`[merge] adopted for the scaling runs: ${winner.key} (${winner.label})`);

  // --- scaling: the adopted merge on LAN and home, η swept per N ----------------------------
  const asgdBest = new Map<string, SweepResult>();
  for (const b of benches) {
    for (const profile of ['lan', 'home'] as const) {
      for (const n of b.counts) {
        if (n === 1) {
          // One worker has no peers: ASGD is plain SGD, the bound's own run.
          asgdBest.set(`${b.key}/${profile}/1`, ideal.get(`${b.key}/1`)!);
          continue;
        }
        const idealEta = ideal.get(`${b.key}/${n}`)!.best.eta;
        const etas = etaWindow(b.workload.learningRates, idealEta / 4, 4);
        const cap = asgdCap(b, n);
        const t0 = performance.now();
        const r = await sweep(etas, sweepSeeds, seeds, runAsgd(b, winner, n, profile, cap), cap);
        asgdBest.set(`${b.key}/${profile}/${n}`, r);
        rows.push({
          workload: b.key,
          method: winner.key,
          profile,
          workers: n,
          eta: r.best.eta,
          times: [...r.best.times],
          capS: cap,
        });
        log(
          `[asgd] ${b.key} ${profile} N=${n} η=${r.best.eta} time ${f(medianTime(r.best.times), 3)} s, ideal ${f(idealTime(b, n), 3)} s (${f((performance.now() - t0) / 1000, 1)} s wall)`,
        );
      }
    }
  }

  // --- table and plots ----------------------------------------------------------------------
  const asgdTime = (b: BenchWorkload, profile: 'lan' | 'home', n: number) =>
    medianTime(asgdBest.get(`${b.key}/${profile}/${n}`)!.best.times);
  md.push(
    `Time to target (median of ${options.seeds} seeds, simulated s; ± one standard deviation), speed-up over one worker, absolute efficiency (speed-up / N) and ASGD relative to the ideal bound (${winner.label}):`,
    '',
  );
  md.push(
    '| workload | N | ideal s (η) | ASGD LAN s (η) | ASGD home s (η) | ideal speed-up | LAN speed-up | LAN efficiency | LAN vs ideal | home vs ideal |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  const csv = ['workload,method,profile,workers,eta,cap_s,median_s,mean_s,sd_s,reached,seeds'];
  for (const r of rows) {
    const s = spread(r.times);
    csv.push(
      [
        r.workload,
        r.method,
        r.profile,
        r.workers,
        r.eta,
        f(r.capS, 4),
        f(medianTime(r.times), 4),
        f(s?.mean, 4),
        f(s?.sd, 4),
        r.times.filter((t) => t !== null).length,
        r.times.length,
      ].join(','),
    );
  }
  for (const b of benches) {
    const t1 = idealTime(b, 1);
    const series: Series[] = [
      { label: 'linear', points: b.counts.map((n) => ({ x: n, y: n })), dashed: true },
      { label: 'ideal sync', points: b.counts.map((n) => ({ x: n, y: t1 / idealTime(b, n) })) },
      { label: 'ASGD LAN', points: b.counts.map((n) => ({ x: n, y: t1 / asgdTime(b, 'lan', n) })) },
      {
        label: 'ASGD home',
        points: b.counts.map((n) => ({ x: n, y: t1 / asgdTime(b, 'home', n) })),
      },
    ];
    writeFileSync(
      `${options.out}/speedup-${b.key}.svg`,
      lineChart(
        `${b.workload.name}: speed-up to target`,
        'workers',
        'speed-up over one worker',
        series,
        { logX: true, logY: true },
      ),
    );
    for (const n of b.counts) {
      const cell = (key: string) => {
        const sr =
          key === 'ideal' ? ideal.get(`${b.key}/${n}`)! : asgdBest.get(`${b.key}/${key}/${n}`)!;
        const s = spread(sr.best.times);
        return `${f(medianTime(sr.best.times), 3)}${s ? ` ± ${f(s.sd, 3)}` : ''} (${sr.best.eta})`;
      };
      const lan = asgdTime(b, 'lan', n);
      md.push(
        `| ${b.key} | ${n} | ${cell('ideal')} | ${cell('lan')} | ${cell('home')} | ${f(t1 / idealTime(b, n), 1)} | ${f(t1 / lan, 1)} | ${f(t1 / lan / n)} | ${f(idealTime(b, n) / lan)} | ${f(idealTime(b, n) / asgdTime(b, 'home', n))} |`,
      );
    }
  }
  md.push('');
  writeFileSync(`${options.out}/times.csv`, csv.join('\n') + '\n');

  // --- fixed work (total samples split over N) and weak scaling (samples per worker fixed) --
  md.push(
    "Fixed work: the samples one worker needs for twice its time to target, split over N workers (η: each N's best). Efficiency: samples one worker needs to reach the quality N workers end at, over the samples spent; gap: relative quality difference to one worker at the same total. Weak scaling: every worker does the per-worker share of N = 64; quality at the end.",
    '',
  );
  md.push(
    '| workload | N | fixed-work quality | one worker | gap | efficiency | weak-scaling quality |',
    '|---|---|---|---|---|---|---|',
  );
  const fixedCsv = [
    'workload,workers,fixed_quality,one_worker_quality,gap,efficiency,weak_quality',
  ];
  const fixed = new Map<string, { efficiency: number; gap: number }>();
  const fixedCounts = (b: BenchWorkload) => b.counts.filter((n) => n <= 64 && n > 1);
  for (const b of benches.filter((x) => x.key !== 'mlp')) {
    const stepS = stepSOf(b);
    const t1 = idealTime(b, 1);
    if (!Number.isFinite(t1)) continue;
    const totalSteps = Math.ceil((2 * t1) / stepS);
    const eta1 = ideal.get(`${b.key}/1`)!.best.eta;
    const one = runIdealSync({
      workload: b.workload,
      workers: 1,
      learningRate: eta1,
      samplesPerSec: SAMPLES_PER_SEC,
      evalIntervalS: stepS,
      maxTimeS: totalSteps * stepS + stepS,
      rounds: totalSteps,
      stopAtTarget: false,
      seed: 1,
    });
    const better = (a: number, c: number) => (b.workload.higherIsBetter ? a >= c : a <= c);
    const samplesOneWorkerFor = (q: number) => {
      const hit = one.curve.find((p) => better(p.value, q));
      return hit ? hit.timeS * SAMPLES_PER_SEC : totalSteps * b.workload.batchSize;
    };
    const weakSteps = Math.max(1, Math.round(totalSteps / 64));
    for (const n of fixedCounts(b)) {
      const eta = asgdBest.get(`${b.key}/lan/${n}`)!.best.eta;
      const steps = Math.max(1, Math.round(totalSteps / n));
      const capS = steps * stepS + 2 * stepS;
      const quality = async (stepsPerWorker: number) => {
        const qs: number[] = [];
        for (const seed of sweepSeeds) {
          const r = await runAsgd(b, winner, n, 'lan', capS, {
            stepsPerWorker,
            stopAtTarget: false,
          })(eta, seed);
          qs.push(r.finalQuality);
        }
        return qs.reduce((x, y) => x + y, 0) / qs.length;
      };
      const q = await quality(steps);
      const weak = await quality(weakSteps);
      const gap =
        (b.workload.higherIsBetter ? one.finalQuality - q : q - one.finalQuality) /
        one.finalQuality;
      const efficiency = samplesOneWorkerFor(q) / (totalSteps * b.workload.batchSize);
      fixed.set(`${b.key}/${n}`, { efficiency, gap });
      md.push(
        `| ${b.key} | ${n} | ${f(q, 4)} | ${f(one.finalQuality, 4)} | ${f(100 * gap, 2)}% | ${f(efficiency)} | ${f(weak, 4)} |`,
      );
      fixedCsv.push([b.key, n, q, one.finalQuality, gap, efficiency, weak].join(','));
      log(
        `[fixed] ${b.key} N=${n}: quality ${f(q, 4)} vs one worker ${f(one.finalQuality, 4)} (gap ${f(100 * gap)}%), efficiency ${f(efficiency)}; weak ${f(weak, 4)}`,
      );
    }
  }
  md.push('');
  writeFileSync(`${options.out}/fixed-work.csv`, fixedCsv.join('\n') + '\n');

  // --- the big run: how long does the simulator take at 10,000 workers? --------------------
  const km = benches.find((b) => b.key === 'kmeans') ?? benches[0]!;
  const largest = km.counts[km.counts.length - 1]!;
  const bigEta = asgdBest.get(`${km.key}/lan/${largest}`)!.best.eta;
  const big = await runAsgd(km, winner, options.bigWorkers, 'lan', asgdCap(km, largest))(bigEta, 1);
  log(
    `[big] ${km.key} N=${options.bigWorkers} LAN η=${bigEta}: time to target ${f(big.timeToTargetS, 3)} s simulated (ideal at ${largest}: ${f(idealTime(km, largest), 3)} s), ${big.steps} steps, ${big.pushes} pushes, ${f(big.wallS, 1)} s wall`,
  );
  md.push(
    `${options.bigWorkers.toLocaleString('en')} simulated workers (${km.workload.name}, LAN, η ${bigEta}): time to target ${f(big.timeToTargetS, 3)} s simulated, ${big.steps.toLocaleString('en')} steps and ${big.pushes.toLocaleString('en')} pushes in ${f(big.wallS, 1)} s of wall time.`,
    '',
  );

  writeFileSync(`${options.out}/summary.md`, md.join('\n') + '\n');
  log('');
  for (const line of md) log(line);
  const at64 = (b: BenchWorkload, profile: 'lan' | 'home') =>
    b.counts.includes(64) ? idealTime(b, 64) / asgdTime(b, profile, 64) : NaN;
  const kmT1 = idealTime(km, 1);
  const summary = {
    bench: 'scale',
    speedup_64: round(kmT1 / asgdTime(km, 'lan', 64)),
    efficiency_64: round(kmT1 / asgdTime(km, 'lan', 64) / 64),
    vs_ideal_64: round(Math.min(...benches.map((b) => at64(b, 'lan')))),
    vs_ideal_64_home: round(Math.min(...benches.map((b) => at64(b, 'home')))),
    fixed_work_efficiency_64: round(fixed.get(`${km.key}/64`)?.efficiency ?? NaN),
    fixed_work_quality_gap_64: round(fixed.get(`${km.key}/64`)?.gap ?? NaN, 4),
    workers_max_simulated: options.bigWorkers,
    sim_wall_s_at_max: round(big.wallS, 1),
  };
  log(
    `[bench:scale] ${options.quick ? 'quick, ' : ''}${options.seeds} seeds, ${f((performance.now() - started) / 1000, 0)} s wall; results in ${options.out}`,
  );
  log(JSON.stringify(summary));
}

const round = (x: number, d = 3) => (Number.isFinite(x) ? Number(x.toFixed(d)) : null);
