/**
 * The float32 CPU backend: the reference for the WebGPU backend and the fallback for volunteers
 * without a hardware GPU (DESIGN §2, §7).
 */
import type { Batch } from '../data/dataset.ts';
import { encodeBlock, type EncodedBlock } from '../codec/encoded-block.ts';
import type { Backend, BackendStats, BlockRead, ReceivedBlock } from './backend.ts';
import { lossAndGradient, ModelScratch, validateBatch } from './math.ts';
import {
  checkMergeRule,
  hasOuterMomentum,
  PARZEN_MERGE_RULE,
  type MergeRule,
} from './merge-rule.ts';
import type { ParameterLayout } from './spec.ts';
import { blockRange, CUSTOM_MODEL_NEEDS_WEBGPU } from './spec.ts';

/**
 * `Backend` on the CPU, semantics exactly as documented on `Backend` (DESIGN §3). Choices the
 * WebGPU backend must mirror (it may differ only by float32 rounding):
 *
 * - η is rounded to float32 first, as if it came from a float32 uniform.
 * - The gradient g is taken at the current w (before any merge); the step's loss is the loss at w.
 * - Parzen test, per received block v of block k, against the same w_k and g_k for every peer:
 *   accept iff 2·⟨g_k, w_k − v⟩ > η·‖g_k‖², the differences, products and sums computed in
 *   float64 from the float32 inputs. A float32 running sum over a 16k-value block can be off by
 *   ~n·ε ≈ 1e-3 relative, enough to flip the verdict when the two sides are close; in float64
 *   the verdict is that of exact arithmetic except on near-ties (~1e-12 relative). A GPU
 *   reduction in float32 may therefore disagree on near-ties only. The inequality is strict, so
 *   a block whose gradient is all zero accepts nothing: its local step does not move, so it
 *   cannot move toward v.
 * - A peer block holding NaN or ±Infinity is rejected (it still counts as offered). That is
 *   what the unexpanded test ‖w' − v‖² < ‖w − v‖² gives (∞ < ∞ and NaN comparisons are false),
 *   and it keeps one broken peer from poisoning the model.
 * - Merge: w_k ← (w'_k + Σ accepted v) / (1 + accepted), with w'_k = w_k − η·g_k, summed in
 *   float64 in the order the blocks appear in `received`, rounded once to float32. Blocks with
 *   no accepted peer take w'_k, also computed in float64 and rounded once.
 * - The merge rule (`MergeRule`, default `PARZEN_MERGE_RULE`, the rule above) may instead
 *   average first, w_k ← (w_k + Σ accepted v) / (1 + accepted) − η·g_k (the mean in float64,
 *   then the step, rounded once), and may switch the Parzen test off (every finite block is
 *   accepted). Outer momentum runs after the merge of every `momentumPeriod`-th step, per
 *   parameter in float64 from the float32 anchor, displacement and w: a = anchor − w,
 *   d ← fround(β·d + a), w ← fround(anchor − d), anchor ← w. `writeParameters` restarts it
 *   (anchor = the new w, d = 0, the period counted from there).
 * - All inputs are validated before anything changes, so a call that throws leaves w as it was.
 */
export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly layout: ParameterLayout;
  private readonly params: Float32Array;
  private readonly gradient: Float32Array;
  private scratch: ModelScratch | null = null;
  /** Per block index: how many entries of the current `received` target it. */
  private readonly mailCount: Uint32Array;
  /** Reused per step: which entries of `received` passed the Parzen test. */
  private accepted = new Uint8Array(8);
  /** Reused per merged block: the float64 merge sums. */
  private readonly mergeSum: Float64Array;
  readonly merge: MergeRule;
  /** Outer momentum: the state at the last anchor and the displacement d; null when off. */
  private readonly anchor: Float32Array | null;
  private readonly displacement: Float32Array | null;
  /** Steps since the last anchor. */
  private sinceAnchor = 0;
  private losses: number[] = [];
  private offeredCount = 0;
  private acceptedCount = 0;
  private destroyed = false;
  /** Reads waiting for the next step (or drain). */
  private pendingReads: {
    readonly reads: readonly BlockRead[];
    readonly resolve: (blocks: (EncodedBlock | null)[]) => void;
    readonly reject: (err: Error) => void;
  }[] = [];

  /** Takes a copy of `params` (length `layout.size`). */
  constructor(
    layout: ParameterLayout,
    params: Float32Array,
    options: { readonly merge?: MergeRule } = {},
  ) {
    if (layout.spec.kind === 'custom') throw new RangeError(CUSTOM_MODEL_NEEDS_WEBGPU);
    this.layout = layout;
    checkLength(layout, params);
    this.merge = checkMergeRule(options.merge ?? PARZEN_MERGE_RULE);
    this.params = Float32Array.from(params);
    const momentum = hasOuterMomentum(this.merge);
    this.anchor = momentum ? Float32Array.from(params) : null;
    this.displacement = momentum ? new Float32Array(layout.size) : null;
    this.gradient = new Float32Array(layout.size);
    this.mailCount = new Uint32Array(layout.blockCount);
    this.mergeSum = new Float64Array(Math.min(layout.blockSize, layout.size));
  }

  step(batch: Batch, learningRate: number, received: readonly ReceivedBlock[] = []): void {
    this.checkAlive();
    if (!Number.isFinite(learningRate) || learningRate < 0) {
      throw new RangeError(`learningRate must be finite and non-negative, got ${learningRate}`);
    }
    validateBatch(this.layout, batch);
    this.mailCount.fill(0);
    for (let r = 0; r < received.length; r++) {
      const { block, values } = received[r]!;
      const { start, end } = blockRange(this.layout, block);
      if (values.length !== end - start) {
        throw new RangeError(
          `received[${r}] for block ${block} has ${values.length} values, expected ${end - start}`,
        );
      }
      this.mailCount[block]!++;
    }
    if (this.accepted.length < received.length) this.accepted = new Uint8Array(received.length);
    if (this.scratch === null || this.scratch.capacity < batch.size) {
      this.scratch = new ModelScratch(this.layout, batch.size);
    }

    const w = this.params;
    const g = this.gradient;
    this.losses.push(lossAndGradient(this.layout, w, batch, g, this.scratch));
    const eta = Math.fround(learningRate);

    const { blockSize, blockCount, size } = this.layout;
    const averageFirst = this.merge.order === 'average-then-step';
    const parzen = this.merge.parzen === 'hard';
    for (let k = 0; k < blockCount; k++) {
      const start = k * blockSize;
      const end = Math.min(start + blockSize, size);
      if (this.mailCount[k] === 0) {
        for (let i = start; i < end; i++) w[i] = w[i]! - eta * g[i]!;
        continue;
      }
      let gg = 0;
      for (let i = start; i < end; i++) gg += g[i]! * g[i]!;
      const threshold = eta * gg;
      let acceptedHere = 0;
      for (let r = 0; r < received.length; r++) {
        const peer = received[r]!;
        this.accepted[r] = 0;
        if (peer.block !== k) continue;
        this.offeredCount++;
        const v = peer.values;
        let dot = 0;
        // v·0 is 0 for finite v and NaN for ±Infinity or NaN: a cheap finiteness check.
        let poison = 0;
        for (let i = start, t = 0; i < end; i++, t++) {
          dot += g[i]! * (w[i]! - v[t]!);
          poison += v[t]! * 0;
        }
        if (poison === 0 && (!parzen || 2 * dot > threshold)) {
          this.accepted[r] = 1;
          acceptedHere++;
        }
      }
      this.acceptedCount += acceptedHere;
      if (acceptedHere === 0) {
        for (let i = start; i < end; i++) w[i] = w[i]! - eta * g[i]!;
        continue;
      }
      // Sum in float64 (w or w' first, then the accepted peers in `received` order), round once.
      const sum = this.mergeSum;
      for (let i = start, t = 0; i < end; i++, t++) {
        sum[t] = averageFirst ? w[i]! : w[i]! - eta * g[i]!;
      }
      for (let r = 0; r < received.length; r++) {
        if (this.accepted[r] !== 1) continue;
        const v = received[r]!.values;
        for (let t = 0; t < v.length; t++) sum[t] = sum[t]! + v[t]!;
      }
      const divisor = 1 + acceptedHere;
      if (averageFirst) {
        for (let i = start, t = 0; i < end; i++, t++) w[i] = sum[t]! / divisor - eta * g[i]!;
      } else {
        for (let i = start, t = 0; i < end; i++, t++) w[i] = sum[t]! / divisor;
      }
    }
    this.outerMomentum();
    this.settleReads();
  }

  /** Every `momentumPeriod`-th step: d ← β·d + (anchor − w), w ← anchor − d, anchor ← w. */
  private outerMomentum(): void {
    const anchor = this.anchor;
    const d = this.displacement;
    if (anchor === null || d === null) return;
    if (++this.sinceAnchor < this.merge.momentumPeriod) return;
    this.sinceAnchor = 0;
    const w = this.params;
    const beta = Math.fround(this.merge.momentum);
    for (let i = 0; i < w.length; i++) {
      const a = anchor[i]!;
      d[i] = beta * d[i]! + (a - w[i]!);
      w[i] = a - d[i]!;
      anchor[i] = w[i]!;
    }
  }

  drainStats(): Promise<BackendStats> {
    this.checkAlive();
    this.settleReads();
    const stats: BackendStats = {
      losses: this.losses,
      offered: this.offeredCount,
      accepted: this.acceptedCount,
    };
    this.losses = [];
    this.offeredCount = 0;
    this.acceptedCount = 0;
    return Promise.resolve(stats);
  }

  readParameters(): Promise<Float32Array> {
    this.checkAlive();
    return Promise.resolve(this.params.slice());
  }

  writeParameters(params: Float32Array): void {
    this.checkAlive();
    checkLength(this.layout, params);
    this.params.set(params);
    this.anchor?.set(params);
    this.displacement?.fill(0);
    this.sinceAnchor = 0;
  }

  readBlock(k: number): Promise<Float32Array> {
    this.checkAlive();
    const { start, end } = blockRange(this.layout, k);
    return Promise.resolve(this.params.slice(start, end));
  }

  readBlocksAfterStep(reads: readonly BlockRead[]): Promise<(EncodedBlock | null)[]> {
    this.checkAlive();
    for (const r of reads) blockRange(this.layout, r.block);
    return new Promise((resolve, reject) => this.pendingReads.push({ reads, resolve, reject }));
  }

  /** Answers the waiting reads from the parameters as they are now. */
  private settleReads(): void {
    const pending = this.pendingReads;
    this.pendingReads = [];
    for (const { reads, resolve } of pending) {
      resolve(
        reads.map(({ block, encoding }) => {
          const { start, end } = blockRange(this.layout, block);
          return encodeBlock(this.params.subarray(start, end), encoding);
        }),
      );
    }
  }

  destroy(): void {
    this.destroyed = true;
    this.scratch = null;
    for (const { reject } of this.pendingReads) reject(new Error('CpuBackend was destroyed'));
    this.pendingReads = [];
  }

  private checkAlive(): void {
    if (this.destroyed) throw new Error('CpuBackend was destroyed');
  }
}

function checkLength(layout: ParameterLayout, params: Float32Array): void {
  if (params.length !== layout.size) {
    throw new RangeError(
      `params has ${params.length} floats, expected layout.size = ${layout.size}`,
    );
  }
}
