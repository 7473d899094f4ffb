/**
 * One bench job = one simulation, described by plain data so it can be sent to a worker thread,
 * and its summary. Every arm of a comparison shares the workload, profile, speeds and seeds;
 * only the communication policy (or training mode) differs.
 */
import {
  SCALING_MERGE_RULE,
  buildProfile,
  classifierWorkload,
  heterogeneousSpeeds,
  kmeansWorkload,
  loadMnist,
  PARZEN_MERGE_RULE,
  simulate,
  type CommunicationPolicy,
  type LinkProfileName,
  type MergeRule,
  type SimulationConfig,
  type SimulationTotals,
  type TickRecord,
  type Workload,
} from '@meshgrad/core';

export type WorkloadName = 'mnist' | 'kmeans';

/**
 * The workers' merge rules the bench can run (`--merge=NAME`): `first`, a job's default (DESIGN
 * §3.1); `scaling`, the scaling benchmark's rule; `gossip`, that rule without outer momentum.
 */
export const MERGE_RULES: Record<string, MergeRule> = {
  scaling: SCALING_MERGE_RULE,
  first: PARZEN_MERGE_RULE,
  gossip: { ...SCALING_MERGE_RULE, momentum: 0 },
};
/** The environment variable `--merge` sets for every job (worker threads inherit it). */
export const MERGE_ENV = 'MESHGRAD_BENCH_BALANCE_MERGE';

export type Arm =
  | { readonly kind: 'balancer'; readonly encodings?: readonly ('f32' | 'f16' | 'int8')[] }
  | { readonly kind: 'fixed'; readonly batches: number; readonly blocks: number }
  | { readonly kind: 'none' }
  | { readonly kind: 'sync' };

export interface Job {
  readonly id: string;
  readonly workload: WorkloadName;
  readonly profile: LinkProfileName;
  readonly arm: Arm;
  readonly workers: number;
  /** 'heterogeneous': 8× spread around the median speed; 'homogeneous': all at the median. */
  readonly speeds: 'heterogeneous' | 'homogeneous';
  readonly maxTimeS: number;
  readonly seed: number;
  /**
   * Every worker's uplink (and downlink unless `uplinkOnly`) falls by `factor` at `atS` and
   * stays there.
   */
  readonly drop?: { readonly atS: number; readonly factor: number; readonly uplinkOnly?: boolean };
  /** Run to maxTimeS even after the target (for the drop experiment). */
  readonly runToEnd?: boolean;
  /** Keep per-tick worker records in the result. */
  readonly recordTicks?: boolean;
}

export interface JobResult {
  readonly id: string;
  readonly timeToTargetS: number | null;
  readonly endS: number;
  readonly totals: SimulationTotals;
  readonly wallS: number;
  readonly ticks: readonly TickRecord[];
  readonly finalProgress: number | null;
}

/**
 * The benchmark's fixed choices (docs/benchmarks.md explains them):
 * - MNIST: the 784-64-10 MLP (the 128-wide one behaves the same and costs twice the wall time),
 *   batch 32, η = 0.1, target 90% test accuracy on the 2,000 held-out digits.
 * - K-Means: 64 clusters in 32 dimensions (the paper's workload), batch 32, η = 1 (the best
 *   constant rate for one worker), target within 2% of the objective at the generating centres.
 * - Speeds: median 400 samples/s, fastest / slowest = 8 for heterogeneous runs.
 */
export const WORKLOADS: Record<
  WorkloadName,
  { readonly evalIntervalS: number; readonly blockCount: number }
> = {
  mnist: { evalIntervalS: 0.5, blockCount: 4 },
  kmeans: { evalIntervalS: 0.25, blockCount: 8 },
};
export const MEDIAN_SPEED = 400;
export const SPEED_RATIO = 8;
export const BATCH_SIZE = 32;

const workloadCache = new Map<WorkloadName, Promise<Workload>>();

export function workloadFor(name: WorkloadName): Promise<Workload> {
  let w = workloadCache.get(name);
  if (!w) {
    w =
      name === 'mnist'
        ? loadMnist().then(({ train, test }) =>
            classifierWorkload({
              train,
              test,
              hidden: [64],
              batchSize: BATCH_SIZE,
              learningRate: 0.1,
            }),
          )
        : Promise.resolve(
            kmeansWorkload({
              clusters: 64,
              dims: 32,
              minSeparation: 24,
              batchSize: BATCH_SIZE,
              learningRate: 1,
              blockSize: 256,
              seed: 1,
            }),
          );
    workloadCache.set(name, w);
  }
  return w;
}

export function policyOf(arm: Arm): CommunicationPolicy | undefined {
  switch (arm.kind) {
    case 'balancer':
      return { kind: 'balancer', options: arm.encodings ? { encodings: arm.encodings } : {} };
    case 'fixed':
      return {
        kind: 'fixed',
        settings: {
          communicationPeriod: arm.batches * BATCH_SIZE,
          blocksPerMessage: arm.blocks,
          encoding: 'f32',
        },
      };
    case 'none':
      return { kind: 'none' };
    case 'sync':
      return undefined;
  }
}

/** A short label for tables: `balancer`, `b=128 m=1`, `sync SGD`, … */
export function armLabel(arm: Arm): string {
  switch (arm.kind) {
    case 'balancer':
      return arm.encodings ? `balancer (${arm.encodings.join('/')} only)` : 'balancer';
    case 'fixed':
      return `fixed b=${arm.batches * BATCH_SIZE} m=${arm.blocks}`;
    case 'none':
      return 'no communication';
    case 'sync':
      return 'sync SGD';
  }
}

export async function runJob(job: Job, now: () => number): Promise<JobResult> {
  const workload = await workloadFor(job.workload);
  const speeds =
    job.speeds === 'heterogeneous'
      ? heterogeneousSpeeds(job.workers, MEDIAN_SPEED, SPEED_RATIO, job.seed)
      : new Array<number>(job.workers).fill(MEDIAN_SPEED);
  const profile = buildProfile(job.profile, { speeds, seed: job.seed });
  const drop = job.drop;
  const workers = drop
    ? profile.workers.map((w) => ({
        ...w,
        uplink: w.uplink.withFactorFrom(drop.atS, drop.factor),
        downlink: drop.uplinkOnly ? w.downlink : w.downlink.withFactorFrom(drop.atS, drop.factor),
      }))
    : profile.workers;
  const policy = policyOf(job.arm);
  const config: SimulationConfig = {
    workload,
    workers,
    path: profile.path,
    mode: job.arm.kind === 'sync' ? 'sync' : 'asgd',
    ...(policy ? { policy } : {}),
    // The merge a job gets by default (job spec training.merge, DESIGN §3.1), unless --merge.
    merge: MERGE_RULES[process.env[MERGE_ENV] ?? 'first'] ?? PARZEN_MERGE_RULE,
    maxTimeS: job.maxTimeS,
    evalIntervalS: WORKLOADS[job.workload].evalIntervalS,
    stopAtTarget: !job.runToEnd,
    seed: job.seed,
    recordTicks: job.recordTicks ?? false,
  };
  const started = now();
  const result = await simulate(config);
  return {
    id: job.id,
    timeToTargetS: result.timeToTargetS,
    endS: result.endS,
    totals: result.totals,
    wallS: (now() - started) / 1000,
    ticks: result.ticks,
    finalProgress: result.evaluations.at(-1)?.value ?? null,
  };
}
