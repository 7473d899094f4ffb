/**
 * Float32 model math for the built-in models (DESIGN §6): loss, gradient and forward passes for
 * softmax regression, the MLP and K-Means, over the flat parameter layout of `spec.ts`.
 *
 * Everything here is a pure function of (layout, parameters, batch) plus optional preallocated
 * scratch, so the CPU backend, the server's evaluation and the simulator share one definition,
 * and the WebGPU kernels are tested against it.
 *
 * Numerical conventions (the WebGPU backend follows them up to float32 rounding):
 * - Parameters, activations and gradients are float32. Per-sample reductions (log-sum-exp,
 *   squared distances) and the batch loss are accumulated in float64, because JS numbers are
 *   float64 anyway and it costs nothing.
 * - Dense: z = a·W + b with W row-major `[in, out]`; ReLU between dense layers; ReLU'(0) = 0.
 * - Classifier loss: mean over the batch of log Σ_j exp(z_j) − z_label, computed as
 *   m + log Σ_j exp(z_j − m) with m = max_j z_j so large logits cannot overflow.
 * - K-Means loss: mean over the batch of ½·min_j ‖x − c_j‖²; the nearest centre is the lowest
 *   index among equal distances; ∂/∂c_j = (1/B)·Σ_{i: nearest(i) = j} (c_j − x_i).
 *
 * Speed: the dense loops run i-k-j over contiguous rows and skip zero inputs, in the forward
 * pass and in the weight gradient. Skipping is exact (a zero input contributes nothing) and pays
 * off on sparse data such as MNIST (about 80% zero pixels) and after ReLU (about half zero).
 *
 * Hot loops index typed arrays with `!`: every index is in range by construction, and the
 * checks at the public entry points guarantee the array lengths.
 */
import type { Batch } from '../data/dataset.ts';
import { planOf } from './layers/graph.ts';
import { LayersNetwork } from './layers/network.ts';
import type { ParameterLayout } from './spec.ts';
import {
  CUSTOM_MODEL_NEEDS_WEBGPU,
  denseWidths,
  inputSize,
  modelClasses,
  tensorOffsets,
} from './spec.ts';

/**
 * Preallocated working memory for up to `capacity` samples of one model shape, so a training
 * loop allocates nothing per step. Not safe to share between concurrent calls.
 */
export class ModelScratch {
  /** Largest batch this scratch can hold. */
  readonly capacity: number;
  /** Dense widths (input first) or `[dims, clusters]` for K-Means; identifies the model shape. */
  readonly shape: readonly number[];
  /** Per dense layer: its outputs, `capacity × width` (post-ReLU for hidden layers, logits last). */
  readonly activations: Float32Array[] = [];
  /** Per dense layer: ∂loss/∂z for its outputs, same shape as `activations`. */
  readonly deltas: Float32Array[] = [];
  /** K-Means: nearest centre of each sample. */
  readonly nearest: Uint32Array;
  /** K-Means: squared distance to the nearest centre of each sample. */
  readonly nearestDistance: Float64Array;
  /** `layers` models: the network with its workspaces; null for the other kinds. */
  readonly layers: LayersNetwork | null = null;
  /** `layers` models: the spec as JSON, which identifies the model shape. */
  private readonly layersKey: string = '';

  constructor(layout: ParameterLayout, capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`scratch capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    const spec = layout.spec;
    if (spec.kind === 'custom') throw new RangeError(CUSTOM_MODEL_NEEDS_WEBGPU);
    if (spec.kind === 'layers') {
      this.shape = [];
      this.layers = new LayersNetwork(planOf(spec), tensorOffsets(layout), capacity);
      this.layersKey = JSON.stringify(spec);
      this.nearest = new Uint32Array(0);
      this.nearestDistance = new Float64Array(0);
    } else if (spec.kind === 'kmeans') {
      this.shape = [spec.dims, spec.clusters];
      this.nearest = new Uint32Array(capacity);
      this.nearestDistance = new Float64Array(capacity);
    } else {
      const widths = denseWidths(spec);
      this.shape = widths;
      for (let l = 1; l < widths.length; l++) {
        this.activations.push(new Float32Array(capacity * widths[l]!));
        this.deltas.push(new Float32Array(capacity * widths[l]!));
      }
      this.nearest = new Uint32Array(0);
      this.nearestDistance = new Float64Array(0);
    }
  }

  /** True when this scratch was made for a model of `layout`'s shape. */
  fits(layout: ParameterLayout): boolean {
    const spec = layout.spec;
    if (spec.kind === 'layers' || this.layers !== null) {
      return spec.kind === 'layers' && JSON.stringify(spec) === this.layersKey;
    }
    const shape = spec.kind === 'kmeans' ? [spec.dims, spec.clusters] : denseWidths(spec);
    return shape.length === this.shape.length && shape.every((w, i) => w === this.shape[i]);
  }
}

/**
 * Checks that `batch` has the shape `layout`'s model consumes, and throws a RangeError that says
 * what is wrong. Classifiers need labels below `classes`; K-Means ignores labels.
 */
export function validateBatch(layout: ParameterLayout, batch: Batch): void {
  const spec = layout.spec;
  if (!Number.isInteger(batch.size) || batch.size < 1) {
    throw new RangeError(`batch.size must be a positive integer, got ${String(batch.size)}`);
  }
  const features = inputSize(spec);
  if (batch.x.length !== batch.size * features) {
    throw new RangeError(
      `batch.x has ${batch.x.length} floats, expected size × features = ${batch.size} × ${features}`,
    );
  }
  if (spec.kind === 'kmeans') return;
  const labels = batch.labels;
  if (spec.kind === 'layers') {
    validateLayersBatch(layout, batch);
    return;
  }
  if (spec.kind === 'custom') {
    // A custom kernel may read labels or not; when it does they must fit its classes.
    if (labels === null || spec.classes === 0) return;
    validateLabels(labels, batch.size, spec.classes);
    return;
  }
  if (labels === null) throw new RangeError(`a ${spec.kind} model needs labelled batches`);
  validateLabels(labels, batch.size, spec.classes);
}

/** One label per sample, each below `classes`. */
function validateLabels(labels: Uint32Array, size: number, classes: number): void {
  if (labels.length !== size) {
    throw new RangeError(`batch.labels has ${labels.length} entries, expected ${size}`);
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= classes) {
      throw new RangeError(`batch.labels[${i}] = ${labels[i]} is not below classes = ${classes}`);
    }
  }
}

/**
 * A `layers` batch: labels below the class count for `classify`; token ids (whole numbers below
 * the vocabulary) wherever the first layer is an embedding, the targets of `next-token` included.
 */
function validateLayersBatch(layout: ParameterLayout, batch: Batch): void {
  const spec = layout.spec;
  if (spec.kind !== 'layers') return;
  const plan = planOf(spec);
  const labels = batch.labels;
  if (plan.loss === 'classify') {
    if (labels === null) throw new RangeError('a classify layers model needs labelled batches');
    validateLabels(labels, batch.size, plan.classes);
  }
  const first = plan.nodes[0]!;
  if (first.op !== 'embedding') return;
  const x = batch.x;
  for (let i = 0; i < x.length; i++) {
    const t = x[i]!;
    if (!(Number.isInteger(t) && t >= 0 && t < first.vocab)) {
      throw new RangeError(
        `batch.x[${i}] = ${t} is not a token id below vocab = ${first.vocab} (sample ${Math.floor(i / plan.features)})`,
      );
    }
  }
}

function checkParameters(layout: ParameterLayout, params: Float32Array, what: string): void {
  if (params.length !== layout.size) {
    throw new RangeError(`${what} has ${params.length} floats, expected ${layout.size}`);
  }
}

function scratchFor(layout: ParameterLayout, rows: number, scratch?: ModelScratch): ModelScratch {
  if (scratch === undefined) return new ModelScratch(layout, rows);
  if (!scratch.fits(layout)) throw new RangeError('scratch was made for a different model shape');
  if (scratch.capacity < rows) {
    throw new RangeError(`scratch holds ${scratch.capacity} samples, batch has ${rows}`);
  }
  return scratch;
}

/**
 * z = input·W + b for `rows` samples, then ReLU when `relu`. Zero inputs are skipped: with
 * sparse rows this does a fraction of the multiply-adds.
 */
function denseForward(
  input: Float32Array,
  inWidth: number,
  params: Float32Array,
  weightOffset: number,
  biasOffset: number,
  out: Float32Array,
  outWidth: number,
  rows: number,
  relu: boolean,
): void {
  for (let i = 0; i < rows; i++) {
    const o = i * outWidth;
    for (let j = 0; j < outWidth; j++) out[o + j] = params[biasOffset + j]!;
    const a0 = i * inWidth;
    for (let k = 0; k < inWidth; k++) {
      const a = input[a0 + k]!;
      if (a === 0) continue;
      const w0 = weightOffset + k * outWidth;
      for (let j = 0; j < outWidth; j++) out[o + j] = out[o + j]! + a * params[w0 + j]!;
    }
    if (relu) {
      for (let j = 0; j < outWidth; j++) if (out[o + j]! < 0) out[o + j] = 0;
    }
  }
}

/** Runs the dense stack on `rows` samples of `x`; returns the logits (`rows × classes` prefix). */
function denseStack(
  layout: ParameterLayout,
  params: Float32Array,
  x: Float32Array,
  rows: number,
  scratch: ModelScratch,
): Float32Array {
  const widths = scratch.shape;
  const layers = widths.length - 1;
  let input = x;
  for (let l = 0; l < layers; l++) {
    const out = scratch.activations[l]!;
    denseForward(
      input,
      widths[l]!,
      params,
      layout.tensors[2 * l]!.offset,
      layout.tensors[2 * l + 1]!.offset,
      out,
      widths[l + 1]!,
      rows,
      l + 1 < layers,
    );
    input = out;
  }
  return input;
}

/** log Σ_j exp(z_j) over `width` logits from `offset`, stable for large |z| (float64). */
export function logSumExp(z: Float32Array, offset: number, width: number): number {
  let m = -Infinity;
  for (let j = 0; j < width; j++) if (z[offset + j]! > m) m = z[offset + j]!;
  let s = 0;
  for (let j = 0; j < width; j++) s += Math.exp(z[offset + j]! - m);
  return m + Math.log(s);
}

function classifierLossAndGradient(
  layout: ParameterLayout,
  params: Float32Array,
  batch: Batch,
  gradOut: Float32Array,
  scratch: ModelScratch,
): number {
  const rows = batch.size;
  const labels = batch.labels!;
  const widths = scratch.shape;
  const layers = widths.length - 1;
  const classes = widths[layers]!;
  const logits = denseStack(layout, params, batch.x, rows, scratch);

  // Head: loss and ∂(mean loss)/∂z = (softmax(z) − onehot(label)) / B.
  const top = scratch.deltas[layers - 1]!;
  const invB = 1 / rows;
  let lossSum = 0;
  for (let i = 0; i < rows; i++) {
    const o = i * classes;
    const lse = logSumExp(logits, o, classes);
    const label = labels[i]!;
    lossSum += lse - logits[o + label]!;
    for (let j = 0; j < classes; j++) {
      const p = Math.exp(logits[o + j]! - lse);
      top[o + j] = (j === label ? p - 1 : p) * invB;
    }
  }

  gradOut.fill(0);
  for (let l = layers - 1; l >= 0; l--) {
    const inWidth = widths[l]!;
    const outWidth = widths[l + 1]!;
    const input = l === 0 ? batch.x : scratch.activations[l - 1]!;
    const delta = scratch.deltas[l]!;
    const weightOffset = layout.tensors[2 * l]!.offset;
    const biasOffset = layout.tensors[2 * l + 1]!.offset;

    // ∂W[k, :] += a[i, k] · δ[i, :] (zero inputs skipped); ∂b += δ[i, :].
    for (let i = 0; i < rows; i++) {
      const d0 = i * outWidth;
      for (let j = 0; j < outWidth; j++)
        gradOut[biasOffset + j] = gradOut[biasOffset + j]! + delta[d0 + j]!;
      const a0 = i * inWidth;
      for (let k = 0; k < inWidth; k++) {
        const a = input[a0 + k]!;
        if (a === 0) continue;
        const g0 = weightOffset + k * outWidth;
        for (let j = 0; j < outWidth; j++) gradOut[g0 + j] = gradOut[g0 + j]! + a * delta[d0 + j]!;
      }
    }

    // δ for the layer below: (δ·Wᵀ) ⊙ ReLU'(a). The input layer needs none. Where the ReLU
    // output is zero the derivative is zero, so the dot product is skipped there too.
    if (l > 0) {
      const below = scratch.deltas[l - 1]!;
      for (let i = 0; i < rows; i++) {
        const d0 = i * outWidth;
        const a0 = i * inWidth;
        for (let k = 0; k < inWidth; k++) {
          if (input[a0 + k]! <= 0) {
            below[a0 + k] = 0;
            continue;
          }
          const w0 = weightOffset + k * outWidth;
          let s = 0;
          for (let j = 0; j < outWidth; j++) s += delta[d0 + j]! * params[w0 + j]!;
          below[a0 + k] = s;
        }
      }
    }
  }
  return lossSum * invB;
}

/**
 * Nearest centre and its squared distance for `rows` samples (float64 distances, ties to the
 * lowest index), written to `nearest` and `distance`.
 */
function assignNearest(
  params: Float32Array,
  dims: number,
  clusters: number,
  x: Float32Array,
  rows: number,
  nearest: Uint32Array,
  distance: Float64Array,
): void {
  for (let i = 0; i < rows; i++) {
    const x0 = i * dims;
    let best = Infinity;
    let bestJ = 0;
    for (let j = 0; j < clusters; j++) {
      const c0 = j * dims;
      let d = 0;
      for (let t = 0; t < dims; t++) {
        const diff = x[x0 + t]! - params[c0 + t]!;
        d += diff * diff;
      }
      if (d < best) {
        best = d;
        bestJ = j;
      }
    }
    nearest[i] = bestJ;
    distance[i] = best;
  }
}

function kmeansLossAndGradient(
  params: Float32Array,
  batch: Batch,
  gradOut: Float32Array,
  scratch: ModelScratch,
): number {
  const [dims, clusters] = scratch.shape as [number, number];
  const rows = batch.size;
  const x = batch.x;
  assignNearest(params, dims, clusters, x, rows, scratch.nearest, scratch.nearestDistance);
  const invB = 1 / rows;
  let lossSum = 0;
  gradOut.fill(0);
  for (let i = 0; i < rows; i++) {
    lossSum += scratch.nearestDistance[i]!;
    const c0 = scratch.nearest[i]! * dims;
    const x0 = i * dims;
    for (let t = 0; t < dims; t++) {
      gradOut[c0 + t] = gradOut[c0 + t]! + (params[c0 + t]! - x[x0 + t]!) * invB;
    }
  }
  return 0.5 * lossSum * invB;
}

/**
 * Mean minibatch loss at `params` and its gradient, written to `gradOut` (overwritten, length
 * `layout.size`). Classifiers: mean softmax cross-entropy; K-Means: mean ½·min_j ‖x − c_j‖².
 * `scratch` (default: allocated for this call) must fit the model and hold `batch.size` rows.
 * Throws a RangeError on a malformed batch or wrong array lengths.
 */
export function lossAndGradient(
  layout: ParameterLayout,
  params: Float32Array,
  batch: Batch,
  gradOut: Float32Array,
  scratch?: ModelScratch,
): number {
  checkParameters(layout, params, 'params');
  checkParameters(layout, gradOut, 'gradOut');
  validateBatch(layout, batch);
  const work = scratchFor(layout, batch.size, scratch);
  if (work.layers !== null) {
    return work.layers.lossAndGradient(params, batch.x, batch.labels, batch.size, gradOut);
  }
  return layout.spec.kind === 'kmeans'
    ? kmeansLossAndGradient(params, batch, gradOut, work)
    : classifierLossAndGradient(layout, params, batch, gradOut, work);
}

/**
 * Mean minibatch loss at `params` without the gradient (same definition as `lossAndGradient`).
 */
export function batchLoss(
  layout: ParameterLayout,
  params: Float32Array,
  batch: Batch,
  scratch?: ModelScratch,
): number {
  checkParameters(layout, params, 'params');
  validateBatch(layout, batch);
  const work = scratchFor(layout, batch.size, scratch);
  const spec = layout.spec;
  const rows = batch.size;
  let sum = 0;
  if (work.layers !== null) {
    const { lossSum, scored } = work.layers.evaluate(params, batch.x, batch.labels, rows);
    return lossSum / scored;
  }
  if (spec.kind === 'kmeans') {
    assignNearest(
      params,
      spec.dims,
      spec.clusters,
      batch.x,
      rows,
      work.nearest,
      work.nearestDistance,
    );
    for (let i = 0; i < rows; i++) sum += 0.5 * work.nearestDistance[i]!;
  } else if (spec.kind !== 'layers') {
    const logits = denseStack(layout, params, batch.x, rows, work);
    const labels = batch.labels!;
    for (let i = 0; i < rows; i++) {
      const o = i * spec.classes;
      sum += logSumExp(logits, o, spec.classes) - logits[o + labels[i]!]!;
    }
  }
  return sum / rows;
}

function checkRows(layout: ParameterLayout, x: Float32Array, rows: number): void {
  const features = inputSize(layout.spec);
  if (!Number.isInteger(rows) || rows < 0 || rows * features > x.length) {
    throw new RangeError(`x has ${x.length} floats, too few for ${rows} rows of ${features}`);
  }
}

/**
 * Logits of a softmax, MLP or `layers` model for the first `rows` samples of `x`. Returns a view
 * into `scratch` (valid until its next use), `rows × classes` floats, row-major (for a
 * next-token model `rows × positions × vocab`).
 */
export function forwardLogits(
  layout: ParameterLayout,
  params: Float32Array,
  x: Float32Array,
  rows: number,
  scratch?: ModelScratch,
): Float32Array {
  const spec = layout.spec;
  if (spec.kind === 'kmeans') throw new RangeError('forwardLogits needs a softmax or mlp model');
  checkParameters(layout, params, 'params');
  checkRows(layout, x, rows);
  if (rows === 0) return new Float32Array(0);
  const work = scratchFor(layout, rows, scratch);
  if (work.layers !== null) return work.layers.forward(params, x, rows) as Float32Array;
  if (spec.kind === 'layers') throw new RangeError('scratch was made for a different model shape');
  return denseStack(layout, params, x, rows, work).subarray(0, rows * spec.classes);
}

/**
 * Nearest centre (ties to the lowest index) and squared distance for the first `rows` samples
 * of `x` under a K-Means model; written to `nearest` and `distance` when given.
 */
export function nearestCentres(
  layout: ParameterLayout,
  params: Float32Array,
  x: Float32Array,
  rows: number,
  nearest: Uint32Array = new Uint32Array(rows),
  distance: Float64Array = new Float64Array(rows),
): { nearest: Uint32Array; distance: Float64Array } {
  const spec = layout.spec;
  if (spec.kind !== 'kmeans') throw new RangeError('nearestCentres needs a kmeans model');
  checkParameters(layout, params, 'params');
  checkRows(layout, x, rows);
  if (nearest.length < rows || distance.length < rows) {
    throw new RangeError(`output arrays hold fewer than ${rows} rows`);
  }
  assignNearest(params, spec.dims, spec.clusters, x, rows, nearest, distance);
  return { nearest, distance };
}

/**
 * Predicted class (argmax of the logits, lowest index on ties) or nearest centre for each of
 * the first `rows` samples of `x` (default: all rows `x` holds).
 */
export function predict(
  layout: ParameterLayout,
  params: Float32Array,
  x: Float32Array,
  rows: number = Math.floor(x.length / inputSize(layout.spec)),
): Uint32Array {
  const spec = layout.spec;
  if (spec.kind === 'kmeans') return nearestCentres(layout, params, x, rows).nearest;
  if (spec.kind === 'layers' && planOf(spec).loss !== 'classify') {
    throw new RangeError('predict needs a classifier; a next-token model predicts every position');
  }
  const out = new Uint32Array(rows);
  const chunk = Math.min(Math.max(rows, 1), 256);
  const scratch = new ModelScratch(layout, chunk);
  const features = inputSize(spec);
  const classes = modelClasses(spec);
  for (let start = 0; start < rows; start += chunk) {
    const n = Math.min(chunk, rows - start);
    const rowsX = x.subarray(start * features, (start + n) * features);
    const logits = forwardLogits(layout, params, rowsX, n, scratch);
    for (let i = 0; i < n; i++) out[start + i] = argmax(logits, i * classes, classes);
  }
  return out;
}

/** Index of the largest of `width` values from `offset` (lowest index on ties). */
export function argmax(values: ArrayLike<number>, offset: number, width: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let j = 0; j < width; j++) {
    const v = values[offset + j]!;
    if (v > bestValue) {
      bestValue = v;
      best = j;
    }
  }
  return best;
}
