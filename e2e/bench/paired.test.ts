import { describe, expect, it } from 'vitest';
import { pairedRatio } from './paired.ts';

describe('pairedRatio', () => {
  it('takes the median of the per-round ratios, not the ratio of medians', () => {
    // Round 3 ran under load for both: its pair still gives 1.
    const r = pairedRatio([10, 20, 1], [5, 10, 1]);
    expect(r?.median).toBe(2);
    expect(r?.interval).toBeNull();
  });

  it('gives the 2nd and 8th of 9 sorted ratios as the 95% interval (96.1% coverage)', () => {
    const a = [9, 1, 8, 2, 7, 3, 6, 4, 5];
    const r = pairedRatio(a, Array<number>(9).fill(1));
    expect(r).toEqual({ median: 5, interval: [2, 8], rounds: 9 });
  });

  it('refuses rounds that do not pair up', () => {
    expect(pairedRatio([1, 2], [1])).toBeNull();
    expect(pairedRatio([1], [0])).toBeNull();
  });
});
