/**
 * What the scaling simulator trains: a parameter vector, a stream of minibatch gradients per
 * worker (generated, so a shard never runs dry), and a held-out measure with a target.
 */

/** Produces minibatch gradients for one worker; each worker and seed has its own stream. */
export interface GradientStream {
  /** Writes the mean gradient of `batchSize` fresh samples at `params` into `out`. */
  gradient(params: Float32Array, out: Float32Array, batchSize: number): void;
}

export interface ScaleWorkload {
  readonly name: string;
  /** Parameter count. */
  readonly size: number;
  /** The Parzen test runs per block of this many parameters (as the real worker's blocks). */
  readonly blockSize: number;
  /** Per-worker minibatch. */
  readonly batchSize: number;
  /** Every worker starts here. */
  readonly initialParams: Float32Array;
  /** Gradient stream of worker `index` under `seed`. */
  stream(index: number, seed: number): GradientStream;
  /** Held-out quality of `params` (see `higherIsBetter`). */
  quality(params: Float32Array): number;
  readonly higherIsBetter: boolean;
  /** Quality that counts as done. */
  readonly target: number;
  /** What `quality` is, for reports. */
  readonly metric: string;
  /** Learning rates the bench sweeps, ascending. */
  readonly learningRates: readonly number[];
}

/** True when `value` meets the workload's target. */
export function meetsTarget(workload: ScaleWorkload, value: number): boolean {
  return workload.higherIsBetter ? value >= workload.target : value <= workload.target;
}
