/**
 * The benchmark model in TensorFlow.js: the same dense ReLU MLP, softmax cross-entropy and plain
 * SGD as meshgrad's, started from the very same parameter vector.
 */
import type * as Tf from '@tensorflow/tfjs-core';
import type { Batch, ParameterLayout } from '@meshgrad/core';
import { denseWidths, tensorByName } from '@meshgrad/core';
import type { TrainingSession } from './timing.ts';
import { tfjsSgdSession, type TfModule } from './tfjs-sgd.ts';

/**
 * One TF.js training session of the dense model on the currently active backend (the loop is
 * tfjs-sgd.ts's).
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
  return tfjsSgdSession(
    tf,
    {
      variables,
      classes: spec.classes,
      input: (batch) => tf.tensor2d(batch.x, [batch.size, widths[0] as number], 'float32'),
      logits: (x) => {
        let h = x as Tf.Tensor2D;
        for (let l = 0; l * 2 < variables.length; l++) {
          const w = variables[2 * l] as Tf.Variable;
          const b = variables[2 * l + 1] as Tf.Variable;
          const z = tf.add(tf.matMul(h, w as Tf.Tensor2D), b) as Tf.Tensor2D;
          h = 2 * l + 2 < variables.length ? tf.relu(z) : z;
        }
        return h;
      },
    },
    batches,
    learningRate,
  );
}
