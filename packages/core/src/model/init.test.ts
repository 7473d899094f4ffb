import { describe, expect, it } from 'vitest';
import { Rng } from '../util/rng.ts';
import { initParameters, KMEANS_SEEDING_ROWS } from './init.ts';
import { parameterLayout, tensorByName } from './spec.ts';

function moments(values: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const v of values) s += v;
  const mean = s / values.length;
  let q = 0;
  for (const v of values) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / values.length) };
}

describe('initParameters', () => {
  const mlp = parameterLayout({ kind: 'mlp', inputs: 400, hidden: [300, 200], classes: 10 });

  it('is reproducible from the seed', () => {
    expect(initParameters(mlp, 7)).toEqual(initParameters(mlp, 7));
    expect(initParameters(mlp, 7)).not.toEqual(initParameters(mlp, 8));
  });

  it('uses He-normal for hidden layers, Glorot-uniform for the output, zero biases', () => {
    const w = initParameters(mlp, 1);
    for (const [name, fanIn] of [
      ['dense0.weight', 400],
      ['dense1.weight', 300],
    ] as const) {
      const t = tensorByName(mlp, name);
      const { mean, std } = moments(w.subarray(t.offset, t.offset + t.size));
      expect(Math.abs(mean)).toBeLessThan(0.01 * Math.sqrt(2 / fanIn) * 10);
      expect(std / Math.sqrt(2 / fanIn)).toBeGreaterThan(0.97);
      expect(std / Math.sqrt(2 / fanIn)).toBeLessThan(1.03);
    }
    const out = tensorByName(mlp, 'dense2.weight');
    const values = w.subarray(out.offset, out.offset + out.size);
    const limit = Math.sqrt(6 / (200 + 10));
    expect(values.every((v) => Math.abs(v) <= limit)).toBe(true);
    expect(moments(values).std / (limit / Math.sqrt(3))).toBeGreaterThan(0.95);
    expect(moments(values).std / (limit / Math.sqrt(3))).toBeLessThan(1.05);
    for (const name of ['dense0.bias', 'dense1.bias', 'dense2.bias']) {
      const t = tensorByName(mlp, name);
      expect(w.subarray(t.offset, t.offset + t.size).every((v) => v === 0)).toBe(true);
    }
  });

  it('K-Means without data draws standard normal centres', () => {
    const layout = parameterLayout({ kind: 'kmeans', dims: 50, clusters: 100 });
    const { mean, std } = moments(initParameters(layout, 2));
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(std - 1)).toBeLessThan(0.03);
  });

  it('K-Means++ seeds one centre in each well-separated blob, from data rows', () => {
    const rng = new Rng(3);
    const blobs = [
      [0, 0],
      [100, 0],
      [0, 100],
      [100, 100],
      [50, 50],
    ];
    const count = 3 * KMEANS_SEEDING_ROWS; // more rows than seeding looks at
    const x = new Float32Array(count * 2);
    for (let i = 0; i < count; i++) {
      const b = blobs[i % blobs.length]!;
      x[2 * i] = b[0]! + rng.normal();
      x[2 * i + 1] = b[1]! + rng.normal();
    }
    const data = { name: 'blobs', count, features: 2, x, labels: null, classes: 0 };
    const layout = parameterLayout({ kind: 'kmeans', dims: 2, clusters: blobs.length });
    for (const seed of [1, 2, 3, 4]) {
      const c = initParameters(layout, seed, data);
      const rows = new Set<string>();
      for (let i = 0; i < count; i++) rows.add(`${x[2 * i]},${x[2 * i + 1]}`);
      const hit = new Set<number>();
      for (let j = 0; j < blobs.length; j++) {
        expect(rows.has(`${c[2 * j]},${c[2 * j + 1]}`)).toBe(true);
        const b = blobs.findIndex((p) => Math.hypot(p[0]! - c[2 * j]!, p[1]! - c[2 * j + 1]!) < 10);
        hit.add(b);
      }
      expect([...hit].sort()).toEqual([0, 1, 2, 3, 4]);
    }
  });

  it('K-Means++ copes with fewer distinct rows than clusters and checks the data', () => {
    const layout = parameterLayout({ kind: 'kmeans', dims: 2, clusters: 4 });
    const x = Float32Array.from([1, 1, 1, 1, 2, 2]);
    const data = { name: 'dupes', count: 3, features: 2, x, labels: null, classes: 0 };
    const c = initParameters(layout, 1, data);
    expect(c.every((v) => v === 1 || v === 2)).toBe(true);
    expect(new Set(c).size).toBe(2);
    expect(() => initParameters(layout, 1, { ...data, features: 3 })).toThrow(RangeError);
    expect(() => initParameters(layout, 1, { ...data, count: 0, x: new Float32Array(0) })).toThrow(
      RangeError,
    );
  });
});
