/**
 * One layer of the graph on the CPU, with its preallocated workspace for a batch capacity, and
 * the simple layers: dense, flatten, ReLU and GELU.
 *
 * An op owns its output `out` and the gradient of the loss with respect to it, `dOut`, both
 * `capacity × outSize`. `forward` reads the layer input and writes `out`; `backward` reads
 * `dOut` (filled by the layer above or the loss), adds the parameter gradient into `g` and
 * writes ∂loss/∂input into `dx` (overwriting it), or skips that when `dx` is null.
 */
import type { FloatArray } from './gemm.ts';
import { gemmNN, gemmNT, gemmTN } from './gemm.ts';
import type { DenseNode, ElementwiseNode } from './graph.ts';

export type MakeArray = (length: number) => FloatArray;

export interface Op {
  readonly outSize: number;
  readonly out: FloatArray;
  readonly dOut: FloatArray;
  forward(p: FloatArray, x: FloatArray, rows: number): void;
  backward(p: FloatArray, x: FloatArray, dx: FloatArray | null, g: FloatArray, rows: number): void;
}

/** Offsets of a node's tensors in the flat parameter vector, by plan tensor index. */
export type TensorOffsets = readonly number[];

export class DenseOp implements Op {
  readonly outSize: number;
  readonly out: FloatArray;
  readonly dOut: FloatArray;
  private readonly weight: number;
  private readonly bias: number;

  constructor(
    private readonly node: DenseNode,
    offsets: TensorOffsets,
    capacity: number,
    make: MakeArray,
  ) {
    this.outSize = node.positions * node.outWidth;
    this.out = make(capacity * this.outSize);
    this.dOut = make(capacity * this.outSize);
    this.weight = offsets[node.weight]!;
    this.bias = offsets[node.bias]!;
  }

  forward(p: FloatArray, x: FloatArray, rows: number): void {
    denseForward(
      p,
      this.weight,
      this.bias,
      x,
      this.out,
      rows * this.node.positions,
      this.node.inWidth,
      this.node.outWidth,
    );
  }

  backward(p: FloatArray, x: FloatArray, dx: FloatArray | null, g: FloatArray, rows: number): void {
    denseBackward(
      p,
      this.weight,
      this.bias,
      x,
      this.dOut,
      dx,
      g,
      rows * this.node.positions,
      this.node.inWidth,
      this.node.outWidth,
    );
  }
}

/** out[M×N] = x[M×K] · Wᵀ + b with W `[N, K]` at `weight` in `p`. */
export function denseForward(
  p: FloatArray,
  weight: number,
  bias: number,
  x: FloatArray,
  out: FloatArray,
  m: number,
  k: number,
  n: number,
): void {
  for (let i = 0; i < m; i++) {
    const o = i * n;
    for (let j = 0; j < n; j++) out[o + j] = p[bias + j]!;
  }
  gemmNT(m, n, k, x, 0, k, p, weight, k, out, 0, n);
}

/** ∂W += dyᵀ·x, ∂b += Σ dy, and dx = dy·W (when dx is not null). */
export function denseBackward(
  p: FloatArray,
  weight: number,
  bias: number,
  x: FloatArray,
  dy: FloatArray,
  dx: FloatArray | null,
  g: FloatArray,
  m: number,
  k: number,
  n: number,
): void {
  for (let i = 0; i < m; i++) {
    const o = i * n;
    for (let j = 0; j < n; j++) g[bias + j] = g[bias + j]! + dy[o + j]!;
  }
  gemmTN(n, k, m, dy, 0, n, x, 0, k, g, weight, k);
  if (dx === null) return;
  dx.fill(0, 0, m * k);
  gemmNN(m, k, n, dy, 0, n, p, weight, k, dx, 0, k);
}

/** √(2/π), the GELU tanh form's constant. */
const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

export class ElementwiseOp implements Op {
  readonly outSize: number;
  readonly out: FloatArray;
  readonly dOut: FloatArray;

  constructor(
    private readonly node: ElementwiseNode,
    capacity: number,
    make: MakeArray,
  ) {
    this.outSize = node.outShape.reduce((a, b) => a * b, 1);
    this.out = make(capacity * this.outSize);
    this.dOut = make(capacity * this.outSize);
  }

  forward(_p: FloatArray, x: FloatArray, rows: number): void {
    const n = rows * this.outSize;
    const out = this.out;
    switch (this.node.op) {
      case 'flatten':
        for (let i = 0; i < n; i++) out[i] = x[i]!;
        break;
      case 'relu':
        for (let i = 0; i < n; i++) out[i] = x[i]! > 0 ? x[i]! : 0;
        break;
      case 'gelu':
        for (let i = 0; i < n; i++) {
          const v = x[i]!;
          out[i] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + GELU_A * v * v * v)));
        }
        break;
    }
  }

  backward(
    _p: FloatArray,
    x: FloatArray,
    dx: FloatArray | null,
    _g: FloatArray,
    rows: number,
  ): void {
    if (dx === null) return;
    const n = rows * this.outSize;
    const dy = this.dOut;
    switch (this.node.op) {
      case 'flatten':
        for (let i = 0; i < n; i++) dx[i] = dy[i]!;
        break;
      case 'relu':
        for (let i = 0; i < n; i++) dx[i] = x[i]! > 0 ? dy[i]! : 0;
        break;
      case 'gelu':
        for (let i = 0; i < n; i++) {
          const v = x[i]!;
          const t = Math.tanh(GELU_C * (v + GELU_A * v * v * v));
          const slope = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_C * (1 + 3 * GELU_A * v * v);
          dx[i] = dy[i]! * slope;
        }
        break;
    }
  }
}
