/**
 * Held-out evaluation of a parameter vector, as the server does for checkpoints.
 */
import type { Dataset } from '../data/dataset.ts';
import {
  argmax,
  forwardLogits,
  logSumExp,
  ModelScratch,
  nearestCentres,
  validateBatch,
} from './math.ts';
import type { ParameterLayout } from './spec.ts';
import { CUSTOM_MODEL_NEEDS_WEBGPU, inputSize } from './spec.ts';
import { planOf } from './layers/graph.ts';

/** Rows per forward pass; bounds the scratch memory of an evaluation. */
export const EVALUATE_CHUNK_ROWS = 512;

export interface EvaluateOptions {
  /** Evaluate only the first `limit` rows (default: all of them). */
  readonly limit?: number;
}

export interface EvaluationResult {
  /** Mean loss over the evaluated rows, the training loss's definition (see `lossAndGradient`). */
  readonly loss: number;
  /** Classifiers: fraction of rows whose argmax logit is the label. */
  readonly accuracy?: number;
  /** K-Means: mean over rows of min_j ‖x − c_j‖² (no ½, unlike the loss). */
  readonly objective?: number;
  /** Rows evaluated. */
  readonly count: number;
}

/**
 * Mean loss and accuracy (classifiers) or K-Means objective of `params` on `dataset`.
 * Throws a RangeError when the dataset does not fit the model (feature count, missing or
 * out-of-range labels) or is empty.
 */
export function evaluate(
  layout: ParameterLayout,
  params: Float32Array,
  dataset: Dataset,
  options: EvaluateOptions = {},
): EvaluationResult {
  const spec = layout.spec;
  // The server evaluates custom models with their own kernel (apps/server jobs/custom-kernel.ts).
  if (spec.kind === 'custom') throw new RangeError(CUSTOM_MODEL_NEEDS_WEBGPU);
  const features = inputSize(spec);
  if (dataset.features !== features) {
    throw new RangeError(`dataset has ${dataset.features} features, the model takes ${features}`);
  }
  const limit = options.limit ?? dataset.count;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new RangeError(`limit must be a non-negative integer, got ${String(limit)}`);
  }
  const count = Math.min(dataset.count, limit);
  if (count < 1) throw new RangeError('nothing to evaluate: the dataset (or limit) is empty');
  if (dataset.x.length < count * features) {
    throw new RangeError(`dataset.x holds ${dataset.x.length} floats, fewer than count × features`);
  }

  const chunk = Math.min(count, EVALUATE_CHUNK_ROWS);
  if (spec.kind === 'kmeans') {
    const nearest = new Uint32Array(chunk);
    const distance = new Float64Array(chunk);
    let sum = 0;
    for (let start = 0; start < count; start += chunk) {
      const n = Math.min(chunk, count - start);
      const x = dataset.x.subarray(start * features, (start + n) * features);
      nearestCentres(layout, params, x, n, nearest, distance);
      for (let i = 0; i < n; i++) sum += distance[i]!;
    }
    const objective = sum / count;
    return { loss: 0.5 * objective, objective, count };
  }

  if (spec.kind === 'layers') return evaluateLayers(layout, params, dataset, count, chunk);
  const labels = dataset.labels;
  if (labels === null) throw new RangeError(`a ${spec.kind} model needs a labelled dataset`);
  if (labels.length < count) throw new RangeError('dataset has fewer labels than rows');
  const classes = spec.classes;
  const scratch = new ModelScratch(layout, chunk);
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < count; start += chunk) {
    const n = Math.min(chunk, count - start);
    const x = dataset.x.subarray(start * features, (start + n) * features);
    const logits = forwardLogits(layout, params, x, n, scratch);
    for (let i = 0; i < n; i++) {
      const label = labels[start + i]!;
      if (label >= classes) {
        throw new RangeError(
          `label ${label} of row ${start + i} is not below classes = ${classes}`,
        );
      }
      const o = i * classes;
      lossSum += logSumExp(logits, o, classes) - logits[o + label]!;
      if (argmax(logits, o, classes) === label) correct++;
    }
  }
  return { loss: lossSum / count, accuracy: correct / count, count };
}

/**
 * A `layers` model: mean loss and accuracy over the scored positions (every next token for a
 * next-token model, so its loss is the validation cross-entropy in nats per token).
 */
function evaluateLayers(
  layout: ParameterLayout,
  params: Float32Array,
  dataset: Dataset,
  count: number,
  chunk: number,
): EvaluationResult {
  const spec = layout.spec;
  if (spec.kind !== 'layers') throw new RangeError('evaluateLayers needs a layers model');
  const plan = planOf(spec);
  const features = plan.features;
  const labels = dataset.labels;
  if (plan.loss === 'classify') {
    if (labels === null) throw new RangeError('a classify layers model needs a labelled dataset');
    if (labels.length < count) throw new RangeError('dataset has fewer labels than rows');
  }
  const scratch = new ModelScratch(layout, chunk);
  const network = scratch.layers!;
  let lossSum = 0;
  let correct = 0;
  let scored = 0;
  for (let start = 0; start < count; start += chunk) {
    const n = Math.min(chunk, count - start);
    const batch = {
      size: n,
      x: dataset.x.subarray(start * features, (start + n) * features),
      labels: labels === null ? null : labels.subarray(start, start + n),
    };
    validateBatch(layout, batch);
    const s = network.evaluate(params, batch.x, batch.labels, n);
    lossSum += s.lossSum;
    correct += s.correct;
    scored += s.scored;
  }
  return { loss: lossSum / scored, accuracy: correct / scored, count };
}
