/**
 * A merge strategy: how one worker combines its gradient with the peer states that arrived
 * since its last step. One strategy per file beside this one; the scaling simulator's worker
 * path calls `apply` once per step.
 */
import type { ParzenMode } from './parzen.ts';

export interface MergeInput {
  /** The worker's parameters, updated in place. */
  readonly w: Float32Array;
  /** Minibatch gradient at w (before any merge). */
  readonly g: Float32Array;
  readonly eta: number;
  /** Peer states received since the last step; read-only, shared with other receivers. */
  readonly inbox: readonly Float32Array[];
  /** The Parzen test runs per block of this many parameters. */
  readonly blockSize: number;
  /** Sender of each `inbox` entry (the link it came on); strategies that judge peers use it. */
  readonly from?: readonly number[];
}

/** One worker's merge, with whatever state it keeps between steps. */
export interface WorkerMerge {
  /** Applies the step; returns the summed weight of the peer blocks merged. */
  apply(input: MergeInput): number;
}

export interface MergeStrategy {
  /** Short name for tables, e.g. `step-then-average/hard`. */
  readonly name: string;
  readonly parzen: ParzenMode;
  /** The merge of worker `index` (strategies with per-worker state or statistics use it). */
  create(size: number, index?: number): WorkerMerge;
}
