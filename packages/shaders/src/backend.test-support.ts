/** Test support for the backend tests: peer blocks with verdicts far from ties. */
import type { ParameterLayout, ReceivedBlock } from '@meshgrad/core';

/**
 * Peers for block k built from the CPU backend's current w and gradient g:
 * v = w − a·η·g accepts iff a > ½ (2⟨g, a·η·g⟩ > η‖g‖²), so the verdicts are far from ties.
 */
export function peers(
  layout: ParameterLayout,
  w: Float32Array,
  g: Float32Array,
  eta: number,
  k: number,
  factors: readonly number[],
): ReceivedBlock[] {
  const start = k * layout.blockSize;
  const end = Math.min(start + layout.blockSize, layout.size);
  return factors.map((a) => ({
    block: k,
    values: Float32Array.from(
      { length: end - start },
      (_, t) => w[start + t]! - a * eta * g[start + t]!,
    ),
  }));
}
