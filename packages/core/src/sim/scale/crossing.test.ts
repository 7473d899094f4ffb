import { describe, expect, it } from 'vitest';
import { CrossingTracker } from './crossing.ts';

describe('CrossingTracker', () => {
  it('interpolates the crossing between two evaluations', () => {
    const t = new CrossingTracker(10, 2, false);
    t.record(1, 4);
    expect(t.crossingS).toBeNull();
    t.record(2, 1); // 4 → 1 crosses 2 two thirds of the way
    expect(t.crossingS).toBeCloseTo(1 + 2 / 3, 9);
    t.record(3, 0.5);
    expect(t.crossingS).toBeCloseTo(1 + 2 / 3, 9);
  });

  it('works for higher-is-better metrics', () => {
    const t = new CrossingTracker(0.1, 0.9, true);
    t.record(0.5, 0.8);
    t.record(1, 1);
    expect(t.crossingS).toBeCloseTo(0.75, 9);
  });
});
