/**
 * The benchmark model in TensorFlow.js: the same dense ReLU MLP, softmax cross-entropy and plain
 * SGD as meshgrad's, started from the very same parameter vector.
 */
import type * as Tf from '@tensorflow/tfjs-core';
import type { Batch, ParameterLayout } from '@meshgrad/core';
import { denseWidths, tensorByName } from '@meshgrad/core';
import type { TrainingSession } from './timing.ts';

export type TfModule = typeof Tf;

/**
 * One TF.js training session on the currently active backend. Each step uploads its minibatch
 * from the same Float32Array meshgrad gets, as meshgrad's step does, and does forward, backward
 * and update through `optimizer.minimize` (which is `variableGrads` plus `applyGradients`).
 */
export function tfjsSession(
  tf: TfModule,
  layout: ParameterLayout,
  params: Float32Array,
  batches: readonly Batch[],
  learningRate: number,
): TrainingSession {
  const spec = layout.spec;
  if (spec.kind === 'kmeans') throw new Error('the TF.js benchmark model is a dense classifier');
  const widths = denseWidths(spec);
  const classes = spec.classes;
  const variables: Tf.Variable[] = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    for (const part of ['weight', 'bias'] as const) {
      const t = tensorByName(layout, `dense${l}.${part}`);
      const values = params.slice(t.offset, t.offset + t.size);
      variables.push(
        tf.variable(tf.tensor(values, [...t.shape], 'float32'), true, `dense${l}.${part}`),
      );
    }
  }
  // tf.oneHot wants int32 indices; converting the labels once is data preparation, not training.
  const labels = batches.map((b) => {
    if (!b.labels) throw new Error('the benchmark needs labelled batches');
    return Int32Array.from(b.labels);
  });
  const optimizer = tf.train.sgd(learningRate);
  let lastLoss: Tf.Scalar | null = null;

  const forwardLoss = (x: Tf.Tensor2D, y: Tf.Tensor2D): Tf.Scalar => {
    let h: Tf.Tensor2D = x;
    for (let l = 0; l * 2 < variables.length; l++) {
      const w = variables[2 * l] as Tf.Variable;
      const b = variables[2 * l + 1] as Tf.Variable;
      const z = tf.add(tf.matMul(h, w as Tf.Tensor2D), b) as Tf.Tensor2D;
      h = 2 * l + 2 < variables.length ? tf.relu(z) : z;
    }
    // Mean over the batch, like meshgrad's loss (the default reduction divides by the count).
    return tf.losses.softmaxCrossEntropy(y, h);
  };

  return {
    step(index: number): void {
      const batch = batches[index];
      const batchLabels = labels[index];
      if (!batch || !batchLabels) throw new RangeError(`no minibatch ${index}`);
      const loss = tf.tidy(() => {
        const x = tf.tensor2d(batch.x, [batch.size, widths[0] as number], 'float32');
        const y = tf.oneHot(tf.tensor1d(batchLabels, 'int32'), classes) as Tf.Tensor2D;
        const value = optimizer.minimize(() => forwardLoss(x, y), true, variables);
        if (!value) throw new Error('optimizer.minimize returned no loss');
        return value;
      });
      lastLoss?.dispose();
      lastLoss = loss;
    },
    async sync(): Promise<number> {
      if (!lastLoss) return NaN;
      // Reading the loss back waits for every step queued before it.
      const values = await lastLoss.data();
      return values[0] ?? NaN;
    },
    dispose(): void {
      lastLoss?.dispose();
      lastLoss = null;
      optimizer.dispose();
      for (const v of variables) v.dispose();
    },
  };
}
