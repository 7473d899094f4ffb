/**
 * Today's rule (CpuBackend and the WGSL kernel): per block, w' = w − η·g, then
 * w ← (w' + Σ aᵢ·vᵢ) / (1 + Σ aᵢ) over the peer blocks vᵢ with Parzen weights aᵢ. The local
 * gradient's share of the result is η / (1 + Σ aᵢ): the more states a worker merges, the
 * smaller its own step. Scaling η by (1 + Σ aᵢ) undoes that and is exactly average-then-step.
 */
import { parzenWeights, type ParzenMode } from './parzen.ts';
import type { MergeInput, MergeStrategy, WorkerMerge } from './strategy.ts';

export function stepThenAverage(parzen: ParzenMode = 'hard'): MergeStrategy {
  return {
    name: `step-then-average/${parzen}`,
    parzen,
    create(size: number): WorkerMerge {
      const weights = new Float64Array(16);
      const sum = new Float64Array(size);
      return {
        apply({ w, g, eta, inbox, blockSize }: MergeInput): number {
          let merged = 0;
          for (let start = 0; start < w.length; start += blockSize) {
            const end = Math.min(start + blockSize, w.length);
            const total = parzenWeights(parzen, w, g, inbox, start, end, eta, weights);
            for (let i = start; i < end; i++) sum[i] = w[i]! - eta * g[i]!;
            if (total > 0) {
              for (let r = 0; r < inbox.length; r++) {
                const a = weights[r]!;
                if (a === 0) continue;
                const v = inbox[r]!;
                for (let i = start; i < end; i++) sum[i]! += a * v[i]!;
              }
            }
            const inv = 1 / (1 + total);
            for (let i = start; i < end; i++) w[i] = sum[i]! * inv;
            merged += total;
          }
          return merged;
        },
      };
    },
  };
}
