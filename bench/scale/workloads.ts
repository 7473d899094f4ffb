/**
 * The three workloads of bench:scale and their fixed choices (docs/benchmarks.md, section
 * Scaling, explains them): streamed K-Means 100 × 16, the noisy quadratic (100 dims, hᵢ = 1/i,
 * target 0.2% of the initial loss) and the MNIST MLP 784-32-10 to 90% held-out accuracy.
 */
import {
  classifierScale,
  loadMnist,
  noisyQuadratic,
  streamedKMeans,
  type NoisyQuadratic,
  type ScaleWorkload,
} from '@meshgrad/core';

export type WorkloadName = 'kmeans' | 'quadratic' | 'mlp';

export const SAMPLES_PER_SEC = 400;

export interface BenchWorkload {
  readonly key: WorkloadName;
  readonly workload: ScaleWorkload;
  /** Worker counts of the scaling view. */
  readonly counts: readonly number[];
  /** Simulated-time cap of the one-worker run, seconds. */
  readonly oneWorkerCapS: number;
  /** The closed form, for the quadratic. */
  readonly closedForm?: NoisyQuadratic;
}

export async function benchWorkloads(
  names: readonly WorkloadName[],
  quick: boolean,
): Promise<BenchWorkload[]> {
  const small = quick ? [1, 4, 16, 64] : [1, 2, 4, 8, 16, 32, 64];
  const large = quick ? [256] : [256, 1024];
  const out: BenchWorkload[] = [];
  for (const key of names) {
    if (key === 'kmeans') {
      out.push({
        key,
        workload: streamedKMeans(),
        counts: [...small, ...large],
        oneWorkerCapS: 90,
      });
    } else if (key === 'quadratic') {
      const q = noisyQuadratic({ dims: 100, power: 1, targetFraction: 0.002 });
      out.push({
        key,
        workload: q,
        counts: [...small, ...large],
        oneWorkerCapS: 400,
        closedForm: q,
      });
    } else {
      const { train, test } = await loadMnist();
      out.push({
        key,
        workload: classifierScale({ train, test, hidden: [32], testRows: 500 }),
        counts: small,
        oneWorkerCapS: 120,
      });
    }
  }
  return out;
}
