import { describe, expect, it } from 'vitest';
import { averageThenStep } from './average-then-step.ts';
import { outerMomentum } from './outer-momentum.ts';
import { parzenWeight } from './parzen.ts';
import { stepThenAverage } from './step-then-average.ts';

const w0 = () => Float32Array.from([1, 2]);
const g = Float32Array.from([1, -1]);
const eta = 0.5;

describe('merge strategies', () => {
  it("today's rule steps, then averages with the accepted peer", () => {
    const w = w0();
    const v = Float32Array.from([0, 3]); // toward the step: accepted
    stepThenAverage('hard')
      .create(2)
      .apply({ w, g, eta, inbox: [v], blockSize: 2 });
    // w' = (0.5, 2.5); mean with v = (0.25, 2.75)
    expect([...w]).toEqual([0.25, 2.75]);
  });

  it('average-then-step keeps the whole local step', () => {
    const w = w0();
    const v = Float32Array.from([0, 3]);
    averageThenStep('hard')
      .create(2)
      .apply({ w, g, eta, inbox: [v], blockSize: 2 });
    // mean(w, v) = (0.5, 2.5); minus η·g = (0, 3)
    expect([...w]).toEqual([0, 3]);
  });

  it('Parzen hard rejects a peer behind the step, soft weighs it, off takes it', () => {
    const w = w0();
    const behind = Float32Array.from([2, 1]); // 2⟨g, w − v⟩ = −4 < η‖g‖² = 1
    expect(parzenWeight('hard', w, g, behind, 0, 2, eta)).toBe(0);
    expect(parzenWeight('soft', w, g, behind, 0, 2, eta)).toBe(0);
    expect(parzenWeight('off', w, g, behind, 0, 2, eta)).toBe(1);
    const near = Float32Array.from([0.9, 2.1]); // 2⟨g, w − v⟩ = 0.4: inside the window
    expect(parzenWeight('hard', w, g, near, 0, 2, eta)).toBe(0);
    expect(parzenWeight('soft', w, g, near, 0, 2, eta)).toBeCloseTo(0.4, 6);
  });

  it('every mode rejects a peer block holding NaN or Infinity, and the state stays finite', () => {
    for (const mode of ['hard', 'soft', 'off'] as const) {
      expect(parzenWeight(mode, w0(), g, Float32Array.from([NaN, 0]), 0, 2, eta)).toBe(0);
      const w = w0();
      averageThenStep(mode)
        .create(2)
        .apply({ w, g, eta, inbox: [Float32Array.from([Infinity, 0])], blockSize: 2 });
      expect([...w]).toEqual([0.5, 2.5]);
    }
  });

  it('outer momentum with β = 0 is the inner strategy', () => {
    const plain = w0();
    const wrapped = w0();
    const inner = averageThenStep('off');
    const a = inner.create(2);
    const b = outerMomentum(inner, 0, 2).create(2);
    for (let s = 0; s < 4; s++) {
      a.apply({ w: plain, g, eta, inbox: [], blockSize: 2 });
      b.apply({ w: wrapped, g, eta, inbox: [], blockSize: 2 });
    }
    expect([...wrapped].map((x) => x.toFixed(5))).toEqual([...plain].map((x) => x.toFixed(5)));
  });
});
