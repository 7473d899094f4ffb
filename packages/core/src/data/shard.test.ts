import { describe, expect, it } from 'vitest';
import { makeDataset, type Dataset } from './dataset.ts';
import { shardDataset, shardIndices } from './shard.ts';

/** Row i holds [i, -i] and label i mod 3, so every shard row names its source sample. */
function numbered(count: number): Dataset {
  const x = new Float32Array(count * 2);
  for (let i = 0; i < count; i++) x.set([i, -i], 2 * i);
  const labels = Uint32Array.from({ length: count }, (_, i) => i % 3);
  return makeDataset({ name: 'numbered', x, features: 2, labels, classes: 5 });
}

describe('shardIndices / shardDataset', () => {
  it('cuts disjoint, balanced shards that cover every sample', () => {
    for (const [count, shardCount] of [
      [1, 1],
      [10, 3],
      [100, 7],
      [1_003, 10],
      [64, 64],
    ] as const) {
      const ds = numbered(count);
      const seen = new Uint8Array(count);
      const sizes: number[] = [];
      for (let s = 0; s < shardCount; s++) {
        const shard = shardDataset(ds, s, shardCount, 99);
        expect(shard.name).toBe(`numbered/shard-${s}-of-${shardCount}`);
        expect(shard.features).toBe(2);
        expect(shard.classes).toBe(5);
        sizes.push(shard.count);
        for (let r = 0; r < shard.count; r++) {
          const sample = shard.x[2 * r] as number;
          expect(shard.x[2 * r + 1]).toBe(-sample);
          expect(shard.labels?.[r]).toBe(sample % 3);
          seen[sample] = (seen[sample] as number) + 1;
        }
      }
      expect(Array.from(seen).every((n) => n === 1)).toBe(true);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });

  it('is deterministic for a seed, and a different seed gives a different cut', () => {
    const a = shardIndices(500, 2, 5, 7);
    expect(Array.from(shardIndices(500, 2, 5, 7))).toEqual(Array.from(a));
    expect(Array.from(shardIndices(500, 2, 5, 8))).not.toEqual(Array.from(a));
    // Shuffled, not a contiguous block of the original order.
    const sorted = Array.from(a).sort((x, y) => x - y);
    expect((sorted.at(-1) as number) - (sorted[0] as number)).toBeGreaterThan(a.length);
  });

  it('validates its arguments', () => {
    expect(() => shardIndices(10, 0, 0, 1)).toThrow(/shardCount/);
    expect(() => shardIndices(10, 0, 11, 1)).toThrow(/non-empty/);
    expect(() => shardIndices(10, 3, 3, 1)).toThrow(/shardIndex/);
    expect(() => shardIndices(10, -1, 3, 1)).toThrow(/shardIndex/);
    expect(() => shardIndices(10, 0.5, 3, 1)).toThrow(/shardIndex/);
    expect(() => shardIndices(10, 0, 2.5, 1)).toThrow(/shardCount/);
    expect(() => shardIndices(10, 0, 2, Number.NaN)).toThrow(/seed/);
  });
});
