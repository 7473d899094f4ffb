/**
 * The sequence layers on the CPU: layer norm, token + position embedding, and causal
 * multi-head self-attention (projections through the dense GEMMs, scores and context through
 * per-head GEMMs on strided views of the fused q|k|v rows).
 */
import type { FloatArray } from './gemm.ts';
import { gemmNN, gemmNT, gemmTN } from './gemm.ts';
import type { AttentionNode, EmbeddingNode, LayerNormNode } from './graph.ts';
import type { MakeArray, Op, TensorOffsets } from './op.ts';
import { denseBackward, denseForward } from './op.ts';

export class LayerNormOp implements Op {
  readonly outSize: number;
  readonly out: FloatArray;
  readonly dOut: FloatArray;
  private readonly mean: FloatArray;
  private readonly rstd: FloatArray;
  private readonly weight: number;
  private readonly bias: number;

  constructor(
    private readonly node: LayerNormNode,
    offsets: TensorOffsets,
    capacity: number,
    make: MakeArray,
  ) {
    this.outSize = node.positions * node.width;
    this.out = make(capacity * this.outSize);
    this.dOut = make(capacity * this.outSize);
    this.mean = make(capacity * node.positions);
    this.rstd = make(capacity * node.positions);
    this.weight = offsets[node.weight]!;
    this.bias = offsets[node.bias]!;
  }

  forward(p: FloatArray, x: FloatArray, rows: number): void {
    const d = this.node.width;
    const n = rows * this.node.positions;
    for (let r = 0; r < n; r++) {
      const o = r * d;
      // Mean and variance in float64 (JS numbers), rounded once into the workspace.
      let sum = 0;
      for (let j = 0; j < d; j++) sum += x[o + j]!;
      const mean = sum / d;
      let sq = 0;
      for (let j = 0; j < d; j++) {
        const c = x[o + j]! - mean;
        sq += c * c;
      }
      const rstd = 1 / Math.sqrt(sq / d + this.node.epsilon);
      this.mean[r] = mean;
      this.rstd[r] = rstd;
      for (let j = 0; j < d; j++) {
        this.out[o + j] = (x[o + j]! - mean) * rstd * p[this.weight + j]! + p[this.bias + j]!;
      }
    }
  }

  backward(p: FloatArray, x: FloatArray, dx: FloatArray | null, g: FloatArray, rows: number): void {
    const d = this.node.width;
    const n = rows * this.node.positions;
    const dy = this.dOut;
    for (let r = 0; r < n; r++) {
      const o = r * d;
      const mean = this.mean[r]!;
      const rstd = this.rstd[r]!;
      let sumD = 0;
      let sumDX = 0;
      for (let j = 0; j < d; j++) {
        const xhat = (x[o + j]! - mean) * rstd;
        g[this.weight + j] = g[this.weight + j]! + dy[o + j]! * xhat;
        g[this.bias + j] = g[this.bias + j]! + dy[o + j]!;
        const dxhat = dy[o + j]! * p[this.weight + j]!;
        sumD += dxhat;
        sumDX += dxhat * xhat;
      }
      if (dx === null) continue;
      const meanD = sumD / d;
      const meanDX = sumDX / d;
      for (let j = 0; j < d; j++) {
        const xhat = (x[o + j]! - mean) * rstd;
        dx[o + j] = rstd * (dy[o + j]! * p[this.weight + j]! - meanD - xhat * meanDX);
      }
    }
  }
}

export class EmbeddingOp implements Op {
  readonly outSize: number;
  readonly out: FloatArray;
  readonly dOut: FloatArray;
  private readonly token: number;
  private readonly position: number;

  constructor(
    private readonly node: EmbeddingNode,
    offsets: TensorOffsets,
    capacity: number,
    make: MakeArray,
  ) {
    this.outSize = node.positions * node.dim;
    this.out = make(capacity * this.outSize);
    this.dOut = make(capacity * this.outSize);
    this.token = offsets[node.token]!;
    this.position = offsets[node.position]!;
  }

  /** `x` holds `positions` token ids per sample (checked integers below vocab). */
  forward(p: FloatArray, x: FloatArray, rows: number): void {
    const { positions, dim } = this.node;
    for (let s = 0, r = 0; s < rows; s++) {
      for (let t = 0; t < positions; t++, r++) {
        const tok = this.token + x[r]! * dim;
        const pos = this.position + t * dim;
        const o = r * dim;
        for (let j = 0; j < dim; j++) this.out[o + j] = p[tok + j]! + p[pos + j]!;
      }
    }
  }

  backward(
    _p: FloatArray,
    x: FloatArray,
    _dx: FloatArray | null,
    g: FloatArray,
    rows: number,
  ): void {
    const { positions, dim } = this.node;
    const dy = this.dOut;
    for (let s = 0, r = 0; s < rows; s++) {
      for (let t = 0; t < positions; t++, r++) {
        const tok = this.token + x[r]! * dim;
        const pos = this.position + t * dim;
        const o = r * dim;
        for (let j = 0; j < dim; j++) {
          g[tok + j] = g[tok + j]! + dy[o + j]!;
          g[pos + j] = g[pos + j]! + dy[o + j]!;
        }
      }
    }
  }
}

export class AttentionOp implements Op {
  readonly outSize: number;
  readonly out: FloatArray;
  readonly dOut: FloatArray;
  /** Fused projections, `[positions, 3·width]` per sample: q | k | v, head h at h·(width/heads). */
  private readonly qkv: FloatArray;
  private readonly dQkv: FloatArray;
  /** Softmax weights, `[heads, positions, positions]` per sample, zero above the diagonal. */
  private readonly probs: FloatArray;
  /** Heads' outputs side by side, `[positions, width]` per sample. */
  private readonly context: FloatArray;
  private readonly dContext: FloatArray;
  /** One head's ∂loss/∂weights, `[positions, positions]`, reused. */
  private readonly dProbs: FloatArray;
  private readonly offsets: { qkvW: number; qkvB: number; projW: number; projB: number };

  constructor(
    private readonly node: AttentionNode,
    offsets: TensorOffsets,
    capacity: number,
    make: MakeArray,
  ) {
    const { positions: t, width: d, heads } = node;
    this.outSize = t * d;
    this.out = make(capacity * t * d);
    this.dOut = make(capacity * t * d);
    this.qkv = make(capacity * t * 3 * d);
    this.dQkv = make(capacity * t * 3 * d);
    this.probs = make(capacity * heads * t * t);
    this.context = make(capacity * t * d);
    this.dContext = make(capacity * t * d);
    this.dProbs = make(t * t);
    this.offsets = {
      qkvW: offsets[node.qkvWeight]!,
      qkvB: offsets[node.qkvBias]!,
      projW: offsets[node.projWeight]!,
      projB: offsets[node.projBias]!,
    };
  }

  forward(p: FloatArray, x: FloatArray, rows: number): void {
    const { positions: t, width: d, heads } = this.node;
    const dh = d / heads;
    const scale = 1 / Math.sqrt(dh);
    const o = this.offsets;
    denseForward(p, o.qkvW, o.qkvB, x, this.qkv, rows * t, d, 3 * d);
    this.context.fill(0, 0, rows * t * d);
    for (let s = 0; s < rows; s++) {
      const q0 = s * t * 3 * d;
      for (let h = 0; h < heads; h++) {
        const p0 = (s * heads + h) * t * t;
        const probs = this.probs;
        probs.fill(0, p0, p0 + t * t);
        gemmNT(
          t,
          t,
          dh,
          this.qkv,
          q0 + h * dh,
          3 * d,
          this.qkv,
          q0 + d + h * dh,
          3 * d,
          probs,
          p0,
          t,
        );
        for (let i = 0; i < t; i++) {
          const r = p0 + i * t;
          let m = -Infinity;
          for (let j = 0; j <= i; j++) {
            const v = probs[r + j]! * scale;
            probs[r + j] = v;
            if (v > m) m = v;
          }
          let sum = 0;
          for (let j = 0; j <= i; j++) {
            const e = Math.exp(probs[r + j]! - m);
            probs[r + j] = e;
            sum += e;
          }
          const inv = 1 / sum;
          for (let j = 0; j <= i; j++) probs[r + j] = probs[r + j]! * inv;
          for (let j = i + 1; j < t; j++) probs[r + j] = 0;
        }
        gemmNN(
          t,
          dh,
          t,
          probs,
          p0,
          t,
          this.qkv,
          q0 + 2 * d + h * dh,
          3 * d,
          this.context,
          s * t * d + h * dh,
          d,
        );
      }
    }
    denseForward(p, o.projW, o.projB, this.context, this.out, rows * t, d, d);
  }

  backward(p: FloatArray, x: FloatArray, dx: FloatArray | null, g: FloatArray, rows: number): void {
    const { positions: t, width: d, heads } = this.node;
    const dh = d / heads;
    const scale = 1 / Math.sqrt(dh);
    const o = this.offsets;
    denseBackward(p, o.projW, o.projB, this.context, this.dOut, this.dContext, g, rows * t, d, d);
    this.dQkv.fill(0, 0, rows * t * 3 * d);
    const dP = this.dProbs;
    for (let s = 0; s < rows; s++) {
      const q0 = s * t * 3 * d;
      const c0 = s * t * d;
      for (let h = 0; h < heads; h++) {
        const p0 = (s * heads + h) * t * t;
        const qOff = q0 + h * dh;
        const kOff = q0 + d + h * dh;
        const vOff = q0 + 2 * d + h * dh;
        dP.fill(0);
        gemmNT(t, t, dh, this.dContext, c0 + h * dh, d, this.qkv, vOff, 3 * d, dP, 0, t);
        gemmTN(t, dh, t, this.probs, p0, t, this.dContext, c0 + h * dh, d, this.dQkv, vOff, 3 * d);
        // Softmax backward row by row, scaled: dS = P ⊙ (dP − Σ_j P·dP) / √dh.
        for (let i = 0; i < t; i++) {
          const r = i * t;
          let dot = 0;
          for (let j = 0; j <= i; j++) dot += this.probs[p0 + r + j]! * dP[r + j]!;
          for (let j = 0; j <= i; j++)
            dP[r + j] = this.probs[p0 + r + j]! * (dP[r + j]! - dot) * scale;
          for (let j = i + 1; j < t; j++) dP[r + j] = 0;
        }
        gemmNN(t, dh, t, dP, 0, t, this.qkv, kOff, 3 * d, this.dQkv, qOff, 3 * d);
        gemmTN(t, dh, t, dP, 0, t, this.qkv, qOff, 3 * d, this.dQkv, kOff, 3 * d);
      }
    }
    denseBackward(p, o.qkvW, o.qkvB, x, this.dQkv, dx, g, rows * t, d, 3 * d);
  }
}
