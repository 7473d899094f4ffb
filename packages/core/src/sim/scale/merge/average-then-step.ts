/**
 * Average, then take the whole local step: per block,
 * w ← (w + Σ aᵢ·vᵢ) / (1 + Σ aᵢ) − η·g, with the Parzen weights aᵢ judged against w and g
 * as in today's rule. The gradient keeps its full step however many states are merged, which
 * is decentralised gossip SGD (Lian et al. 2017, "Can Decentralized Algorithms Outperform
 * Centralized Algorithms?").
 */
import { parzenWeights, type ParzenMode } from './parzen.ts';
import type { MergeInput, MergeStrategy, WorkerMerge } from './strategy.ts';

export function averageThenStep(parzen: ParzenMode = 'hard'): MergeStrategy {
  return {
    name: `average-then-step/${parzen}`,
    parzen,
    create(): WorkerMerge {
      const weights = new Float64Array(16);
      return {
        apply({ w, g, eta, inbox, blockSize }: MergeInput): number {
          let merged = 0;
          for (let start = 0; start < w.length; start += blockSize) {
            const end = Math.min(start + blockSize, w.length);
            const total = parzenWeights(parzen, w, g, inbox, start, end, eta, weights);
            const inv = 1 / (1 + total);
            for (let i = start; i < end; i++) {
              let s = w[i]!;
              for (let r = 0; r < inbox.length; r++) {
                const a = weights[r]!;
                if (a !== 0) s += a * inbox[r]![i]!;
              }
              w[i] = s * inv - eta * g[i]!;
            }
            merged += total;
          }
          return merged;
        },
      };
    },
  };
}
