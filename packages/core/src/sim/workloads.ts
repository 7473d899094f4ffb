/**
 * The two benchmark workloads: a classifier on a labelled dataset (the MLP on built-in MNIST)
 * and K-Means on Gaussian clusters (the paper's workload), each with its held-out target.
 */
import { gaussianClusters, kmeansObjective } from '../data/clusters.ts';
import type { Dataset } from '../data/dataset.ts';
import { selectRows } from '../data/dataset.ts';
import { shardDataset } from '../data/shard.ts';
import { evaluate } from '../model/evaluate.ts';
import { initParameters } from '../model/init.ts';
import { DEFAULT_BLOCK_SIZE, parameterLayout } from '../model/spec.ts';
import type { Workload } from './simulation.ts';

/**
 * Test rows a classifier is first checked on; the whole test set is evaluated only once these
 * are within QUICK_MARGIN of the target, which keeps frequent evaluation cheap.
 */
export const QUICK_EVAL_ROWS = 500;
export const QUICK_MARGIN = 0.03;

export interface ClassifierWorkloadOptions {
  readonly train: Dataset;
  readonly test: Dataset;
  /** Hidden layer widths; default [128] (the 784-128-10 MLP on MNIST). */
  readonly hidden?: readonly number[];
  /** Default 32. */
  readonly batchSize?: number;
  /** Default 0.1. */
  readonly learningRate?: number;
  /** Test accuracy that counts as done; default 0.9. */
  readonly targetAccuracy?: number;
  /** Default DEFAULT_BLOCK_SIZE. */
  readonly blockSize?: number;
  /** Seeds the initial parameters and the shards; default 1. */
  readonly seed?: number;
  /** Default `mlp`. */
  readonly name?: string;
}

export function classifierWorkload(options: ClassifierWorkloadOptions): Workload {
  const { train, test } = options;
  const seed = options.seed ?? 1;
  const target = options.targetAccuracy ?? 0.9;
  const layout = parameterLayout(
    {
      kind: 'mlp',
      inputs: train.features,
      hidden: [...(options.hidden ?? [128])],
      classes: train.classes,
    },
    options.blockSize ?? DEFAULT_BLOCK_SIZE,
  );
  const quickRows = Math.min(QUICK_EVAL_ROWS, test.count);
  return {
    name: options.name ?? 'mlp',
    layout,
    initialParams: initParameters(layout, seed),
    batchSize: options.batchSize ?? 32,
    learningRate: options.learningRate ?? 0.1,
    metric: 'test accuracy',
    shard: shardCache(train, seed),
    progress(params) {
      const quick = evaluate(layout, params, test, { limit: quickRows }).accuracy!;
      if (quick < target - QUICK_MARGIN) return { value: quick, reached: false };
      const full = evaluate(layout, params, test).accuracy!;
      return { value: full, reached: full >= target };
    },
  };
}

export interface KMeansWorkloadOptions {
  readonly clusters: number;
  readonly dims: number;
  /** Training samples; default 20,000. */
  readonly count?: number;
  /** Held-out samples the objective is measured on; default 2,000. */
  readonly testCount?: number;
  /** Minimum distance between generating centres; default that of `gaussianClusters`. */
  readonly minSeparation?: number;
  /** Default 16. */
  readonly batchSize?: number;
  /** Default 0.5. */
  readonly learningRate?: number;
  /** Done within this fraction of the objective at the generating centres; default 0.02. */
  readonly tolerance?: number;
  /** Default 256 floats. */
  readonly blockSize?: number;
  /** Seeds data, initialisation (k-means++ on the training data) and shards; default 1. */
  readonly seed?: number;
}

/** Progress is the held-out objective divided by the generating centres' objective. */
export function kmeansWorkload(options: KMeansWorkloadOptions): Workload {
  const { clusters, dims } = options;
  const seed = options.seed ?? 1;
  const count = options.count ?? 20_000;
  const testCount = options.testCount ?? 2_000;
  const tolerance = options.tolerance ?? 0.02;
  const generated = gaussianClusters({
    clusters,
    dims,
    count: count + testCount,
    seed,
    ...(options.minSeparation !== undefined ? { minSeparation: options.minSeparation } : {}),
  });
  const all = generated.dataset;
  const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
  const train = selectRows(all, rows(0, count), `${all.name}/train`);
  const test = selectRows(all, rows(count, testCount), `${all.name}/test`);
  const reference = kmeansObjective(generated.centres, clusters, dims, test);
  const layout = parameterLayout({ kind: 'kmeans', dims, clusters }, options.blockSize ?? 256);
  return {
    name: `kmeans-${clusters}x${dims}`,
    layout,
    initialParams: initParameters(layout, seed, train),
    batchSize: options.batchSize ?? 16,
    learningRate: options.learningRate ?? 0.5,
    metric: 'objective / objective at generating centres',
    shard: shardCache(train, seed),
    progress(params) {
      const ratio = evaluate(layout, params, test).objective! / reference;
      return { value: ratio, reached: ratio <= 1 + tolerance };
    },
  };
}

function shardCache(train: Dataset, seed: number): (index: number, count: number) => Dataset {
  const cache = new Map<string, Dataset>();
  return (index, count) => {
    const key = `${index}/${count}`;
    let shard = cache.get(key);
    if (!shard)
      cache.set(key, (shard = count === 1 ? train : shardDataset(train, index, count, seed)));
    return shard;
  };
}
