/** The benchmark model on a meshgrad `Backend` (CPU or WebGPU). */
import type { Backend, Batch } from '@meshgrad/core';
import type { TrainingSession } from './timing.ts';

/**
 * One meshgrad training session. `step` is the backend's whole ASGD step with no peer blocks
 * (forward, backward, SGD update); `drainStats` waits for queued device work and reads the
 * losses back, the counterpart of TF.js's `await loss.data()`.
 */
export function meshgradSession(
  backend: Backend,
  batches: readonly Batch[],
  learningRate: number,
): TrainingSession {
  return {
    step(index: number): void {
      const batch = batches[index];
      if (!batch) throw new RangeError(`no minibatch ${index}`);
      backend.step(batch, learningRate);
    },
    async sync(): Promise<number> {
      const stats = await backend.drainStats();
      return stats.losses.at(-1) ?? NaN;
    },
    dispose(): void {
      backend.destroy();
    },
  };
}
