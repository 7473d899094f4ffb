import { describe, expect, it } from 'vitest';
import type { Batch } from '../data/dataset.ts';
import { Rng } from '../util/rng.ts';
import { initParameters } from './init.ts';
import {
  batchLoss,
  forwardLogits,
  lossAndGradient,
  ModelScratch,
  nearestCentres,
  predict,
} from './math.ts';
import type { ModelSpec, ParameterLayout } from './spec.ts';
import { denseWidths, inputSize, parameterLayout } from './spec.ts';

/**
 * Independent float64 reference of the loss, written naively from the definitions (no skipping,
 * no scratch), so finite differences of it are accurate to ~1e-10.
 */
function referenceLoss(layout: ParameterLayout, w: Float64Array, batch: Batch): number {
  const spec = layout.spec;
  const n = inputSize(spec);
  let total = 0;
  for (let i = 0; i < batch.size; i++) {
    const x = Array.from(batch.x.subarray(i * n, (i + 1) * n));
    if (spec.kind === 'kmeans') {
      let best = Infinity;
      for (let j = 0; j < spec.clusters; j++) {
        let d = 0;
        for (let t = 0; t < spec.dims; t++) d += (x[t]! - w[j * spec.dims + t]!) ** 2;
        best = Math.min(best, d);
      }
      total += 0.5 * best;
      continue;
    }
    const widths = denseWidths(spec);
    let a = x;
    for (let l = 0; l + 1 < widths.length; l++) {
      const W = layout.tensors[2 * l]!.offset;
      const b = layout.tensors[2 * l + 1]!.offset;
      const out: number[] = [];
      for (let j = 0; j < widths[l + 1]!; j++) {
        let z = w[b + j]!;
        for (let k = 0; k < widths[l]!; k++) z += a[k]! * w[W + k * widths[l + 1]! + j]!;
        out.push(l + 2 < widths.length ? Math.max(0, z) : z);
      }
      a = out;
    }
    const m = Math.max(...a);
    const lse = m + Math.log(a.reduce((s, z) => s + Math.exp(z - m), 0));
    total += lse - a[batch.labels![i]!]!;
  }
  return total / batch.size;
}

function randomBatch(spec: ModelSpec, size: number, rng: Rng, sparsity = 0): Batch {
  const n = inputSize(spec);
  const x = new Float32Array(size * n);
  for (let i = 0; i < x.length; i++) x[i] = rng.next() < sparsity ? 0 : rng.normal();
  const labels =
    spec.kind === 'kmeans' ? null : Uint32Array.from({ length: size }, () => rng.int(spec.classes));
  return { size, x, labels };
}

/** Central differences of the float64 reference loss at the float32 point `params`. */
function finiteDifferences(layout: ParameterLayout, params: Float32Array, batch: Batch) {
  const w = Float64Array.from(params);
  const fd = new Float64Array(w.length);
  for (let p = 0; p < w.length; p++) {
    const h = 1e-6 * Math.max(1, Math.abs(w[p]!));
    const saved = w[p]!;
    w[p] = saved + h;
    const up = referenceLoss(layout, w, batch);
    w[p] = saved - h;
    const down = referenceLoss(layout, w, batch);
    w[p] = saved;
    fd[p] = (up - down) / (2 * h);
  }
  return fd;
}

const gradientCases: { name: string; spec: ModelSpec; sparsity: number }[] = [
  { name: 'softmax', spec: { kind: 'softmax', inputs: 7, classes: 4 }, sparsity: 0.5 },
  {
    name: 'mlp 2 hidden',
    spec: { kind: 'mlp', inputs: 6, hidden: [9, 5], classes: 3 },
    sparsity: 0.3,
  },
  { name: 'kmeans', spec: { kind: 'kmeans', dims: 5, clusters: 4 }, sparsity: 0 },
];

describe('lossAndGradient', () => {
  for (const { name, spec, sparsity } of gradientCases) {
    it(`matches float64 central differences: ${name}`, () => {
      for (const seed of [1, 2, 3]) {
        const rng = new Rng(100 + seed);
        const layout = parameterLayout(spec);
        const params = initParameters(layout, seed);
        // Non-zero biases so their gradient path is exercised too.
        for (const t of layout.tensors) {
          if (t.name.endsWith('bias')) {
            for (let i = t.offset; i < t.offset + t.size; i++) params[i] = 0.1 * rng.normal();
          }
        }
        const batch = randomBatch(spec, 11, rng, sparsity);
        const grad = new Float32Array(layout.size).fill(Number.NaN); // poisoned: all must be written
        const loss = lossAndGradient(layout, params, batch, grad);
        const reference = referenceLoss(layout, Float64Array.from(params), batch);
        expect(Math.abs(loss - reference)).toBeLessThanOrEqual(1e-5 * Math.max(1, reference));

        const fd = finiteDifferences(layout, params, batch);
        const scale = Math.max(...fd.map(Math.abs));
        expect(scale).toBeGreaterThan(0);
        let errNorm = 0;
        let fdNorm = 0;
        for (let p = 0; p < fd.length; p++) {
          const err = Math.abs(grad[p]! - fd[p]!);
          // Per component: float32 rounding relative to the gradient's largest entry.
          expect(err, `parameter ${p}`).toBeLessThanOrEqual(1e-4 * scale);
          errNorm += err * err;
          fdNorm += fd[p]! ** 2;
        }
        expect(Math.sqrt(errNorm / fdNorm)).toBeLessThan(1e-4);
      }
    });
  }

  it('is numerically stable for huge logits', () => {
    const spec: ModelSpec = { kind: 'softmax', inputs: 3, classes: 3 };
    const layout = parameterLayout(spec);
    const params = Float32Array.from([1000, -1000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const batch: Batch = {
      size: 2,
      x: Float32Array.from([1, 0, 0, 1, 0, 0]),
      labels: Uint32Array.from([0, 1]),
    };
    const grad = new Float32Array(layout.size);
    const loss = lossAndGradient(layout, params, batch, grad);
    // Sample 0: logits (1000, −1000, 0), label 0 → loss ≈ 0. Sample 1: label 1 → loss ≈ 2000.
    expect(loss).toBeCloseTo(1000, 6);
    expect(grad.every(Number.isFinite)).toBe(true);
  });

  it('breaks K-Means ties toward the lowest index', () => {
    const layout = parameterLayout({ kind: 'kmeans', dims: 1, clusters: 3 });
    const params = Float32Array.from([2, -2, 2]); // centres 0 and 2 coincide
    const batch: Batch = { size: 2, x: Float32Array.from([0, 1]), labels: null };
    const grad = new Float32Array(3);
    const loss = lossAndGradient(layout, params, batch, grad);
    // x = 0 is equidistant from all three → centre 0; x = 1 → centre 0 (not 2).
    expect(Array.from(grad)).toEqual([(2 - 0 + (2 - 1)) / 2, 0, 0]);
    expect(loss).toBeCloseTo((0.5 * 4 + 0.5 * 1) / 2, 12);
  });

  it('agrees with batchLoss and reuses scratch across batch sizes', () => {
    const spec: ModelSpec = { kind: 'mlp', inputs: 8, hidden: [6], classes: 3 };
    const layout = parameterLayout(spec);
    const params = initParameters(layout, 9);
    const scratch = new ModelScratch(layout, 16);
    const rng = new Rng(9);
    for (const size of [16, 3, 16, 1]) {
      const batch = randomBatch(spec, size, rng, 0.4);
      const grad = new Float32Array(layout.size);
      const a = lossAndGradient(layout, params, batch, grad, scratch);
      const fresh = lossAndGradient(layout, params, batch, new Float32Array(layout.size));
      expect(a).toBe(fresh);
      expect(batchLoss(layout, params, batch, scratch)).toBe(a);
    }
  });

  it('rejects malformed batches and arrays', () => {
    const layout = parameterLayout({ kind: 'softmax', inputs: 2, classes: 2 });
    const params = new Float32Array(layout.size);
    const grad = new Float32Array(layout.size);
    const ok: Batch = { size: 2, x: new Float32Array(4), labels: new Uint32Array(2) };
    expect(() => lossAndGradient(layout, params, ok, grad)).not.toThrow();
    const bad: Batch[] = [
      { ...ok, size: 0 },
      { ...ok, size: 2.5 },
      { ...ok, x: new Float32Array(5) },
      { ...ok, labels: null },
      { ...ok, labels: new Uint32Array(3) },
      { ...ok, labels: Uint32Array.from([0, 2]) },
    ];
    for (const b of bad) expect(() => lossAndGradient(layout, params, b, grad)).toThrow(RangeError);
    expect(() => lossAndGradient(layout, new Float32Array(5), ok, grad)).toThrow(RangeError);
    expect(() => lossAndGradient(layout, params, ok, new Float32Array(5))).toThrow(RangeError);
    expect(() => lossAndGradient(layout, params, ok, grad, new ModelScratch(layout, 1))).toThrow(
      RangeError,
    );
    const other = parameterLayout({ kind: 'softmax', inputs: 2, classes: 3 });
    expect(() => lossAndGradient(layout, params, ok, grad, new ModelScratch(other, 4))).toThrow(
      RangeError,
    );
  });
});

describe('forward helpers', () => {
  it('predict is the argmax of forwardLogits and of the reference', () => {
    const spec: ModelSpec = { kind: 'mlp', inputs: 5, hidden: [7], classes: 4 };
    const layout = parameterLayout(spec);
    const params = initParameters(layout, 4);
    const rng = new Rng(4);
    const rows = 600; // more than predict's chunk, so chunking is exercised
    const batch = randomBatch(spec, rows, rng);
    const predicted = predict(layout, params, batch.x);
    const logits = forwardLogits(layout, params, batch.x, rows);
    expect(predicted.length).toBe(rows);
    for (let i = 0; i < rows; i++) {
      const row = Array.from(logits.subarray(i * 4, i * 4 + 4));
      expect(predicted[i]).toBe(row.indexOf(Math.max(...row)));
    }
  });

  it('nearestCentres finds the closest centre', () => {
    const layout = parameterLayout({ kind: 'kmeans', dims: 2, clusters: 3 });
    const params = Float32Array.from([0, 0, 10, 0, 0, 10]);
    const x = Float32Array.from([1, 1, 9, 1, 1, 8, 6, 0]);
    const { nearest, distance } = nearestCentres(layout, params, x, 4);
    expect(Array.from(nearest)).toEqual([0, 1, 2, 1]);
    expect(Array.from(distance)).toEqual([2, 2, 5, 16]);
    expect(Array.from(predict(layout, params, x))).toEqual([0, 1, 2, 1]);
  });
});
