/**
 * The Parzen-window test of the project's merge (DESIGN §3), per block: a peer block v is
 * accepted when the local step moves w toward it, 2·⟨g, w − v⟩ > η·‖g‖² (CpuBackend's exact
 * rule). Modes: 'hard' accepts or rejects; 'soft' weighs v by that margin ratio clamped to
 * [0, 1], so a peer just short of the window still counts a little; 'off' accepts every finite
 * block. Every mode rejects a block holding NaN or ±Infinity.
 */
export type ParzenMode = 'hard' | 'soft' | 'off';

export const PARZEN_MODES: readonly ParzenMode[] = ['hard', 'soft', 'off'];

/** Weight in [0, 1] of peer block `v` (indices `start`…`end` of w and g, 0… of v). */
export function parzenWeight(
  mode: ParzenMode,
  w: Float32Array,
  g: Float32Array,
  v: Float32Array,
  start: number,
  end: number,
  eta: number,
): number {
  let dot = 0;
  let gg = 0;
  let poison = 0;
  for (let i = start, t = 0; i < end; i++, t++) {
    const gi = g[i]!;
    dot += gi * (w[i]! - v[t]!);
    gg += gi * gi;
    poison += v[t]! * 0;
  }
  if (poison !== 0) return 0;
  if (mode === 'off') return 1;
  const threshold = eta * gg;
  if (mode === 'hard') return 2 * dot > threshold ? 1 : 0;
  return threshold > 0 ? Math.min(1, Math.max(0, (2 * dot) / threshold)) : 0;
}

/**
 * Writes the weight of block `start`…`end` of each peer state in `inbox` to `weights` (one entry
 * per peer) and returns their sum, accumulated in inbox order.
 */
export function parzenWeights(
  mode: ParzenMode,
  w: Float32Array,
  g: Float32Array,
  inbox: readonly Float32Array[],
  start: number,
  end: number,
  eta: number,
  weights: Float64Array,
): number {
  let total = 0;
  for (let r = 0; r < inbox.length; r++) {
    const a = parzenWeight(mode, w, g, inbox[r]!.subarray(start, end), start, end, eta);
    weights[r] = a;
    total += a;
  }
  return total;
}
