import { describe, expect, it } from 'vitest';
import { gaussianClusters, kmeansObjective } from './clusters.ts';
import { makeDataset } from './dataset.ts';

function minPairDistance(centres: Float32Array, clusters: number, dims: number): number {
  let min = Infinity;
  for (let a = 0; a < clusters; a++) {
    for (let b = a + 1; b < clusters; b++) {
      let sum = 0;
      for (let d = 0; d < dims; d++) {
        const diff = (centres[a * dims + d] as number) - (centres[b * dims + d] as number);
        sum += diff * diff;
      }
      min = Math.min(min, Math.sqrt(sum));
    }
  }
  return min;
}

describe('gaussianClusters', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const options = { clusters: 5, dims: 3, count: 200, seed: 42 };
    const a = gaussianClusters(options);
    const b = gaussianClusters(options);
    const c = gaussianClusters({ ...options, seed: 43 });
    expect(Array.from(b.dataset.x)).toEqual(Array.from(a.dataset.x));
    expect(Array.from(b.centres)).toEqual(Array.from(a.centres));
    expect(Array.from(b.dataset.labels ?? [])).toEqual(Array.from(a.dataset.labels ?? []));
    expect(Array.from(c.centres)).not.toEqual(Array.from(a.centres));
  });

  it('has the requested shape, balanced labels and well separated centres', () => {
    const clusters = 7;
    const dims = 4;
    const { dataset, centres } = gaussianClusters({ clusters, dims, count: 1_003, spread: 0.5 });
    expect(dataset.count).toBe(1_003);
    expect(dataset.features).toBe(dims);
    expect(dataset.classes).toBe(clusters);
    expect(centres.length).toBe(clusters * dims);
    const sizes = new Array<number>(clusters).fill(0);
    for (const label of dataset.labels ?? []) sizes[label] = (sizes[label] ?? 0) + 1;
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(minPairDistance(centres, clusters, dims)).toBeGreaterThanOrEqual(8 * 0.5);
    // Samples are shuffled, not grouped by cluster.
    expect(new Set(dataset.labels?.subarray(0, 30)).size).toBeGreaterThan(3);
  });

  it('scatters samples around their centre with the requested spread', () => {
    const clusters = 3;
    const dims = 2;
    const spread = 2;
    const { dataset, centres } = gaussianClusters({
      clusters,
      dims,
      count: 30_000,
      spread,
      seed: 9,
    });
    const sums = new Float64Array(clusters * dims);
    const squares = new Float64Array(clusters * dims);
    const sizes = new Float64Array(clusters);
    let misassigned = 0;
    for (let i = 0; i < dataset.count; i++) {
      const label = dataset.labels?.[i] as number;
      sizes[label] = (sizes[label] as number) + 1;
      for (let d = 0; d < dims; d++) {
        const offset = (dataset.x[i * dims + d] as number) - (centres[label * dims + d] as number);
        sums[label * dims + d] = (sums[label * dims + d] as number) + offset;
        squares[label * dims + d] = (squares[label * dims + d] as number) + offset * offset;
      }
      // With the default separation of 8·spread the nearest centre is almost always the true one.
      let best = -1;
      let bestDistance = Infinity;
      for (let j = 0; j < clusters; j++) {
        let distance = 0;
        for (let d = 0; d < dims; d++) {
          distance +=
            ((dataset.x[i * dims + d] as number) - (centres[j * dims + d] as number)) ** 2;
        }
        if (distance < bestDistance) [best, bestDistance] = [j, distance];
      }
      if (best !== label) misassigned++;
    }
    for (let k = 0; k < clusters; k++) {
      const n = sizes[k] as number;
      for (let d = 0; d < dims; d++) {
        const mean = (sums[k * dims + d] as number) / n;
        const variance = (squares[k * dims + d] as number) / n - mean * mean;
        expect(Math.abs(mean)).toBeLessThan((5 * spread) / Math.sqrt(n));
        expect(Math.abs(variance / (spread * spread) - 1)).toBeLessThan(0.08);
      }
    }
    expect(misassigned / dataset.count).toBeLessThan(0.001);
  });

  it('still places crowded centres, growing the box when needed', () => {
    const { centres } = gaussianClusters({ clusters: 60, dims: 1, count: 60, minSeparation: 5 });
    expect(minPairDistance(centres, 60, 1)).toBeGreaterThanOrEqual(5);
  });

  it('rejects invalid options', () => {
    expect(() => gaussianClusters({ clusters: 0, dims: 2, count: 10 })).toThrow(RangeError);
    expect(() => gaussianClusters({ clusters: 2, dims: 1.5, count: 10 })).toThrow(/dims/);
    expect(() => gaussianClusters({ clusters: 2, dims: 2, count: 10, spread: -1 })).toThrow(
      /spread/,
    );
  });
});

describe('kmeansObjective', () => {
  it('is the mean squared distance to the nearest centre', () => {
    const centres = new Float32Array([0, 0, 10, 0]);
    const x = new Float32Array([1, 0, 9, 0, 0, 2, 10, 3]);
    const ds = makeDataset({ name: 't', x, features: 2 });
    expect(kmeansObjective(centres, 2, 2, ds)).toBeCloseTo((1 + 1 + 4 + 9) / 4, 10);
  });

  it('is about dims·spread² at the true centres and larger elsewhere', () => {
    const dims = 5;
    const spread = 0.7;
    const { dataset, centres } = gaussianClusters({ clusters: 4, dims, count: 4_000, spread });
    const atTruth = kmeansObjective(centres, 4, dims, dataset);
    expect(Math.abs(atTruth / (dims * spread * spread) - 1)).toBeLessThan(0.06);
    const shifted = centres.map((v) => v + 1);
    expect(kmeansObjective(shifted, 4, dims, dataset)).toBeGreaterThan(atTruth + 1);
    expect(() => kmeansObjective(centres, 3, dims, dataset)).toThrow(RangeError);
  });
});
