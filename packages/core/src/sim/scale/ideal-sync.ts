/**
 * The ideal synchronous data-parallel bound: N workers each compute a gradient of their own
 * batch B at the same parameters every B / speed seconds, communication costs nothing, and the
 * mean of the N gradients is applied, w ← w − η·mean(g). N streams of B samples drawn
 * i.i.d. are one stream of N·B samples, so the bound is simulated as one stream with batch N·B.
 */
import { CrossingTracker } from './crossing.ts';
import type { ScaleRunResult } from './asgd-engine.ts';
import type { ScaleWorkload } from './workload.ts';

export interface IdealSyncConfig {
  readonly workload: ScaleWorkload;
  readonly workers: number;
  readonly learningRate: number;
  /** Default 400. */
  readonly samplesPerSec?: number;
  readonly evalIntervalS: number;
  readonly maxTimeS: number;
  readonly stopAtTarget?: boolean;
  /** Stop after this many rounds (fixed-work runs). */
  readonly rounds?: number;
  readonly seed: number;
}

export function runIdealSync(config: IdealSyncConfig): ScaleRunResult {
  const { workload } = config;
  const stepS = workload.batchSize / (config.samplesPerSec ?? 400);
  const stream = workload.stream(0, config.seed);
  const w = Float32Array.from(workload.initialParams);
  const g = new Float32Array(workload.size);
  const tracker = new CrossingTracker(
    workload.quality(w),
    workload.target,
    workload.higherIsBetter,
  );
  const eta = config.learningRate;
  const stop = config.stopAtTarget ?? true;
  let nextEval = config.evalIntervalS;
  let t = 0;
  let rounds = 0;
  const maxRounds = config.rounds ?? Infinity;
  while (t + stepS <= config.maxTimeS + 1e-12 && rounds < maxRounds) {
    stream.gradient(w, g, workload.batchSize * config.workers);
    for (let i = 0; i < w.length; i++) w[i] = w[i]! - eta * g[i]!;
    t += stepS;
    rounds++;
    // The parameters change only at round ends, so every evaluation due before the next end
    // sees these.
    let value: number | null = null;
    while (nextEval <= t + 1e-12 && nextEval <= config.maxTimeS + 1e-12) {
      value ??= workload.quality(w);
      tracker.record(nextEval, value);
      nextEval += config.evalIntervalS;
    }
    if (stop && tracker.crossingS !== null) break;
    if (!w.every(Number.isFinite)) break;
  }
  return {
    timeToTargetS: tracker.crossingS,
    finalQuality: workload.quality(w),
    finalParams: w,
    curve: tracker.curve,
    endS: t,
    steps: rounds,
    pushes: 0,
    pushesSkipped: 0,
    meanMerged: 0,
  };
}
