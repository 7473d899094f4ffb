/**
 * `npm run bench:balance`: the balancer experiment (docs/benchmarks.md, section Balancer).
 * Simulated time to a target for the balancer, a grid of fixed (b, m), synchronous SGD and no
 * communication on three link profiles; a 10× bandwidth drop; a 1 → 64 worker scaling run.
 * Writes docs/balance/*.csv and *.svg and the Balancer section of docs/benchmarks.md, prints
 * progress, and ends with one JSON line.
 *
 * Options: --quick (CI-sized), --threads=N (default 2), --out=DIR (default docs/balance),
 * --no-docs (do not touch docs/benchmarks.md), --merge=NAME (the workers' merge rule, one of
 * MERGE_RULES in jobs.ts; default a job's default).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { LINK_PROFILES, sendRateBytesPerSec, type LinkProfileName } from '@meshgrad/core';
import { round3, settleTime } from './analysis.ts';
import {
  armLabel,
  BATCH_SIZE,
  MERGE_ENV,
  MERGE_RULES,
  MEDIAN_SPEED,
  runJob,
  SPEED_RATIO,
  WORKLOADS,
  workloadFor,
  type Arm,
  type Job,
  type JobResult,
  type WorkloadName,
} from './jobs.ts';
import { barChart, lineChart, type BarGroup } from './svg.ts';

/** Other arms run until this many times the balancer's time (or not reached). */
const CAP_FACTOR = 2.5;
const SEED = 1;
/**
 * Seeds beyond the first for the balancer, the best fixed settings and the drop. One MNIST run's
 * time to target spreads by ±3 s over seeds (about 20%), so a mean over three seeds still moves
 * by ±10%: the 1.1× goal needs five.
 */
const EXTRA_SEEDS = [2, 3, 4, 5];
/** Fixed settings re-run with the extra seeds, per profile. */
const TOP_FIXED = 2;
const WORKERS = 8;
const BALANCER_CAP_S: Record<WorkloadName, number> = { mnist: 120, kmeans: 60 };
const SCALING_COUNTS = [1, 2, 4, 8, 16, 32, 64];
const SCALING_SINGLE_CAP_S = 120;
/** Scaling runs with more workers stop at this many times the single worker's time. */
const SCALING_CAP_FACTOR = 2;
const DROP = { atS: 20, factor: 0.1 };
const DROP_RUN_S = 40;

interface Options {
  readonly quick: boolean;
  readonly threads: number;
  readonly out: string;
  readonly docs: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  let quick = false;
  let threads = Math.min(2, cpus().length);
  let out = 'docs/balance';
  let docs = true;
  for (const a of argv) {
    if (a === '--quick') quick = true;
    else if (a === '--no-docs') docs = false;
    else if (a.startsWith('--threads=')) threads = Math.max(1, Number(a.slice(10)) || 1);
    else if (a.startsWith('--out=')) out = a.slice(6);
    else if (a.startsWith('--merge=')) {
      const name = a.slice(8);
      if (!(name in MERGE_RULES)) {
        throw new Error(`--merge must be one of ${Object.keys(MERGE_RULES).join(', ')}`);
      }
      // Read by every job, in this thread and in the worker threads (they inherit it).
      process.env[MERGE_ENV] = name;
    } else
      throw new Error(
        `unknown option ${a} (use --quick, --threads=N, --out=DIR, --no-docs, --merge=NAME)`,
      );
  }
  return { quick, threads, out, docs };
}

const log = (line: string) => console.log(`[bench:balance] ${line}`);

/** Runs jobs on `threads` worker threads (or inline for 1), reporting each as it ends. */
async function runAll(
  jobs: readonly Job[],
  threads: number,
  done: (r: JobResult, job: Job) => void,
): Promise<Map<string, JobResult>> {
  const results = new Map<string, JobResult>();
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const finish = (r: JobResult) => {
    results.set(r.id, r);
    done(r, byId.get(r.id)!);
  };
  if (threads <= 1 || jobs.length <= 1) {
    for (const job of jobs) finish(await runJob(job, () => performance.now()));
    return results;
  }
  const queue = [...jobs];
  const self = fileURLToPath(import.meta.url);
  await Promise.all(
    Array.from({ length: Math.min(threads, jobs.length) }, async () => {
      const worker = new Worker(self);
      try {
        for (let job = queue.shift(); job; job = queue.shift()) {
          const current = job;
          const r = await new Promise<JobResult>((resolve, reject) => {
            worker.once('message', resolve);
            worker.once('error', reject);
            worker.postMessage(current);
          });
          worker.removeAllListeners('error');
          finish(r);
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  return results;
}

function describe(job: Job, r: JobResult): string {
  const t =
    r.timeToTargetS === null
      ? `not reached by ${job.maxTimeS.toFixed(1)} s`
      : `${r.timeToTargetS.toFixed(2)} s`;
  const what = job.drop
    ? `10× drop at ${job.drop.atS} s, run to ${job.maxTimeS} s`
    : job.speeds === 'homogeneous'
      ? `scaling, ${job.workers} equal workers`
      : armLabel(job.arm);
  return `${job.workload}/${job.profile} ${what}: ${t} (wall ${r.wallS.toFixed(1)} s)`;
}

export async function main(argv: readonly string[]): Promise<void> {
  const options = parseArgs(argv);
  const started = performance.now();
  const workloads: WorkloadName[] = options.quick ? ['kmeans'] : ['mnist', 'kmeans'];
  const profiles: readonly LinkProfileName[] = LINK_PROFILES;
  const batchesGrid = options.quick ? [1, 16] : [1, 4, 16];
  const extraSeeds = options.quick ? [] : EXTRA_SEEDS;
  const dropSeeds = options.quick ? [SEED] : [SEED, ...EXTRA_SEEDS];
  const dropWorkload: WorkloadName = options.quick ? 'kmeans' : 'mnist';
  const scalingCounts = options.quick ? SCALING_COUNTS.filter((n) => n <= 16) : SCALING_COUNTS;
  log(
    `${options.quick ? 'quick' : 'full'} run on ${options.threads} thread(s); workloads ${workloads.join(', ')}; profiles ${profiles.join(', ')}`,
  );
  for (const w of workloads) await workloadFor(w); // fail early on data problems
  const jobId = (w: string, p: string, arm: Arm, seed = SEED, n?: number) =>
    `${w}/${p}/${armLabel(arm)}/${n === undefined ? 'heterogeneous' : `${n} equal`}/seed ${seed}`;
  const jobs = new Map<string, Job>();
  const results = new Map<string, JobResult>();
  const run = async (list: Job[]) => {
    for (const j of list) jobs.set(j.id, j);
    // MNIST and drop jobs first: the longest, so the threads finish together.
    const weight = (j: Job) => (j.drop ? 2 : j.workload === 'mnist' ? 1 : 0);
    list.sort((a, b) => weight(b) - weight(a));
    for (const [id, r] of await runAll(list, options.threads, (r, job) => log(describe(job, r)))) {
      results.set(id, r);
    }
  };
  const job = (
    w: WorkloadName,
    p: LinkProfileName,
    arm: Arm,
    maxTimeS: number,
    seed = SEED,
  ): Job => ({
    id: jobId(w, p, arm, seed),
    workload: w,
    profile: p,
    arm,
    workers: WORKERS,
    speeds: 'heterogeneous',
    maxTimeS,
    seed,
  });
  const balancerArm: Arm = { kind: 'balancer' };

  // Phase 1: the balancer on every profile, and one worker alone for the scaling baseline.
  const phase1: Job[] = [];
  for (const w of workloads)
    for (const p of profiles) phase1.push(job(w, p, balancerArm, BALANCER_CAP_S[w]));
  const scalingJob = (n: number, maxTimeS: number): Job => ({
    id: jobId('kmeans', 'lan', balancerArm, SEED, n),
    workload: 'kmeans',
    profile: 'lan',
    arm: balancerArm,
    workers: n,
    speeds: 'homogeneous',
    maxTimeS,
    seed: SEED,
  });
  phase1.push(scalingJob(1, SCALING_SINGLE_CAP_S));
  await run(phase1);

  // Phase 2: every other arm, capped at CAP_FACTOR × the balancer's time; scaling; the drop.
  const capFor = (w: WorkloadName, p: LinkProfileName) => {
    const t = results.get(jobId(w, p, balancerArm))!.timeToTargetS;
    return t === null ? BALANCER_CAP_S[w] : CAP_FACTOR * t;
  };
  const fixedArms = (w: WorkloadName): Arm[] =>
    batchesGrid.flatMap((b) =>
      [1, WORKLOADS[w].blockCount].map((m): Arm => ({ kind: 'fixed', batches: b, blocks: m })),
    );
  const otherArms = (w: WorkloadName): Arm[] => [
    { kind: 'balancer', encodings: ['f32'] },
    ...fixedArms(w),
    { kind: 'sync' },
    { kind: 'none' },
  ];
  const phase2: Job[] = [];
  for (const w of workloads) {
    for (const p of profiles)
      for (const arm of otherArms(w)) phase2.push(job(w, p, arm, capFor(w, p)));
  }
  const t1 =
    results.get(jobId('kmeans', 'lan', balancerArm, SEED, 1))!.timeToTargetS ??
    SCALING_SINGLE_CAP_S;
  const scalingCap = SCALING_CAP_FACTOR * t1;
  for (const n of scalingCounts.filter((x) => x > 1)) phase2.push(scalingJob(n, scalingCap));
  const dropId = (seed: number, uplinkOnly = false) =>
    `drop${uplinkOnly ? ' (uplinks only)' : ''}/seed ${seed}`;
  for (const uplinkOnly of options.quick ? [false] : [false, true]) {
    for (const seed of dropSeeds) {
      phase2.push({
        id: dropId(seed, uplinkOnly),
        workload: dropWorkload,
        profile: 'home',
        arm: balancerArm,
        workers: WORKERS,
        speeds: 'heterogeneous',
        maxTimeS: options.quick ? 35 : DROP_RUN_S,
        seed,
        drop: { ...DROP, uplinkOnly },
        runToEnd: true,
        recordTicks: true,
      });
    }
  }
  await run(phase2);

  // Phase 3: more seeds for the balancer and the two best fixed settings of each profile, so the
  // comparison does not hang on one run's luck (the pick itself comes from seed 1 only).
  const time = (id: string, cap: number) => results.get(id)?.timeToTargetS ?? cap;
  const topFixed = new Map<string, Arm[]>();
  const phase3: Job[] = [];
  for (const w of workloads) {
    for (const p of profiles) {
      const cap = capFor(w, p);
      const ranked = fixedArms(w)
        .map((arm) => ({ arm, t: time(jobId(w, p, arm), Infinity) }))
        .sort((a, b) => a.t - b.t)
        .slice(0, TOP_FIXED)
        .map((x) => x.arm);
      topFixed.set(`${w}/${p}`, ranked);
      for (const seed of extraSeeds) {
        for (const arm of [balancerArm, ...ranked]) phase3.push(job(w, p, arm, cap, seed));
      }
    }
  }
  if (phase3.length) await run(phase3);

  // Numbers.
  const seeds = [SEED, ...extraSeeds];
  const meanTime = (w: WorkloadName, p: LinkProfileName, arm: Arm) => {
    const cap = capFor(w, p);
    const ts = seeds.map((seed) => results.get(jobId(w, p, arm, seed))?.timeToTargetS ?? null);
    return {
      mean: ts.reduce<number>((sum, t) => sum + (t ?? cap), 0) / ts.length,
      all: ts,
      reached: ts.every((t) => t !== null),
    };
  };
  /** Ratio of the mean times over the seeds after the first (null with one seed). */
  const heldOutRatio = (
    a: ReturnType<typeof meanTime>,
    b: ReturnType<typeof meanTime>,
    cap: number,
  ): number | null => {
    const rest = (m: ReturnType<typeof meanTime>) =>
      m.all.slice(1).reduce<number>((sum, t) => sum + (t ?? cap), 0);
    return a.all.length > 1 ? rest(a) / rest(b) : null;
  };
  mkdirSync(options.out, { recursive: true });
  const rows: string[] = [
    'workload,profile,arm,b,m,encoding,seed,reached,time_to_target_s,cap_s,samples,bytes_delivered,sends_skipped,overflows,max_backlog_bytes,wall_s',
  ];
  for (const [id, r] of results) {
    const j = jobs.get(id)!;
    if (j.drop || j.speeds === 'homogeneous') continue;
    const arm = j.arm;
    rows.push(
      [
        j.workload,
        j.profile,
        armLabel(arm),
        arm.kind === 'fixed' ? arm.batches * BATCH_SIZE : '',
        arm.kind === 'fixed' ? arm.blocks : '',
        arm.kind === 'fixed' ? 'f32' : '',
        j.seed,
        r.timeToTargetS !== null,
        r.timeToTargetS ?? '',
        j.maxTimeS,
        r.totals.samples,
        r.totals.bytesDelivered,
        r.totals.sendsSkipped,
        r.totals.overflows,
        Math.round(r.totals.maxBacklogBytes),
        r.wallS.toFixed(2),
      ].join(','),
    );
  }
  writeFileSync(`${options.out}/times.csv`, rows.join('\n') + '\n');

  interface Summary {
    workload: WorkloadName;
    profile: LinkProfileName;
    cap: number;
    balancer: ReturnType<typeof meanTime>;
    bestFixed: ReturnType<typeof meanTime>;
    bestFixedLabel: string;
    /**
     * Balancer / the fixed setting that was best on seed 1, both on the other seeds only: a
     * comparison the pick's own luck does not flatter (null without extra seeds).
     */
    heldOut: number | null;
    balancerF32: number | null;
    sync: number | null;
    none: number | null;
  }
  const summary: Summary[] = [];
  for (const w of workloads) {
    const groups: BarGroup[] = [];
    for (const p of profiles) {
      const cap = capFor(w, p);
      const candidates = topFixed.get(`${w}/${p}`)!.map((arm) => ({ arm, t: meanTime(w, p, arm) }));
      const best = candidates.sort((a, b) => a.t.mean - b.t.mean)[0]!;
      const seed1 = (arm: Arm) => results.get(jobId(w, p, arm))!.timeToTargetS;
      summary.push({
        workload: w,
        profile: p,
        cap,
        balancer: meanTime(w, p, balancerArm),
        bestFixed: best.t,
        bestFixedLabel: armLabel(best.arm),
        heldOut: heldOutRatio(
          meanTime(w, p, balancerArm),
          meanTime(w, p, topFixed.get(`${w}/${p}`)![0]!),
          cap,
        ),
        balancerF32: seed1({ kind: 'balancer', encodings: ['f32'] }),
        sync: seed1({ kind: 'sync' }),
        none: seed1({ kind: 'none' }),
      });
      groups.push({
        label: `${p} (seed ${SEED})`,
        bars: [balancerArm, ...otherArms(w)].map((arm) => ({
          label: armLabel(arm),
          value: seed1(arm),
          cap: jobs.get(jobId(w, p, arm))!.maxTimeS,
          highlight: arm.kind === 'balancer' && !arm.encodings,
        })),
      });
    }
    const title =
      w === 'mnist'
        ? 'MLP on MNIST: simulated seconds to 90% test accuracy'
        : 'K-Means: simulated seconds to within 2% of the optimum';
    writeFileSync(`${options.out}/times-${w}.svg`, barChart(title, 's', groups));
  }

  // Scaling.
  const scalingRows = ['workers,time_to_target_s,reached,cap_s,speedup,efficiency,samples,wall_s'];
  const scaling = scalingCounts.map((n) => {
    const r = results.get(jobId('kmeans', 'lan', balancerArm, SEED, n))!;
    const cap = n === 1 ? SCALING_SINGLE_CAP_S : scalingCap;
    const t = r.timeToTargetS ?? cap;
    const speedup = t1 / t;
    scalingRows.push(
      [
        n,
        r.timeToTargetS ?? '',
        r.timeToTargetS !== null,
        cap,
        speedup.toFixed(3),
        (speedup / n).toFixed(4),
        r.totals.samples,
        r.wallS.toFixed(2),
      ].join(','),
    );
    return { n, t, speedup, reached: r.timeToTargetS !== null, samples: r.totals.samples };
  });
  writeFileSync(`${options.out}/scaling.csv`, scalingRows.join('\n') + '\n');
  writeFileSync(
    `${options.out}/scaling.svg`,
    lineChart(
      'K-Means on LAN, equal speeds: speed-up in time to target',
      'workers',
      'speed-up over one worker',
      [
        { label: 'measured', points: scaling.map((s) => ({ x: s.n, y: s.speedup })) },
        { label: 'linear', points: scaling.map((s) => ({ x: s.n, y: s.n })), dashed: true },
        {
          label: '0.7 × linear',
          points: scaling.map((s) => ({ x: s.n, y: 0.7 * s.n })),
          dashed: true,
        },
      ],
      { logX: true, logY: true },
    ),
  );

  // The drop.
  const dropWl = await workloadFor(dropWorkload);
  const model = { blockCount: dropWl.layout.blockCount, parameterCount: dropWl.layout.size };
  const dropStats = (seed: number, uplinkOnly: boolean) => {
    const r = results.get(dropId(seed, uplinkOnly))!;
    const after = r.ticks.filter((t) => t.timeS > DROP.atS);
    const skippedAt = (t: (typeof r.ticks)[number] | undefined) =>
      t?.workers.reduce((sum, w) => sum + w.sendsSkipped, 0) ?? 0;
    return {
      seed,
      result: r,
      settle: settleTime(r.ticks, DROP.atS),
      perWorker: [...new Set(after.flatMap((t) => t.workers.map((w) => w.id)))].map((id) => ({
        id,
        settle: settleTime(
          r.ticks.map((t) => ({ ...t, workers: t.workers.filter((w) => w.id === id) })),
          DROP.atS,
        ),
      })),
      overflows: r.totals.overflows,
      skippedAfter:
        skippedAt(r.ticks.at(-1)) - skippedAt(r.ticks.filter((t) => t.timeS <= DROP.atS).at(-1)),
      maxBacklogAfter: Math.max(
        0,
        ...after.flatMap((t) => t.workers.map((w) => w.maxBacklogBytes)),
      ),
      uplinkOnly,
    };
  };
  const drops = dropSeeds.map((seed) => dropStats(seed, false));
  const uplinkDrops = options.quick ? [] : dropSeeds.map((seed) => dropStats(seed, true));
  const dropRows = [
    'links,seed,time_s,worker,samples_per_s,b,m,encoding,planned_bytes_per_s,budget_bytes_per_s,capacity_estimate_bytes_per_s,goodput_bytes_per_s,backlog_bytes,max_backlog_bytes,sends_skipped,overflows',
  ];
  for (const d of [...drops, ...uplinkDrops]) {
    for (const tick of d.result.ticks) {
      for (const w of tick.workers) {
        const planned = sendRateBytesPerSec(w.settings, model, BATCH_SIZE, w.samplesPerSec);
        dropRows.push(
          [
            d.uplinkOnly ? 'uplinks' : 'all',
            d.seed,
            tick.timeS,
            w.id,
            w.samplesPerSec.toFixed(1),
            w.settings.communicationPeriod,
            w.settings.blocksPerMessage,
            w.settings.encoding,
            planned.toFixed(0),
            (w.budgetBytesPerSec ?? 0).toFixed(0),
            (w.capacityBytesPerSec ?? 0).toFixed(0),
            w.goodputBytesPerSec.toFixed(0),
            w.backlogBytes.toFixed(0),
            w.maxBacklogBytes.toFixed(0),
            w.sendsSkipped,
            w.overflows,
          ].join(','),
        );
      }
    }
  }
  writeFileSync(`${options.out}/drop.csv`, dropRows.join('\n') + '\n');
  const first = drops[0]!.result;
  const series = (pick: (w: (typeof first.ticks)[number]['workers'][number]) => number) => {
    const byWorker = new Map<string, { x: number; y: number }[]>();
    for (const tick of first.ticks) {
      for (const w of tick.workers) {
        const list = byWorker.get(w.id) ?? byWorker.set(w.id, []).get(w.id)!;
        list.push({ x: tick.timeS, y: Math.max(pick(w), 1) / 1000 });
      }
    }
    return [...byWorker].map(([label, points]) => ({ label, points }));
  };
  const marks = [{ x: DROP.atS, label: '10× drop' }];
  writeFileSync(
    `${options.out}/drop-traffic.svg`,
    lineChart(
      `Balancer, ${dropWorkload} on home links (seed ${SEED}): planned send rate per worker`,
      'simulated time (s)',
      'kB/s (log)',
      series((w) => sendRateBytesPerSec(w.settings, model, BATCH_SIZE, w.samplesPerSec)),
      { logY: true, marks },
    ),
  );
  writeFileSync(
    `${options.out}/drop-backlog.svg`,
    lineChart(
      `Largest channel backlog per worker and tick (seed ${SEED})`,
      'simulated time (s)',
      'kB (log)',
      series((w) => w.maxBacklogBytes),
      { logY: true, marks },
    ),
  );

  const worstVsFixed = Math.max(...summary.map((s) => s.balancer.mean / s.bestFixed.mean));
  /** The same worst ratio from the first three seeds' times only (for the notes). */
  const firstThreeWorst = Math.max(
    ...summary.map((s) => {
      const mean = (m: ReturnType<typeof meanTime>) =>
        m.all.slice(0, 3).reduce<number>((sum, t) => sum + (t ?? s.cap), 0) /
        Math.min(3, m.all.length);
      return mean(s.balancer) / mean(s.bestFixed);
    }),
  );
  const heldOuts = summary.flatMap((s) => (s.heldOut === null ? [] : [s.heldOut]));
  const heldOutWorst = heldOuts.length ? Math.max(...heldOuts) : null;
  const syncVsBalancer = Math.min(...summary.map((s) => (s.sync ?? s.cap) / s.balancer.mean));
  const settles = drops.map((d) => d.settle).sort((a, b) => a - b);
  // The goal holds only if it holds on every seed: the result is the worst one.
  const settleWorst = settles[settles.length - 1]!;
  const at64 = scaling.find((s) => s.n === 64);
  const json = {
    bench: 'balance',
    balancer_vs_best_fixed_worst_profile: round3(worstVsFixed),
    sync_vs_balancer_heterogeneous: round3(syncVsBalancer),
    resettle_s_after_10x_drop: Number.isFinite(settleWorst) ? round3(settleWorst) : null,
    scaling_efficiency_64: at64 ? round3(at64.speedup / 64) : null,
  };

  // Goals.
  const secs = (t: number) => (Number.isFinite(t) ? `${t.toFixed(1)} s` : 'not settled');
  const worstCase = summary.reduce((a, b) =>
    b.balancer.mean / b.bestFixed.mean > a.balancer.mean / a.bestFixed.mean ? b : a,
  );
  const syncLowerBound = summary.some((s) => s.sync === null);
  const mark = (ok: boolean) => (ok ? 'met' : '**not met**');
  const goalLines = [
    `- Balancer within 1.1× of the best fixed (b, m) on every profile: ${mark(worstVsFixed <= 1.1)}; worst ${worstVsFixed.toFixed(2)} (${worstCase.workload}/${worstCase.profile}).${heldOutWorst === null ? '' : ` For reference, not the goal's measure: against the setting that was best on seed ${SEED}, on the other seeds only, the worst ratio is ${heldOutWorst.toFixed(2)}.`}`,
    `- Synchronous SGD at least 2× slower than the balancer on every profile: ${mark(syncVsBalancer >= 2)}; at least ${syncVsBalancer.toFixed(2)}×${syncLowerBound ? ' (a lower bound: sync SGD did not reach the target before its cutoff)' : ''}.`,
    `- Settings settle within 5 s of a 10× drop, without overflow: ${mark(Number.isFinite(settleWorst) && settleWorst <= 5 && drops.every((d) => d.overflows === 0))}; worst seed ${secs(settleWorst)} when all links drop (${settles.map(secs).join(', ')})${uplinkDrops.length ? `, ${secs(Math.max(...uplinkDrops.map((d) => d.settle)))} when only uplinks drop` : ''}; overflows: ${[...drops, ...uplinkDrops].reduce((n, d) => n + d.overflows, 0)}.`,
    at64
      ? `- Scaling efficiency at 64 workers of at least 0.7: ${mark(at64.speedup / 64 >= 0.7)}; ${(at64.speedup / 64).toFixed(3)}.`
      : '- Scaling efficiency at 64 workers: not measured (the quick run stops at 16 workers).',
  ];

  // Known causes of the misses in the full run (the quick run has too little to say).
  const notes = [
    'Notes, from the traces in `docs/balance/*.csv`:',
    '',
    `- Where bandwidth is no constraint (lan) the balancer sends up to one full model per step (rule 6 of \`packages/core/src/balancer/controller.ts\`), i.e. it behaves like fixed b=32 with all blocks; on MNIST a full model every 4 steps (b=128 m=4) does as well or a little better. The arms differ by less than the seed noise: one arm's time to target spreads by ±3 s over seeds (the bracketed columns), so a mean over three seeds still moves by ±10% (on seeds ${seeds.slice(0, 3).join(', ')} alone the worst ratio above is ${firstThreeWorst.toFixed(2)}); hence five. Tried on the balancer, 3 seeds each, none better on every profile: a ceiling of one full model every 2 steps, sent as whole-model messages (MNIST lan 14.0 / 16.5 / 16.5 s, home 14.0 / 17.5 / 17.0 s; K-Means unchanged); every 4 steps (K-Means lan 8.0 / 8.3 / 6.8 s, 1.18× its best fixed); a budget ceiling of a quarter model per step (MNIST lan 15.5 / 13.0 / 12.0 s, but home 19.5 / 24.0 / 17.0 s and K-Means mobile 6.8 / 9.0 / 6.8 s); applying the overwrite rule (rule 5) to uncongested senders as well (MNIST lan 14.0 / 17.0 / 17.0 s, K-Means home and mobile slower). The merge frequency has an optimum of its own on MNIST that the links do not show, and the signals the balancer has do not tell it apart: the Parzen acceptance rate at one model per step is 0.27–0.29 on MNIST and 0.25–0.26 on K-Means.`,
    "- 10× drop of all links: the balancer follows a drop within two ticks and then holds (rules 1, 2, 3, 5 and 8 of the controller): a congested capacity sample under 0.35 of the estimate is a drop when the next tick's sample is under 0.35 of the same estimate too, and the cut to the new capacity is applied at once; in those two ticks neither the drain term nor the overwrite rule cuts (the queue is the old settings', and the worker's valve holds it). A single low sample is smoothed in like any other: in browsers, SCTP on a real 2 Mbit/s uplink gives single congested seconds at a fifth of the estimate, and when the first low sample was taken as the drop, one such second cut the slow volunteer of the end-to-end test on shaped links to a third of its settled traffic (the test failed in CI). The same five seeds settled after 7, 2, 1, 3 and 4 s with that rule; with the confirmation but the overwrite rule still cutting on the first low tick, the overwrite cut went below the new capacity and was raised back 6 s later (2, 7, 2, 3, 4 s). Lowering otherwise needs a 30% change for 2 ticks, raising 35% for 6 ticks, and leaving an encoding a 1.5× margin. Neighbours stay put (rule 9: acceptance rates smoothed per link, one choosing order); before, a quarter of the workers changed neighbours every tick, and each change moved the load on some receiver's downlink. Not every seed settles this fast: on seed 6, outside the bench, settings still moved 12 s after the drop (seeds 7 and 8: 2 and 3 s), for senders whose bottleneck is a receiver's downlink shared with other senders (after the drop, downlinks of 125–250 kB/s receive from up to five senders): their share moves as the others adapt. No data channel overflowed in any case: the worker's valve (`localValveBytes`, a quarter second of drain) holds back sends until a queue left by the drop has drained.",
    '- Scaling: with the same η and batch for every worker count, averaging models reduces the noise of the steps but not the number of sequential steps the target needs. Quick experiments (K-Means, lan, equal speeds, seed 1; CpuBackend changed locally, not committed): averaging first and then taking the full local step, w ← (w + Σv) / (1 + n) − η·g, with the Parzen filter off: 10.75 s at 8 and at 64 workers (the current merge: 12.0 s at 8, not reached at 64). Neither change alone does it: the average-then-step merge with the filter on takes 11.0 s at 8 and does not reach the target at 64 either, and the current merge with the filter off takes 17.25 s at 8 and 17.5 s at 64. So what keeps the 64-worker run from the target within twice the time of one worker is the verdicts of the filter among many peers together with the weighting of the merge, a question for the algorithm (DESIGN §3 invites measured changes to the merge), not for the balancer; it is left open. Synchronous SGD over 64 workers (batch 2,048 per round) takes 13.0 s at η = 1: the target is bound by sequential steps, not by gradient noise. Scaling η (one worker diverges from η = 2): sync SGD at 64 workers 6.5 s (η = 2), 3.25 s (η = 4), 1.75 s (η = 8), efficiency 0.034, 0.068, 0.127; the average-then-step ASGD 4.5 s at η = 4 and not reached at η = 8. Efficiency 0.7 at 64 workers means the target in 0.32 s, about 4 steps of one worker, less than gossip needs to spread blocks to all 64; even the synchronous ideal reaches 0.13. So the goal is out of reach for this workload and target whatever the merge, and the merge (also in the WGSL kernels) was left as it is.',
    '',
  ];

  // Markdown.
  const f1 = (t: number) => t.toFixed(1);
  const orCap = (t: number | null, cap: number) => (t === null ? `> ${f1(cap)}` : f1(t));
  const seedList = (m: ReturnType<typeof meanTime>, cap: number) =>
    m.all.map((t) => orCap(t, cap)).join(' / ');
  const md: string[] = [];
  md.push('## Balancer', '');
  md.push(
    `Generated by \`npm run bench:balance${options.quick ? ' -- --quick' : ''}\` (${new Date().toISOString().slice(0, 10)}, ${((performance.now() - started) / 1000).toFixed(0)} s wall on ${options.threads} thread(s) of a shared 2-core machine). Everything runs in the simulator (\`packages/core/src/sim\`): the real \`AsgdWorker\`, \`CpuBackend\` and codec over simulated links and compute on a virtual clock, so all times are **simulated seconds**. Raw data: \`docs/balance/*.csv\`; plots: \`docs/balance/*.svg\`. Code: \`bench/balance/\`.`,
    '',
    'Setup, identical for every arm (same seeds, data shards, initial model, initial neighbour graph, link draws):',
    '',
    `- ${WORKERS} workers, heterogeneous compute: median ${MEDIAN_SPEED} samples/s, fastest / slowest = ${SPEED_RATIO}; the evaluated (checkpointed) model is the median-speed worker's. Batch ${BATCH_SIZE}.`,
    "- **mnist**: 784-64-10 MLP (the 128-wide one behaves alike at twice the wall time), η = 0.1, 4 blocks of 16,384 floats; target 90% accuracy on the 2,000 held-out digits. **kmeans**: 64 clusters × 32 dims (Gaussian, min. separation 24σ), η = 1 (the best constant rate for one worker), 8 blocks of 256 floats; target: held-out objective within 2% of the generating centres'.",
    '- Profiles: **lan** 100 Mbit/s symmetric, 0.5 ms; **home** upload 1–20 Mbit/s, download 10× upload, 10–40 ms, 10% of pairs relayed; **mobile** 5/20 Mbit/s dropping to 10% for 5 s about every 20 s, 30–80 ms + 20 ms jitter, 30% relayed. Relayed paths: 200 kB/s, +30 ms. Links are shared max-min fairly (uplink, downlink, relay).',
    `- Arms: the balancer (never told the profile); the balancer restricted to float32; fixed float32 (b, m) for b ∈ {${batchesGrid.map((b) => b * BATCH_SIZE).join(', ')}} samples × m ∈ {1, all blocks}; synchronous parameter-server SGD (1 Gbit/s server, one barrier per round, same η); no communication. Arms other than the balancer stop at ${CAP_FACTOR}× the balancer's time ("> x": not reached by then).`,
    `- ${extraSeeds.length ? `The balancer and the ${TOP_FIXED} best fixed settings of each profile (picked on seed ${SEED}) ran with seeds ${seeds.join(', ')}; their columns are means over those seeds (per seed in brackets).` : `One seed (${SEED}).`}`,
    '',
    '| workload | profile | balancer | best fixed (b, m) | balancer / best fixed | balancer, f32 only | sync SGD | sync / balancer | no communication |',
    '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const s of summary) {
    md.push(
      `| ${s.workload} | ${s.profile} | ${f1(s.balancer.mean)} s (${seedList(s.balancer, s.cap)}) | ${f1(s.bestFixed.mean)} s, ${s.bestFixedLabel} (${seedList(s.bestFixed, s.cap)}) | ${(s.balancer.mean / s.bestFixed.mean).toFixed(2)} | ${orCap(s.balancerF32, s.cap)} s | ${orCap(s.sync, s.cap)} s | ${s.sync === null ? '≥ ' : ''}${((s.sync ?? s.cap) / s.balancer.mean).toFixed(2)} | ${orCap(s.none, s.cap)} s |`,
    );
  }
  md.push('');
  for (const w of workloads) md.push(`![${w}](balance/times-${w}.svg)`);
  md.push(
    '',
    `**10× drop** (${dropWorkload} on home links; at t = ${DROP.atS} s links fall to a tenth for good; run to ${options.quick ? 35 : DROP_RUN_S} s; "settled" = from then on every worker's b and m stay within ±20% and its encoding stays put). The result line uses the first case, every uplink *and* downlink falling: then the receivers' downlinks, shared by several senders, become bottlenecks whose share moves as the other senders adapt. In the second case only uplinks fall (downloads stay 10× faster):`,
    '',
    '| links that drop | seed | settled after | workers settled within 5 s | data-channel overflows | valve skips after the drop | largest backlog after the drop |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const d of [...drops, ...uplinkDrops]) {
    const quick = d.perWorker.filter((x) => x.settle <= 5).length;
    md.push(
      `| ${d.uplinkOnly ? 'uplinks' : 'all'} | ${d.seed} | ${secs(d.settle)} | ${quick} of ${d.perWorker.length} | ${d.overflows} | ${d.skippedAfter} | ${(d.maxBacklogAfter / 1024).toFixed(0)} KiB |`,
    );
  }
  md.push('', '![drop](balance/drop-traffic.svg)', '');
  md.push(
    '**Scaling** (kmeans, lan, every worker at the median speed, balancer; speed-up in simulated time to the same target over one worker of the same speed):',
    '',
    '| workers | ' + scaling.map((s) => s.n).join(' | ') + ' |',
    '| --- | ' + scaling.map(() => '---:').join(' | ') + ' |',
    '| time to target (s) | ' +
      scaling.map((s) => (s.reached ? s.t.toFixed(2) : `> ${f1(s.t)}`)).join(' | ') +
      ' |',
    '| speed-up | ' + scaling.map((s) => s.speedup.toFixed(2)).join(' | ') + ' |',
    '| efficiency | ' + scaling.map((s) => (s.speedup / s.n).toFixed(3)).join(' | ') + ' |',
    '',
    '**Goals** (computed by the bench from the numbers above):',
    '',
    ...goalLines,
    '',
    ...(options.quick ? [] : notes),
    'Result line (resettle: the worst seed; null when a seed never settled):',
    '',
    '```',
    JSON.stringify(json),
    '```',
    '',
  );
  // Formatted as `npm run format` would, so the format check stays clean after a bench run.
  const section = await format(md.join('\n'), {
    ...((await resolveConfig('docs/benchmarks.md')) ?? {}),
    parser: 'markdown',
  });
  writeFileSync(`${options.out}/summary.md`, section);
  if (options.docs) updateBenchmarksDoc('docs/benchmarks.md', section);

  log(`balancer / best fixed, worst profile: ${worstVsFixed.toFixed(2)} (goal ≤ 1.10)`);
  if (heldOutWorst !== null) {
    log(`  held-out seeds, vs the seed-${SEED} pick: ${heldOutWorst.toFixed(2)} (reference only)`);
  }
  log(`sync SGD / balancer, worst profile: ${syncVsBalancer.toFixed(2)} (goal ≥ 2)`);
  log(
    `settled after the 10× drop (all links): ${settles.map(secs).join(', ')}; uplinks only: ${uplinkDrops.map((d) => secs(d.settle)).join(', ') || 'not run'} (goal ≤ 5 s); overflows ${[...drops, ...uplinkDrops].map((d) => d.overflows).join(', ')}`,
  );
  log(
    `scaling efficiency at ${scaling.at(-1)!.n} workers: ${(scaling.at(-1)!.speedup / scaling.at(-1)!.n).toFixed(3)} (goal ≥ 0.7 at 64)`,
  );
  log(
    `wrote ${options.out}/{times,scaling,drop}.csv and *.svg${options.docs ? ', docs/benchmarks.md' : ''}; ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  console.log(JSON.stringify(json));
}

/** Replaces (or appends) the `## Balancer` section, leaving every other section alone. */
function updateBenchmarksDoc(path: string, section: string): void {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const start = text.search(/^## Balancer\s*$/m);
  if (start < 0) {
    writeFileSync(path, (text.trimEnd() ? text.trimEnd() + '\n\n' : '') + section.trimEnd() + '\n');
    return;
  }
  const rest = text.slice(start + 1);
  const next = rest.search(/^## /m);
  const end = next < 0 ? text.length : start + 1 + next;
  writeFileSync(
    path,
    text.slice(0, start) + section.trimEnd() + '\n' + (next < 0 ? '' : '\n' + text.slice(end)),
  );
}

if (!isMainThread) {
  parentPort!.on('message', (job: Job) => {
    void runJob(job, () => performance.now()).then((r) => parentPort!.postMessage(r));
  });
}
