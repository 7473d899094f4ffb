/**
 * Learning-rate sweeps and seed statistics: for one method at one worker count, run every
 * candidate η on the sweep seeds, keep the η with the lowest median time to target, then run
 * the remaining seeds at that η.
 */
import type { ScaleRunResult } from '@meshgrad/core';

export interface SweepPoint {
  readonly eta: number;
  /** Times to target per seed (null: not reached within the cap). */
  readonly times: readonly (number | null)[];
  readonly results: readonly ScaleRunResult[];
}

export interface SweepResult {
  readonly best: SweepPoint;
  readonly tried: readonly SweepPoint[];
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Median with a missed target counted as +Infinity. */
export const medianTime = (times: readonly (number | null)[]): number =>
  median(times.map((t) => t ?? Infinity));

/** Mean and sample standard deviation of the reached times; null when any seed missed. */
export function spread(times: readonly (number | null)[]): { mean: number; sd: number } | null {
  if (times.some((t) => t === null)) return null;
  const xs = times as number[];
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd =
    xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
}

export async function sweep(
  etas: readonly number[],
  sweepSeeds: readonly number[],
  allSeeds: readonly number[],
  run: (eta: number, seed: number, capS: number) => Promise<ScaleRunResult>,
  capS: number,
): Promise<SweepResult> {
  const tried: SweepPoint[] = [];
  // A rate that has not reached the target by twice the best median so far cannot win.
  let cap = capS;
  for (const eta of etas) {
    const results: ScaleRunResult[] = [];
    for (const seed of sweepSeeds) results.push(await run(eta, seed, cap));
    const m = medianTime(results.map((r) => r.timeToTargetS));
    if (Number.isFinite(m)) cap = Math.min(cap, 2 * m);
    tried.push({ eta, times: results.map((r) => r.timeToTargetS), results });
  }
  let best = tried[0]!;
  for (const p of tried) if (medianTime(p.times) < medianTime(best.times)) best = p;
  const results = [...best.results];
  for (const seed of allSeeds)
    if (!sweepSeeds.includes(seed)) results.push(await run(best.eta, seed, capS));
  best = { eta: best.eta, results, times: results.map((r) => r.timeToTargetS) };
  return { best, tried };
}

/** Up to `width` grid values starting one below the grid index of `around`. */
export function etaWindow(grid: readonly number[], around: number, width: number): number[] {
  let i = grid.findIndex((e) => e >= around);
  if (i < 0) i = grid.length - 1;
  const from = Math.max(0, Math.min(i - 1, grid.length - width));
  return grid.slice(from, from + width);
}
