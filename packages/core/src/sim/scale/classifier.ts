/**
 * A classifier (the MNIST MLP) as a scaling workload: every worker draws its minibatches
 * uniformly with replacement from the whole training set under its own seed, so no worker's
 * data runs out however many workers share it; quality is held-out accuracy.
 */
import type { Dataset } from '../../data/dataset.ts';
import { evaluate } from '../../model/evaluate.ts';
import { initParameters } from '../../model/init.ts';
import { lossAndGradient, ModelScratch } from '../../model/math.ts';
import { parameterLayout } from '../../model/spec.ts';
import { Rng } from '../../util/rng.ts';
import type { GradientStream, ScaleWorkload } from './workload.ts';

export interface ClassifierScaleOptions {
  readonly train: Dataset;
  readonly test: Dataset;
  /** Default [64]. */
  readonly hidden?: readonly number[];
  /** Default 32. */
  readonly batchSize?: number;
  /** Default 0.9. */
  readonly targetAccuracy?: number;
  /** Held-out rows evaluated; default 1,000. */
  readonly testRows?: number;
  /** Parzen blocks; default 16,384 floats (the real default). */
  readonly blockSize?: number;
  readonly seed?: number;
}

export function classifierScale(options: ClassifierScaleOptions): ScaleWorkload {
  const { train, test } = options;
  const hidden = [...(options.hidden ?? [64])];
  const layout = parameterLayout(
    { kind: 'mlp', inputs: train.features, hidden, classes: train.classes },
    options.blockSize ?? 16_384,
  );
  const testRows = Math.min(options.testRows ?? 1_000, test.count);
  const features = train.features;
  return {
    name: `mlp-${[train.features, ...hidden, train.classes].join('-')}`,
    size: layout.size,
    blockSize: layout.blockSize,
    batchSize: options.batchSize ?? 32,
    initialParams: initParameters(layout, options.seed ?? 1),
    higherIsBetter: true,
    target: options.targetAccuracy ?? 0.9,
    metric: 'held-out accuracy',
    learningRates: [0.05, 0.1, 0.2, 0.4, 0.8, 1.6],
    quality: (params) => evaluate(layout, params, test, { limit: testRows }).accuracy!,
    stream(index, seed): GradientStream {
      const r = new Rng((seed * 1_000_033 + index * 6_151 + 5) >>> 0);
      let x = new Float32Array(0);
      let labels = new Uint32Array(0);
      let scratch: ModelScratch | null = null;
      return {
        gradient(params, out, batchSize) {
          if (labels.length !== batchSize) {
            x = new Float32Array(batchSize * features);
            labels = new Uint32Array(batchSize);
            scratch = new ModelScratch(layout, batchSize);
          }
          for (let s = 0; s < batchSize; s++) {
            const row = r.int(train.count);
            x.set(train.x.subarray(row * features, (row + 1) * features), s * features);
            labels[s] = train.labels![row]!;
          }
          lossAndGradient(layout, params, { size: batchSize, x, labels }, out, scratch!);
        },
      };
    },
  };
}
