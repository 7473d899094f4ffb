/**
 * A `layers` model instantiated on the CPU for batches of up to `capacity` samples: every op with
 * its workspace allocated once, the residual wiring, and the softmax cross-entropy head
 * (DESIGN §6). Generic over the float type so the gradient checks run the same code in float64.
 */
import type { FloatArray } from './gemm.ts';
import type { LayersPlan, PlanNode, ResidualNode } from './graph.ts';
import type { MakeArray, Op, TensorOffsets } from './op.ts';
import { DenseOp, ElementwiseOp } from './op.ts';
import { AttentionOp, EmbeddingOp, LayerNormOp } from './sequence.ts';
import { Conv2dOp, PoolOp } from './spatial.ts';

function runForward(ops: readonly Op[], p: FloatArray, x: FloatArray, rows: number): FloatArray {
  let input = x;
  for (const op of ops) {
    op.forward(p, input, rows);
    input = op.out;
  }
  return input;
}

/** Backward through `ops`; the last op's `dOut` must already hold ∂loss/∂output. */
function runBackward(
  ops: readonly Op[],
  p: FloatArray,
  x: FloatArray,
  dx: FloatArray | null,
  g: FloatArray,
  rows: number,
): void {
  for (let i = ops.length - 1; i >= 0; i--) {
    const input = i === 0 ? x : ops[i - 1]!.out;
    const target = i === 0 ? dx : ops[i - 1]!.dOut;
    ops[i]!.backward(p, input, target, g, rows);
  }
}

class ResidualOp implements Op {
  readonly outSize: number;
  readonly out: FloatArray;
  readonly dOut: FloatArray;
  private readonly inner: Op[];
  private readonly dInner: FloatArray;

  constructor(node: ResidualNode, offsets: TensorOffsets, capacity: number, make: MakeArray) {
    this.inner = node.inner.map((n) => makeOp(n, offsets, capacity, make));
    this.outSize = this.inner[this.inner.length - 1]!.outSize;
    this.out = make(capacity * this.outSize);
    this.dOut = make(capacity * this.outSize);
    this.dInner = make(capacity * this.outSize);
  }

  forward(p: FloatArray, x: FloatArray, rows: number): void {
    const f = runForward(this.inner, p, x, rows);
    const n = rows * this.outSize;
    for (let i = 0; i < n; i++) this.out[i] = x[i]! + f[i]!;
  }

  backward(p: FloatArray, x: FloatArray, dx: FloatArray | null, g: FloatArray, rows: number): void {
    const n = rows * this.outSize;
    const last = this.inner[this.inner.length - 1]!;
    last.dOut.set(this.dOut.subarray(0, n));
    runBackward(this.inner, p, x, dx === null ? null : this.dInner, g, rows);
    if (dx === null) return;
    for (let i = 0; i < n; i++) dx[i] = this.dOut[i]! + this.dInner[i]!;
  }
}

function makeOp(node: PlanNode, offsets: TensorOffsets, capacity: number, make: MakeArray): Op {
  switch (node.op) {
    case 'dense':
      return new DenseOp(node, offsets, capacity, make);
    case 'conv2d':
      return new Conv2dOp(node, offsets, capacity, make);
    case 'maxpool2d':
    case 'avgpool2d':
      return new PoolOp(node, capacity, make);
    case 'flatten':
    case 'relu':
    case 'gelu':
      return new ElementwiseOp(node, capacity, make);
    case 'layernorm':
      return new LayerNormOp(node, offsets, capacity, make);
    case 'embedding':
      return new EmbeddingOp(node, offsets, capacity, make);
    case 'attention':
      return new AttentionOp(node, offsets, capacity, make);
    case 'residual':
      return new ResidualOp(node, offsets, capacity, make);
  }
}

/** What one pass over a batch scored: summed loss and correct argmaxes over scored positions. */
export interface LayersScore {
  readonly lossSum: number;
  readonly correct: number;
  /** Scored positions: rows for `classify`, rows × positions for `next-token`. */
  readonly scored: number;
}

export class LayersNetwork {
  readonly capacity: number;
  private readonly ops: Op[];
  /** `next-token`: the first `positions` tokens of each sample, the model's input. */
  private readonly tokens: FloatArray;

  /**
   * `offsets[i]` is where plan tensor i starts in the flat parameter vector. `make` allocates
   * the workspaces (default Float32Array).
   */
  constructor(
    readonly plan: LayersPlan,
    offsets: TensorOffsets,
    capacity: number,
    make: MakeArray = (n) => new Float32Array(n),
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.ops = plan.nodes.map((n) => makeOp(n, offsets, capacity, make));
    this.tokens = make(plan.loss === 'next-token' ? capacity * plan.inputShape[0]! : 0);
  }

  private input(x: FloatArray, rows: number): FloatArray {
    if (this.plan.loss !== 'next-token') return x;
    const t = this.plan.inputShape[0]!;
    for (let s = 0; s < rows; s++) {
      for (let i = 0; i < t; i++) this.tokens[s * t + i] = x[s * (t + 1) + i]!;
    }
    return this.tokens;
  }

  private checkRows(rows: number): void {
    if (!Number.isInteger(rows) || rows < 1 || rows > this.capacity) {
      throw new RangeError(`rows must be an integer in [1, ${this.capacity}], got ${rows}`);
    }
  }

  /** Logits of `rows` samples, `rows × scoredPositions × classes`; a view valid until next use. */
  forward(p: FloatArray, x: FloatArray, rows: number): FloatArray {
    this.checkRows(rows);
    const logits = runForward(this.ops, p, this.input(x, rows), rows);
    return logits.subarray(0, rows * this.plan.scoredPositions * this.plan.classes);
  }

  /** Target class of scored position r (0 ≤ r < rows × scoredPositions). */
  private target(x: FloatArray, labels: Uint32Array | null, r: number): number {
    if (this.plan.loss === 'classify') return labels![r]!;
    const t = this.plan.scoredPositions;
    return x[Math.floor(r / t) * (t + 1) + (r % t) + 1]!;
  }

  /**
   * Forward pass and score; when `dLogits` is set, also ∂(mean loss)/∂logits into the last op's
   * `dOut`. Per-position log-sum-exp in float64.
   */
  private score(
    p: FloatArray,
    x: FloatArray,
    labels: Uint32Array | null,
    rows: number,
    dLogits: boolean,
  ): LayersScore {
    const logits = this.forward(p, x, rows);
    const v = this.plan.classes;
    const scored = rows * this.plan.scoredPositions;
    const top = this.ops[this.ops.length - 1]!.dOut;
    const inv = 1 / scored;
    let lossSum = 0;
    let correct = 0;
    for (let r = 0; r < scored; r++) {
      const o = r * v;
      let m = -Infinity;
      let best = 0;
      for (let j = 0; j < v; j++) {
        if (logits[o + j]! > m) {
          m = logits[o + j]!;
          best = j;
        }
      }
      let sum = 0;
      for (let j = 0; j < v; j++) sum += Math.exp(logits[o + j]! - m);
      const lse = m + Math.log(sum);
      const label = this.target(x, labels, r);
      lossSum += lse - logits[o + label]!;
      if (best === label) correct++;
      if (dLogits) {
        for (let j = 0; j < v; j++) {
          const q = Math.exp(logits[o + j]! - lse);
          top[o + j] = (j === label ? q - 1 : q) * inv;
        }
      }
    }
    return { lossSum, correct, scored };
  }

  /** Mean loss over the scored positions of `rows` samples, and its gradient into `g`. */
  lossAndGradient(
    p: FloatArray,
    x: FloatArray,
    labels: Uint32Array | null,
    rows: number,
    g: FloatArray,
  ): number {
    const { lossSum, scored } = this.score(p, x, labels, rows, true);
    g.fill(0);
    runBackward(this.ops, p, this.input(x, rows), null, g, rows);
    return lossSum / scored;
  }

  /** Summed loss and correct predictions over the scored positions of `rows` samples. */
  evaluate(p: FloatArray, x: FloatArray, labels: Uint32Array | null, rows: number): LayersScore {
    return this.score(p, x, labels, rows, false);
  }
}
