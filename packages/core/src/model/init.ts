/**
 * Seeded parameter initialisation, so every worker and the server can start from the same w
 * given only the job's seed.
 */
import type { Dataset } from '../data/dataset.ts';
import { Rng } from '../util/rng.ts';
import type { ParameterLayout } from './spec.ts';
import { initLayers } from './layers/init.ts';
import { planOf } from './layers/graph.ts';
import { denseWidths, tensorOffsets } from './spec.ts';

/** Rows of `data` that k-means++ seeding looks at, at most; keeps it O(rows · clusters). */
export const KMEANS_SEEDING_ROWS = 2_000;

/**
 * Initial parameters for `layout`, reproducible from `seed`.
 *
 * - Dense models: hidden layers He-normal (N(0, 2/fan_in), suits ReLU); the output layer
 *   Glorot-uniform (U(±√(6/(fan_in + fan_out)))); all biases zero. Softmax regression has
 *   only an output layer.
 * - K-Means: with `data`, k-means++ seeding on a seeded sample of at most
 *   `KMEANS_SEEDING_ROWS` rows (each next centre drawn with probability ∝ squared distance to
 *   the nearest centre so far); without `data`, every coordinate standard normal.
 *   `data.features` must equal the model's `dims` and `data` must not be empty.
 * - Custom: each tensor N(0, initStd²) (zeros when `initStd` is 0 or absent).
 * - Layers: per layer type, see `initLayers` (layers/init.ts).
 */
export function initParameters(
  layout: ParameterLayout,
  seed: number,
  data?: Dataset,
): Float32Array {
  const params = new Float32Array(layout.size);
  const rng = new Rng(seed);
  const spec = layout.spec;
  if (spec.kind === 'custom') {
    // Each tensor N(0, initStd²), in layout order; zeros when initStd is 0 or absent.
    spec.tensors.forEach((t, i) => {
      const std = t.initStd ?? 0;
      if (std === 0) return;
      const { offset, size } = layout.tensors[i]!;
      for (let j = offset; j < offset + size; j++) params[j] = std * rng.normal();
    });
    return params;
  }
  if (spec.kind === 'layers') {
    initLayers(planOf(spec), tensorOffsets(layout), params, rng);
    return params;
  }
  if (spec.kind === 'kmeans') {
    if (data === undefined) {
      for (let i = 0; i < params.length; i++) params[i] = rng.normal();
    } else {
      kmeansPlusPlus(params, spec.dims, spec.clusters, data, rng);
    }
    return params;
  }
  const widths = denseWidths(spec);
  const layers = widths.length - 1;
  for (let l = 0; l < layers; l++) {
    const fanIn = widths[l]!;
    const fanOut = widths[l + 1]!;
    const weights = layout.tensors[2 * l]!;
    const end = weights.offset + weights.size;
    if (l + 1 < layers) {
      const std = Math.sqrt(2 / fanIn);
      for (let i = weights.offset; i < end; i++) params[i] = std * rng.normal();
    } else {
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = weights.offset; i < end; i++) params[i] = limit * (2 * rng.next() - 1);
    }
    // Biases stay zero (Float32Array starts zeroed).
  }
  return params;
}

function kmeansPlusPlus(
  centres: Float32Array,
  dims: number,
  clusters: number,
  data: Dataset,
  rng: Rng,
): void {
  if (data.features !== dims) {
    throw new RangeError(
      `seeding data has ${data.features} features, the model has dims = ${dims}`,
    );
  }
  if (data.count < 1) throw new RangeError('seeding data is empty');
  if (data.x.length < data.count * dims) {
    throw new RangeError(`seeding data holds ${data.x.length} floats, fewer than count × features`);
  }

  // A seeded sample without replacement (partial Fisher–Yates over row indices).
  const rows = Math.min(data.count, KMEANS_SEEDING_ROWS);
  const order = new Uint32Array(data.count);
  for (let i = 0; i < order.length; i++) order[i] = i;
  for (let i = 0; i < rows; i++) {
    const j = i + rng.int(data.count - i);
    const tmp = order[i]!;
    order[i] = order[j]!;
    order[j] = tmp;
  }

  const copyRow = (row: number, centre: number) => {
    const src = row * dims;
    centres.set(data.x.subarray(src, src + dims), centre * dims);
  };
  // D²: squared distance of each sampled row to its nearest centre so far.
  const d2 = new Float64Array(rows).fill(Infinity);
  copyRow(order[rng.int(rows)]!, 0);
  for (let c = 1; c < clusters; c++) {
    const prev = (c - 1) * dims;
    let total = 0;
    for (let i = 0; i < rows; i++) {
      const x0 = order[i]! * dims;
      let d = 0;
      for (let t = 0; t < dims; t++) {
        const diff = data.x[x0 + t]! - centres[prev + t]!;
        d += diff * diff;
      }
      if (d < d2[i]!) d2[i] = d;
      total += d2[i]!;
    }
    let pick: number;
    if (total > 0 && Number.isFinite(total)) {
      // Walk the cumulative D² to the drawn point; the last positive row guards rounding.
      const target = rng.next() * total;
      let acc = 0;
      pick = -1;
      let lastPositive = 0;
      for (let i = 0; i < rows; i++) {
        if (d2[i]! <= 0) continue;
        lastPositive = i;
        acc += d2[i]!;
        if (acc > target) {
          pick = i;
          break;
        }
      }
      if (pick < 0) pick = lastPositive;
    } else {
      // Fewer distinct rows than clusters: duplicates are unavoidable, pick uniformly.
      pick = rng.int(rows);
    }
    copyRow(order[pick]!, c);
  }
}
