import { describe, expect, it } from 'vitest';
import type { Dataset } from '../data/dataset.ts';
import { Rng } from '../util/rng.ts';
import { evaluate } from './evaluate.ts';
import { initParameters } from './init.ts';
import { batchLoss, predict } from './math.ts';
import { parameterLayout } from './spec.ts';

function randomDataset(count: number, features: number, classes: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: count * features }, () => rng.normal());
  const labels = classes > 0 ? Uint32Array.from({ length: count }, () => rng.int(classes)) : null;
  return { name: 'random', count, features, x, labels, classes };
}

describe('evaluate', () => {
  it('gives the mean loss and accuracy of a classifier over every chunk', () => {
    const layout = parameterLayout({ kind: 'mlp', inputs: 6, hidden: [8], classes: 4 });
    const params = initParameters(layout, 5);
    const data = randomDataset(1300, 6, 4, 5); // several evaluation chunks, the last one partial
    const result = evaluate(layout, params, data);
    const loss = batchLoss(layout, params, { size: data.count, x: data.x, labels: data.labels });
    expect(result.count).toBe(1300);
    expect(result.loss).toBeCloseTo(loss, 10);
    const predicted = predict(layout, params, data.x);
    const correct = predicted.filter((p, i) => p === data.labels![i]).length;
    expect(result.accuracy).toBe(correct / 1300);
    expect(result.objective).toBeUndefined();
  });

  it('gives the K-Means objective without the ½', () => {
    const layout = parameterLayout({ kind: 'kmeans', dims: 1, clusters: 2 });
    const data: Dataset = {
      name: 'points',
      count: 4,
      features: 1,
      x: Float32Array.from([0, 1, 9, 13]),
      labels: null,
      classes: 0,
    };
    const result = evaluate(layout, Float32Array.from([0, 10]), data);
    // Squared distances to the nearest centre: 0, 1, 1, 9.
    expect(result).toEqual({ loss: 11 / 8, objective: 11 / 4, count: 4 });
    expect(evaluate(layout, Float32Array.from([0, 10]), data, { limit: 2 }).objective).toBe(0.5);
  });

  it('rejects datasets that do not fit the model', () => {
    const layout = parameterLayout({ kind: 'softmax', inputs: 3, classes: 2 });
    const params = new Float32Array(layout.size);
    const data = randomDataset(10, 3, 2, 1);
    expect(() => evaluate(layout, params, { ...data, features: 4 })).toThrow(RangeError);
    expect(() => evaluate(layout, params, { ...data, labels: null })).toThrow(RangeError);
    expect(() =>
      evaluate(layout, params, { ...data, labels: new Uint32Array(10).fill(2) }),
    ).toThrow(RangeError);
    expect(() => evaluate(layout, params, data, { limit: 0 })).toThrow(RangeError);
    expect(() => evaluate(layout, new Float32Array(3), data)).toThrow(RangeError);
  });
});
