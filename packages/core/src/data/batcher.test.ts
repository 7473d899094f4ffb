import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.ts';
import { makeDataset, type Dataset } from './dataset.ts';

/** Row i holds [i, i + 0.5] and label i mod 4. */
function numbered(count: number, labelled = true): Dataset {
  const x = new Float32Array(count * 2);
  for (let i = 0; i < count; i++) x.set([i, i + 0.5], 2 * i);
  const labels = labelled ? Uint32Array.from({ length: count }, (_, i) => i % 4) : null;
  return makeDataset({ name: 'numbered', x, features: 2, labels });
}

/** Draws `batches` batches and returns the sample ids in order, checking each row is intact. */
function drawIds(batcher: Batcher, batches: number): number[] {
  const ids: number[] = [];
  for (let b = 0; b < batches; b++) {
    const batch = batcher.next();
    expect(batch.size).toBe(batcher.batchSize);
    for (let s = 0; s < batch.size; s++) {
      const id = batch.x[2 * s] as number;
      expect(batch.x[2 * s + 1]).toBe(id + 0.5);
      if (batch.labels) expect(batch.labels[s]).toBe(id % 4);
      ids.push(id);
    }
  }
  return ids;
}

describe('Batcher', () => {
  it('visits every sample once per epoch, in a new order each epoch', () => {
    const batcher = new Batcher(numbered(60), 12, 3);
    const first = drawIds(batcher, 5);
    expect(batcher.epoch).toBe(1);
    expect(batcher.samplesSeen).toBe(60);
    const second = drawIds(batcher, 5);
    expect(batcher.epoch).toBe(2);
    const all = Array.from({ length: 60 }, (_, i) => i);
    expect([...first].sort((a, b) => a - b)).toEqual(all);
    expect([...second].sort((a, b) => a - b)).toEqual(all);
    expect(second).not.toEqual(first);
    expect(first).not.toEqual(all);
  });

  it('fills batches across epoch boundaries when the size does not divide the count', () => {
    const count = 10;
    const batcher = new Batcher(numbered(count), 4, 11);
    const ids = drawIds(batcher, 5); // 20 samples: exactly two epochs
    expect(batcher.epoch).toBe(2);
    expect(batcher.samplesSeen).toBe(20);
    for (const epoch of [ids.slice(0, count), ids.slice(count)]) {
      expect([...epoch].sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i));
    }
    drawIds(batcher, 1);
    expect(batcher.epoch).toBe(2);
    const big = new Batcher(numbered(3), 8, 1);
    const repeated = drawIds(big, 1);
    expect(repeated).toHaveLength(8);
    expect(big.epoch).toBe(2);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const ds = numbered(50);
    const a = drawIds(new Batcher(ds, 7, 5), 20);
    expect(drawIds(new Batcher(ds, 7, 5), 20)).toEqual(a);
    expect(drawIds(new Batcher(ds, 7, 6), 20)).not.toEqual(a);
  });

  it('reuses one batch object and its buffers', () => {
    const batcher = new Batcher(numbered(20), 5, 1);
    const first = batcher.next();
    const { x, labels } = first;
    const firstId = x[0];
    const second = batcher.next();
    expect(second).toBe(first);
    expect(second.x).toBe(x);
    expect(second.labels).toBe(labels);
    expect(x[0]).not.toBe(firstId);
    expect(new Batcher(numbered(20, false), 5, 1).next().labels).toBeNull();
  });

  it('validates its arguments', () => {
    const ds = numbered(5);
    expect(() => new Batcher(ds, 0, 1)).toThrow(/batchSize/);
    expect(() => new Batcher(ds, 2.5, 1)).toThrow(/batchSize/);
    expect(() => new Batcher(ds, 2, 0.5)).toThrow(/seed/);
  });
});
