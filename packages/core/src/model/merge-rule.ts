/**
 * How a backend's step combines its gradient with the peer blocks that arrived (DESIGN §3.1).
 * One rule for `CpuBackend` and the WebGPU backend alike; the kernel checks keep them equal.
 */

/**
 * - `order`: `average-then-step` takes the mean of the local block and the accepted peer
 *   blocks, then the whole local step, w ← (w + Σ v) / (1 + n) − η·g (decentralised gossip SGD);
 *   `step-then-average` steps first and then averages, w ← (w − η·g + Σ v) / (1 + n) (the
 *   project's first rule, after Keuper & Pfreundt).
 * - `parzen`: `hard` accepts a peer block only when the local step moves toward it,
 *   2·⟨g, w − v⟩ > η·‖g‖²; `off` accepts every finite block. Both reject a block holding NaN or
 *   ±Infinity (it still counts as offered). The receive path's norm bound (§3.3) stands in front
 *   of either.
 * - `momentum`, `momentumPeriod`: outer momentum on the merged state (SlowMo, Wang et al. 2020):
 *   every `momentumPeriod` steps the worker takes its move since the last anchor, a = anchor − w,
 *   keeps d ← β·d + a and restarts from w ← anchor − d, the new anchor. β = 0 is off. d is kept
 *   in parameter units rather than as a pseudo-gradient a / η, so the rule needs no division by
 *   η and is the same as the simulator's for a fixed η.
 */
export interface MergeRule {
  readonly order: 'average-then-step' | 'step-then-average';
  readonly parzen: 'hard' | 'off';
  /** β in [0, 1). */
  readonly momentum: number;
  /** Steps between two outer-momentum updates (≥ 1). */
  readonly momentumPeriod: number;
}

export const MERGE_ORDERS = ['average-then-step', 'step-then-average'] as const;
export const MERGE_PARZEN_MODES = ['hard', 'off'] as const;

/**
 * The rule the scaling benchmark found closest to ideal synchronous SGD (DESIGN §3.7):
 * average-then-step, the Parzen test off, outer momentum 0.5 every 4 steps. A job opts in with
 * `training.merge`; it is not the default, because in browsers and against attackers it
 * measured worse (§3.7, §8.1).
 */
export const SCALING_MERGE_RULE: MergeRule = Object.freeze({
  order: 'average-then-step',
  parzen: 'off',
  momentum: 0.5,
  momentumPeriod: 4,
});

/**
 * The first rule (step-then-average, Parzen test hard, no momentum): a backend's default and a
 * job's default.
 */
export const PARZEN_MERGE_RULE: MergeRule = Object.freeze({
  order: 'step-then-average',
  parzen: 'hard',
  momentum: 0,
  // Unused without momentum; the scaling rule's, so that switching momentum on needs one field.
  momentumPeriod: 4,
});

/** Throws a RangeError naming the field that is out of range. */
export function checkMergeRule(rule: MergeRule): MergeRule {
  if (!MERGE_ORDERS.includes(rule.order)) {
    throw new RangeError(
      `merge order must be one of ${MERGE_ORDERS.join(', ')}, got ${rule.order}`,
    );
  }
  if (!MERGE_PARZEN_MODES.includes(rule.parzen)) {
    throw new RangeError(
      `merge parzen must be one of ${MERGE_PARZEN_MODES.join(', ')}, got ${rule.parzen}`,
    );
  }
  if (!(rule.momentum >= 0 && rule.momentum < 1)) {
    throw new RangeError(`merge momentum must be in [0, 1), got ${rule.momentum}`);
  }
  if (!Number.isInteger(rule.momentumPeriod) || rule.momentumPeriod < 1) {
    throw new RangeError(
      `merge momentumPeriod must be a positive integer, got ${rule.momentumPeriod}`,
    );
  }
  return rule;
}

/** Whether the rule keeps outer-momentum state (an anchor and a displacement per parameter). */
export function hasOuterMomentum(rule: MergeRule): boolean {
  return rule.momentum > 0;
}
