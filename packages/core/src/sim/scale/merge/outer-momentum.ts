/**
 * Outer momentum on the merged state (SlowMo, Wang et al. 2020; DiLoCo, Douillard et al. 2023):
 * every `period` steps of an inner strategy, the worker treats its move since the last anchor
 * as a pseudo-gradient d = (anchor − w) / η, keeps u ← β·u + d, and restarts from
 * anchor ← anchor − η·u. With β = 0 this is the inner strategy unchanged.
 */
import type { MergeInput, MergeStrategy, WorkerMerge } from './strategy.ts';

export function outerMomentum(inner: MergeStrategy, beta = 0.5, period = 4): MergeStrategy {
  return {
    name: `${inner.name}+momentum(${beta},${period})`,
    parzen: inner.parzen,
    create(size: number, index?: number): WorkerMerge {
      const base = inner.create(size, index);
      let anchor: Float32Array | null = null;
      const u = new Float64Array(size);
      let steps = 0;
      return {
        apply(input: MergeInput): number {
          const { w, eta } = input;
          if (anchor === null) anchor = Float32Array.from(w);
          const merged = base.apply(input);
          if (++steps % period === 0) {
            for (let i = 0; i < size; i++) {
              u[i] = beta * u[i]! + (anchor[i]! - w[i]!) / eta;
              anchor[i] = anchor[i]! - eta * u[i]!;
              w[i] = anchor[i]!;
            }
          }
          return merged;
        },
      };
    },
  };
}
