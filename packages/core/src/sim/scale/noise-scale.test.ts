import { describe, expect, it } from 'vitest';
import { gradientNoiseScale } from './noise-scale.ts';
import { noisyQuadratic } from './noisy-quadratic.ts';

describe('gradientNoiseScale', () => {
  it('measures tr(Σ)/|G|² of the noisy quadratic, whose value is known', () => {
    const q = noisyQuadratic({ dims: 10 });
    const w = Float32Array.from({ length: 10 }, () => 0.5);
    let trace = 0;
    let norm = 0;
    for (let i = 0; i < 10; i++) {
      const h = q.curvatures[i]!;
      trace += h; // Σ = H per sample
      norm += (h * 0.5) ** 2;
    }
    const measured = gradientNoiseScale(q, w, 8_192).bSimple;
    expect(measured / (trace / norm)).toBeGreaterThan(0.9);
    expect(measured / (trace / norm)).toBeLessThan(1.1);
  });
});
