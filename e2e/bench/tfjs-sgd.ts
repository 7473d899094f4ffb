/**
 * The training loop the TF.js benchmark models share: plain SGD through `optimizer.minimize`
 * (which is `variableGrads` plus `applyGradients`) on softmax cross-entropy, mean over the batch
 * like meshgrad's loss (the default reduction divides by the count).
 */
import type * as Tf from '@tensorflow/tfjs-core';
import type { Batch } from '@meshgrad/core';
import type { TrainingSession } from './timing.ts';

export type TfModule = typeof Tf;

/** A TF.js network as the loop drives it. */
export interface TfNetwork {
  /** Every trained parameter; the session disposes of them. */
  readonly variables: readonly Tf.Variable[];
  readonly classes: number;
  /** A minibatch's inputs as the network reads them, uploaded from meshgrad's Float32Array. */
  input(batch: Batch): Tf.Tensor;
  /** The logits `[batch, classes]` of `input`'s tensor. */
  logits(x: Tf.Tensor): Tf.Tensor2D;
}

/**
 * One TF.js training session of `network` on the currently active backend. Each step uploads its
 * minibatch from the same Float32Array meshgrad gets, as meshgrad's step does, and does forward,
 * backward and update in one `optimizer.minimize`.
 */
export function tfjsSgdSession(
  tf: TfModule,
  network: TfNetwork,
  batches: readonly Batch[],
  learningRate: number,
): TrainingSession {
  const { variables } = network;
  // tf.oneHot wants int32 indices; converting the labels once is data preparation, not training.
  const labels = batches.map((b) => {
    if (!b.labels) throw new Error('the benchmark needs labelled batches');
    return Int32Array.from(b.labels);
  });
  const optimizer = tf.train.sgd(learningRate);
  let lastLoss: Tf.Scalar | null = null;

  return {
    step(index: number): void {
      const batch = batches[index];
      const batchLabels = labels[index];
      if (!batch || !batchLabels) throw new RangeError(`no minibatch ${index}`);
      const loss = tf.tidy(() => {
        const x = network.input(batch);
        const y = tf.oneHot(tf.tensor1d(batchLabels, 'int32'), network.classes) as Tf.Tensor2D;
        const value = optimizer.minimize(
          () => tf.losses.softmaxCrossEntropy(y, network.logits(x)),
          true,
          [...variables],
        );
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
