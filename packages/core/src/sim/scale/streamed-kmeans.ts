/**
 * Streamed K-Means (the workload of Keuper & Pfreundt, arXiv:1510.01155): a Gaussian mixture
 * whose samples are drawn on the fly from a per-worker, per-seed generator, so no worker ever
 * revisits a sample. The centres and the held-out set come from the workload's own seed.
 */
import { lossAndGradient, ModelScratch, nearestCentres } from '../../model/math.ts';
import { parameterLayout } from '../../model/spec.ts';
import { Rng } from '../../util/rng.ts';
import type { GradientStream, ScaleWorkload } from './workload.ts';

export interface StreamedKMeansOptions {
  /** Default 100. */
  readonly clusters?: number;
  /** Default 16. */
  readonly dims?: number;
  /** Centres are uniform in [−spread, spread]^dims; default 10. */
  readonly spread?: number;
  /** Standard deviation of each cluster; default 1. */
  readonly sigma?: number;
  /** Default 16. */
  readonly batchSize?: number;
  /** Done when the held-out objective is within this fraction of the centres'; default 0.02. */
  readonly tolerance?: number;
  /**
   * Each initial centre is its generating centre plus a normal offset of this standard
   * deviation per coordinate; default 1 (= sigma).
   */
  readonly initOffset?: number;
  /** Held-out samples; default 1,000. */
  readonly testCount?: number;
  /** Seeds the centres, the held-out set and the initialisation; default 1. */
  readonly seed?: number;
}

export function streamedKMeans(options: StreamedKMeansOptions = {}): ScaleWorkload {
  const clusters = options.clusters ?? 100;
  const dims = options.dims ?? 16;
  const spread = options.spread ?? 10;
  const sigma = options.sigma ?? 1;
  const seed = options.seed ?? 1;
  const tolerance = options.tolerance ?? 0.02;
  const rng = new Rng(seed * 104_729 + 17);
  const centres = new Float32Array(clusters * dims);
  for (let i = 0; i < centres.length; i++) centres[i] = spread * (2 * rng.next() - 1);
  const draw = (r: Rng, x: Float32Array, rows: number) => {
    for (let s = 0; s < rows; s++) {
      const c0 = r.int(clusters) * dims;
      for (let t = 0; t < dims; t++) x[s * dims + t] = centres[c0 + t]! + sigma * r.normal();
    }
  };
  const testCount = options.testCount ?? 1_000;
  const testX = new Float32Array(testCount * dims);
  draw(new Rng(seed * 7 + 3), testX, testCount);
  const layout = parameterLayout({ kind: 'kmeans', dims, clusters }, 256);
  // A warm start inside the right basin: with clusters this far apart, k-means++ leaves a few
  // clusters with two centres and some with none, a local optimum no learning rate or batch
  // size escapes, and the time to target would measure the seeding's luck, not the noise.
  const offset = options.initOffset ?? sigma;
  const initRng = new Rng(seed * 13 + 5);
  const initialParams = centres.map((c) => c + offset * initRng.normal());
  const nearest = new Uint32Array(testCount);
  const distance = new Float64Array(testCount);
  const objective = (params: Float32Array) => {
    nearestCentres(layout, params, testX, testCount, nearest, distance);
    let sum = 0;
    for (let i = 0; i < testCount; i++) sum += distance[i]!;
    return sum;
  };
  const reference = objective(centres);
  return {
    name: `kmeans-${clusters}x${dims}`,
    size: layout.size,
    blockSize: layout.blockSize,
    batchSize: options.batchSize ?? 16,
    initialParams,
    higherIsBetter: false,
    target: 1 + tolerance,
    metric: 'held-out objective / objective at the generating centres',
    learningRates: [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128],
    quality: (params) => objective(params) / reference,
    stream(index, streamSeed): GradientStream {
      const r = new Rng((streamSeed * 1_000_003 + index * 7_919 + 1) >>> 0);
      let x = new Float32Array(0);
      let scratch: ModelScratch | null = null;
      return {
        gradient(params, out, batchSize) {
          if (x.length !== batchSize * dims) {
            x = new Float32Array(batchSize * dims);
            scratch = new ModelScratch(layout, batchSize);
          }
          draw(r, x, batchSize);
          lossAndGradient(layout, params, { size: batchSize, x, labels: null }, out, scratch!);
        },
      };
    },
  };
}
