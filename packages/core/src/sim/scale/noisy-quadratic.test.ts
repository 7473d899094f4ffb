import { describe, expect, it } from 'vitest';
import { runIdealSync } from './ideal-sync.ts';
import { noisyQuadratic } from './noisy-quadratic.ts';

describe('noisyQuadratic', () => {
  const q = noisyQuadratic({ dims: 20, targetFraction: 0.05 });

  it('the simulated mean loss matches the closed form', () => {
    const steps = 30;
    const eta = 0.5;
    let sum = 0;
    const runs = 200;
    for (let seed = 1; seed <= runs; seed++) {
      const r = runIdealSync({
        workload: q,
        workers: 1,
        learningRate: eta,
        evalIntervalS: 1e9,
        maxTimeS: steps * (q.batchSize / 400),
        stopAtTarget: false,
        seed,
      });
      sum += r.finalQuality;
    }
    expect(sum / runs).toBeCloseTo(q.expectedLoss(steps, eta, q.batchSize), 2);
  });

  it('larger batches need fewer steps, never fewer than the noise-free limit', () => {
    const s16 = q.stepsToTarget(0.5, 16);
    const s1024 = q.stepsToTarget(0.5, 1024);
    expect(s1024).toBeLessThan(s16);
    expect(s1024).toBeGreaterThanOrEqual(q.stepsToTarget(0.5, 1e12));
    expect(q.stepsToTarget(2.5, 16)).toBe(Infinity); // η·h₁ > 2 diverges
  });
});
