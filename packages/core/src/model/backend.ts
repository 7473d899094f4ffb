import type { EncodedBlock } from '../codec/encoded-block.ts';
import type { Encoding } from '../codec/encoding.ts';
import type { Batch } from '../data/dataset.ts';
import type { ParameterLayout } from './spec.ts';

/** A peer's copy of one parameter block, waiting in the local mailbox (DESIGN §3 step 5). */
export interface ReceivedBlock {
  /** Block index k. */
  readonly block: number;
  /** The peer's values for block k, already decoded to float32; length = block length. */
  readonly values: Float32Array;
}

/** A block to read for a send, and the encoding it goes out in. */
export interface BlockRead {
  readonly block: number;
  readonly encoding: Encoding;
}

/** What a backend accumulated since the last `drainStats()`. */
export interface BackendStats {
  /** Mean minibatch loss of each step, in order. */
  readonly losses: number[];
  /** Peer blocks offered to the Parzen test. */
  readonly offered: number;
  /** Peer blocks that passed it and were merged. */
  readonly accepted: number;
}

/**
 * Owns a model's parameters on its device and trains them (DESIGN §2, §3).
 *
 * `step` does one ASGD iteration by the backend's merge rule (`MergeRule`, DESIGN §3.1): the
 * minibatch gradient g at the current w; for every block k, which received peer blocks v count
 * (with the Parzen test, accept v iff ‖w'_k − v‖² < ‖w_k − v‖², with w' = w − η·g, i.e. iff
 * 2·⟨g_k, w_k − v⟩ > η·‖g_k‖²; without it, every finite v); then the merge, step-then-average
 * w_k ← (w'_k + Σ accepted v) / (1 + number accepted) or average-then-step
 * w_k ← (w_k + Σ accepted v) / (1 + number accepted) − η·g_k; and the rule's outer momentum.
 * Blocks without accepted peers take w'_k.
 *
 * Nothing is read back per step: losses and acceptance counts come back in batches through
 * `drainStats()`.
 */
export interface Backend {
  readonly name: 'cpu' | 'webgpu';
  readonly layout: ParameterLayout;
  /**
   * One training step on `batch` with learning rate `learningRate`, merging `received` peer
   * blocks (default none). At most a few blocks per block index; each is tested on its own.
   */
  step(batch: Batch, learningRate: number, received?: readonly ReceivedBlock[]): void;
  /** Losses and merge counts since the previous call. Waits for queued device work. */
  drainStats(): Promise<BackendStats>;
  /** A copy of the whole parameter vector. */
  readParameters(): Promise<Float32Array>;
  /** Replaces the whole parameter vector (length must equal `layout.size`). */
  writeParameters(params: Float32Array): void;
  /** A copy of block k, read now (its own device round trip). */
  readBlock(k: number): Promise<Float32Array>;
  /**
   * Blocks for a send, as they stand after the next `step` (or the next `drainStats`, should
   * that come first), encoded as asked: one result per read, in order, null for an int8 read of
   * a block holding NaN or ±Infinity. Does not wait: the WebGPU backend copies (and encodes)
   * them inside that step's own command buffer into one staging buffer, mapped once; the
   * promise resolves when the device is done with that step. Throws a RangeError for a bad
   * block index before anything is queued.
   */
  readBlocksAfterStep(reads: readonly BlockRead[]): Promise<(EncodedBlock | null)[]>;
  /** Releases device resources. The backend is unusable afterwards. */
  destroy(): void;
}
