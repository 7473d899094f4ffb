/**
 * Float64 references for the kernel checks: the same mathematics as the WGSL kernels (and as
 * core's float32 CPU backend), in float64 from float32 inputs, so a kernel's error can be
 * measured against (nearly) exact values. Not used in training.
 */
import type { Batch, ParameterLayout, ReceivedBlock } from '@meshgrad/core';
import {
  blockRange,
  denseWidths,
  LayersNetwork,
  PARZEN_MERGE_RULE,
  planOf,
  tensorOffsets,
} from '@meshgrad/core';
import type { UpdateRule } from '../kernels/programs.ts';

/** Unit roundoff of float32. */
export const F32_U = 2 ** -24;

/** γ_n = n·u / (1 − n·u): the classical bound on a float32 sum or dot product of n terms. */
export function gamma(n: number): number {
  return (n * F32_U) / (1 - n * F32_U);
}

/** Dense forward z = x·W + b, optional ReLU, with the condition Σ|x||W| + |b| per output. */
export function denseForward64(
  x: ArrayLike<number>,
  rows: number,
  inputs: number,
  params: ArrayLike<number>,
  weightOffset: number,
  outputs: number,
  relu: boolean,
): { y: Float64Array; scale: Float64Array } {
  const y = new Float64Array(rows * outputs);
  const scale = new Float64Array(rows * outputs);
  const biasOffset = weightOffset + inputs * outputs;
  for (let s = 0; s < rows; s++) {
    for (let j = 0; j < outputs; j++) {
      let z = params[biasOffset + j]!;
      let c = Math.abs(z);
      for (let k = 0; k < inputs; k++) {
        const term = x[s * inputs + k]! * params[weightOffset + k * outputs + j]!;
        z += term;
        c += Math.abs(term);
      }
      y[s * outputs + j] = relu && z < 0 ? 0 : z;
      scale[s * outputs + j] = c;
    }
  }
  return { y, scale };
}

/** Softmax cross-entropy per sample and ∂(mean loss)/∂z = (softmax − onehot)/rows. */
export function softmaxCe64(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  rows: number,
  classes: number,
): { loss: Float64Array; dlogits: Float64Array } {
  const loss = new Float64Array(rows);
  const dlogits = new Float64Array(rows * classes);
  for (let s = 0; s < rows; s++) {
    const o = s * classes;
    let m = -Infinity;
    for (let j = 0; j < classes; j++) m = Math.max(m, logits[o + j]!);
    let sum = 0;
    for (let j = 0; j < classes; j++) sum += Math.exp(logits[o + j]! - m);
    const lse = m + Math.log(sum);
    const label = labels[s]!;
    loss[s] = lse - logits[o + label]!;
    for (let j = 0; j < classes; j++) {
      dlogits[o + j] = (Math.exp(logits[o + j]! - lse) - (j === label ? 1 : 0)) / rows;
    }
  }
  return { loss, dlogits };
}

/** [dW; db] = [x | 1]ᵀ·dY, with the condition Σ|x||dY| per entry. */
export function denseWeightGrad64(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  inputs: number,
  outputs: number,
): { grad: Float64Array; scale: Float64Array } {
  const grad = new Float64Array((inputs + 1) * outputs);
  const scale = new Float64Array((inputs + 1) * outputs);
  for (let k = 0; k <= inputs; k++) {
    for (let j = 0; j < outputs; j++) {
      let g = 0;
      let c = 0;
      for (let s = 0; s < rows; s++) {
        const a = k === inputs ? 1 : x[s * inputs + k]!;
        const term = a * dy[s * outputs + j]!;
        g += term;
        c += Math.abs(term);
      }
      grad[k * outputs + j] = g;
      scale[k * outputs + j] = c;
    }
  }
  return { grad, scale };
}

/** dX = (dY·Wᵀ) ⊙ [a > 0], with the condition Σ|dY||W| per entry. */
export function denseInputGrad64(
  a: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  inputs: number,
  params: ArrayLike<number>,
  weightOffset: number,
  outputs: number,
): { dx: Float64Array; scale: Float64Array } {
  const dx = new Float64Array(rows * inputs);
  const scale = new Float64Array(rows * inputs);
  for (let s = 0; s < rows; s++) {
    for (let k = 0; k < inputs; k++) {
      if (!(a[s * inputs + k]! > 0)) continue;
      let d = 0;
      let c = 0;
      for (let j = 0; j < outputs; j++) {
        const term = dy[s * outputs + j]! * params[weightOffset + k * outputs + j]!;
        d += term;
        c += Math.abs(term);
      }
      dx[s * inputs + k] = d;
      scale[s * inputs + k] = c;
    }
  }
  return { dx, scale };
}

/** K-Means: nearest centre (lowest index on ties), all squared distances, ½·d² per sample. */
export function kmeansAssign64(
  x: ArrayLike<number>,
  rows: number,
  dims: number,
  centres: ArrayLike<number>,
  clusters: number,
): { nearest: Uint32Array; loss: Float64Array; distances: Float64Array } {
  const nearest = new Uint32Array(rows);
  const loss = new Float64Array(rows);
  const distances = new Float64Array(rows * clusters);
  for (let s = 0; s < rows; s++) {
    let best = Infinity;
    for (let j = 0; j < clusters; j++) {
      let d = 0;
      for (let t = 0; t < dims; t++) {
        const diff = x[s * dims + t]! - centres[j * dims + t]!;
        d += diff * diff;
      }
      distances[s * clusters + j] = d;
      if (d < best) {
        best = d;
        nearest[s] = j;
      }
    }
    loss[s] = 0.5 * best;
  }
  return { nearest, loss, distances };
}

/** ∂(mean K-Means loss)/∂c for given assignments, with the condition Σ(|c| + |x|)/rows. */
export function kmeansGrad64(
  x: ArrayLike<number>,
  rows: number,
  dims: number,
  centres: ArrayLike<number>,
  clusters: number,
  nearest: ArrayLike<number>,
): { grad: Float64Array; scale: Float64Array } {
  const grad = new Float64Array(clusters * dims);
  const scale = new Float64Array(clusters * dims);
  for (let s = 0; s < rows; s++) {
    const j = nearest[s]!;
    for (let t = 0; t < dims; t++) {
      const c = centres[j * dims + t]!;
      const v = x[s * dims + t]!;
      grad[j * dims + t]! += (c - v) / rows;
      scale[j * dims + t]! += (Math.abs(c) + Math.abs(v)) / rows;
    }
  }
  return { grad, scale };
}

/** Result of the float64 SGD + Parzen + merge over all blocks. */
export interface Update64 {
  readonly params: Float64Array;
  /** Per parameter, the size of what was summed: (|w| + η|g| + Σ accepted |v|)/(1 + accepted). */
  readonly scale: Float64Array;
  readonly offered: number;
  readonly accepted: number;
  /** Per received block: accepted or not. */
  readonly verdicts: boolean[];
  /** Per received block: |2⟨g, w − v⟩ − η‖g‖²| relative to |2⟨g, w − v⟩| + η‖g‖² (how far from a tie). */
  readonly margins: number[];
}

/** The step's update (DESIGN §3.1) in float64 on float32 inputs, under merge `rule`. */
export function update64(
  layout: ParameterLayout,
  w: ArrayLike<number>,
  g: ArrayLike<number>,
  learningRate: number,
  received: readonly ReceivedBlock[],
  rule: UpdateRule = PARZEN_MERGE_RULE,
): Update64 {
  const averageFirst = rule.order === 'average-then-step';
  const eta = Math.fround(learningRate);
  const out = Float64Array.from(w);
  const scale = new Float64Array(layout.size);
  const verdicts = received.map(() => false);
  const margins = received.map(() => Infinity);
  let offered = 0;
  let accepted = 0;
  for (let k = 0; k < layout.blockCount; k++) {
    const { start, end } = blockRange(layout, k);
    let gg = 0;
    for (let i = start; i < end; i++) gg += g[i]! * g[i]!;
    const mine: number[] = [];
    received.forEach((r, index) => {
      if (r.block !== k) return;
      offered++;
      let dot = 0;
      let finite = true;
      for (let i = start; i < end; i++) {
        const v = r.values[i - start]!;
        if (!Number.isFinite(v)) finite = false;
        dot += g[i]! * (w[i]! - v);
      }
      const ok = finite && (rule.parzen === 'off' || 2 * dot > eta * gg);
      margins[index] = finite
        ? Math.abs(2 * dot - eta * gg) / (Math.abs(2 * dot) + eta * gg)
        : Infinity;
      verdicts[index] = ok;
      if (ok) mine.push(index);
    });
    accepted += mine.length;
    for (let i = start; i < end; i++) {
      const step = eta * g[i]!;
      let sum = averageFirst ? w[i]! : w[i]! - step;
      let size = Math.abs(w[i]!) + Math.abs(step);
      for (const index of mine) {
        const v = received[index]!.values[i - start]!;
        sum += v;
        size += Math.abs(v);
      }
      out[i] = averageFirst ? sum / (1 + mine.length) - step : sum / (1 + mine.length);
      // Average-then-step adds the whole step after the mean: its size counts in full.
      scale[i] = averageFirst
        ? (size - Math.abs(step)) / (1 + mine.length) + Math.abs(step)
        : size / (1 + mine.length);
    }
  }
  return { params: out, scale, offered, accepted, verdicts, margins };
}

/**
 * Outer momentum (core's MergeRule) in float64 on float32 inputs: a = anchor − w,
 * d ← β·d + a, w ← anchor − d, anchor ← w. `scale` is |anchor| + |w| + |β·d| + |d| per value.
 */
export function outerMomentum64(
  w: ArrayLike<number>,
  anchor: ArrayLike<number>,
  displacement: ArrayLike<number>,
  beta: number,
): { params: Float64Array; displacement: Float64Array; scale: Float64Array } {
  const b = Math.fround(beta);
  const n = w.length;
  const params = new Float64Array(n);
  const d = new Float64Array(n);
  const scale = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    d[i] = b * displacement[i]! + (anchor[i]! - w[i]!);
    params[i] = anchor[i]! - d[i]!;
    scale[i] =
      Math.abs(anchor[i]!) + Math.abs(w[i]!) + Math.abs(b * displacement[i]!) + Math.abs(d[i]!);
  }
  return { params, displacement: d, scale };
}

/** Loss and gradient of a whole model in float64 (mean over the batch). */
export function lossAndGradient64(
  layout: ParameterLayout,
  w: ArrayLike<number>,
  batch: Batch,
): { loss: number; grad: Float64Array } {
  const spec = layout.spec;
  const rows = batch.size;
  const grad = new Float64Array(layout.size);
  if (spec.kind === 'layers') {
    // Core's own layer graph, run in float64 (it is generic over the float type).
    const net = new LayersNetwork(
      planOf(spec),
      tensorOffsets(layout),
      rows,
      (n) => new Float64Array(n),
    );
    const loss = net.lossAndGradient(
      Float64Array.from(w),
      Float64Array.from(batch.x),
      batch.labels,
      rows,
      grad,
    );
    return { loss, grad };
  }
  if (spec.kind === 'kmeans') {
    const a = kmeansAssign64(batch.x, rows, spec.dims, w, spec.clusters);
    const g = kmeansGrad64(batch.x, rows, spec.dims, w, spec.clusters, a.nearest);
    grad.set(g.grad);
    return { loss: a.loss.reduce((p, q) => p + q, 0) / rows, grad };
  }
  const widths = denseWidths(spec);
  const layers = widths.length - 1;
  const acts: Float64Array[] = [];
  let input: ArrayLike<number> = batch.x;
  for (let l = 0; l < layers; l++) {
    const { y } = denseForward64(
      input,
      rows,
      widths[l]!,
      w,
      layout.tensors[2 * l]!.offset,
      widths[l + 1]!,
      l + 1 < layers,
    );
    acts.push(y);
    input = y;
  }
  const { loss, dlogits } = softmaxCe64(acts[layers - 1]!, batch.labels!, rows, spec.classes);
  let delta: ArrayLike<number> = dlogits;
  for (let l = layers - 1; l >= 0; l--) {
    const x = l === 0 ? batch.x : acts[l - 1]!;
    const off = layout.tensors[2 * l]!.offset;
    const { grad: gl } = denseWeightGrad64(x, delta, rows, widths[l]!, widths[l + 1]!);
    grad.set(gl, off);
    if (l > 0) delta = denseInputGrad64(x, delta, rows, widths[l]!, w, off, widths[l + 1]!).dx;
  }
  return { loss: loss.reduce((p, q) => p + q, 0) / rows, grad };
}
