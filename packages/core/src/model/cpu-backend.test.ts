import { describe, expect, it } from 'vitest';
import type { Batch } from '../data/dataset.ts';
import { Rng } from '../util/rng.ts';
import type { ReceivedBlock } from './backend.ts';
import { CpuBackend } from './cpu-backend.ts';
import { evaluate } from './evaluate.ts';
import { initParameters } from './init.ts';
import { lossAndGradient } from './math.ts';
import type { ModelSpec } from './spec.ts';
import { blockRange, parameterLayout } from './spec.ts';

/**
 * Two K-Means centres in 4 dims, one per block, so each block's gradient is easy to write down:
 * g_j = (1/B)·Σ_{i nearest j} (c_j − x_i).
 */
const twoCentres = parameterLayout({ kind: 'kmeans', dims: 4, clusters: 2 }, 4);
const near = (value: number) => Float32Array.from([value, value, value, value]);
const unlabelled = (...rows: number[]): Batch => ({
  size: rows.length,
  x: Float32Array.from(rows.flatMap((v) => [v, v, v, v])),
  labels: null,
});

/** The Parzen test in its unexpanded form, float64: does the local step move toward v? */
function movesToward(w: Float32Array, wNext: Float64Array, v: Float32Array): boolean {
  let before = 0;
  let after = 0;
  for (let i = 0; i < v.length; i++) {
    before += (w[i]! - v[i]!) ** 2;
    after += (wNext[i]! - v[i]!) ** 2;
  }
  return after < before;
}

describe('CpuBackend Parzen test and merge', () => {
  it('accepts a block the step moves toward and averages it in', async () => {
    // c0 = 1 pulls toward x = 0: g0 = 1 per coordinate; w'0 = 1 − 0.5 = 0.5.
    const backend = new CpuBackend(twoCentres, Float32Array.from([...near(1), ...near(10)]));
    backend.step(unlabelled(0), 0.5, [{ block: 0, values: near(0) }]);
    expect(Array.from(await backend.readBlock(0))).toEqual(Array.from(near((0.5 + 0) / 2)));
    // Block 1 had no gradient and no mail: unchanged.
    expect(Array.from(await backend.readBlock(1))).toEqual(Array.from(near(10)));
    expect(await backend.drainStats()).toEqual({ losses: [0.5 * 4], offered: 1, accepted: 1 });
  });

  it('rejects a block the step moves away from, and the exact tie', async () => {
    for (const v of [2, 0.75]) {
      // v = 2 lies behind w; v = 0.75 is equidistant from w = 1 and w' = 0.5 (strict test).
      const backend = new CpuBackend(twoCentres, Float32Array.from([...near(1), ...near(10)]));
      expect(movesToward(near(1), Float64Array.from(near(0.5)), near(v))).toBe(false);
      backend.step(unlabelled(0), 0.5, [{ block: 0, values: near(v) }]);
      expect(Array.from(await backend.readBlock(0))).toEqual(Array.from(near(0.5)));
      expect(await backend.drainStats()).toMatchObject({ offered: 1, accepted: 0 });
    }
    // Just past the tie it is accepted.
    const backend = new CpuBackend(twoCentres, Float32Array.from([...near(1), ...near(10)]));
    backend.step(unlabelled(0), 0.5, [{ block: 0, values: near(0.74) }]);
    expect(await backend.drainStats()).toMatchObject({ offered: 1, accepted: 1 });
  });

  it('accepts nothing on a block whose gradient is zero', async () => {
    const backend = new CpuBackend(twoCentres, Float32Array.from([...near(1), ...near(10)]));
    backend.step(unlabelled(0), 0.5, [{ block: 1, values: near(9) }]);
    expect(Array.from(await backend.readBlock(1))).toEqual(Array.from(near(10)));
    expect(await backend.drainStats()).toMatchObject({ offered: 1, accepted: 0 });
  });

  it('merges several peers on one block and leaves blocks without mail at w′', async () => {
    // Samples 0 → centre 0 and 11 → centre 1; B = 2, so g0 = (1 − 0)/2, g1 = (10 − 11)/2.
    const backend = new CpuBackend(twoCentres, Float32Array.from([...near(1), ...near(10)]));
    const received: ReceivedBlock[] = [
      { block: 0, values: near(0.2) }, // toward x: accepted
      { block: 0, values: near(3) }, // away: rejected
      { block: 0, values: near(-0.4) }, // toward: accepted
    ];
    backend.step(unlabelled(0, 11), 0.4, received);
    const eta = Math.fround(0.4);
    const w0next = 1 - eta * 0.5;
    const block0 = await backend.readBlock(0);
    const expected = Math.fround((w0next + Math.fround(0.2) + Math.fround(-0.4)) / 3);
    for (const v of block0) expect(v).toBe(expected);
    const block1 = await backend.readBlock(1);
    for (const v of block1) expect(v).toBe(Math.fround(10 - eta * -0.5));
    expect(await backend.drainStats()).toMatchObject({ offered: 3, accepted: 2 });
  });

  it('matches the unexpanded definition on random models with many short blocks', async () => {
    const spec: ModelSpec = { kind: 'mlp', inputs: 6, hidden: [5], classes: 3 };
    const layout = parameterLayout(spec, 7); // 53 floats: 8 blocks, the last one 4 long
    expect(layout.size % layout.blockSize).not.toBe(0);
    const rng = new Rng(77);
    let accepted = 0;
    let rejected = 0;
    for (let trial = 0; trial < 20; trial++) {
      const w = initParameters(layout, trial);
      const backend = new CpuBackend(layout, w);
      const batch: Batch = {
        size: 4,
        x: Float32Array.from({ length: 24 }, () => rng.normal()),
        labels: Uint32Array.from({ length: 4 }, () => rng.int(3)),
      };
      const eta = 0.3;
      const g = new Float32Array(layout.size);
      lossAndGradient(layout, w, batch, g);
      const wNext = Float64Array.from(w, (wi, i) => wi - Math.fround(eta) * g[i]!);
      // Peers near w' (some toward, some away), several per block, some blocks without mail.
      const received: ReceivedBlock[] = [];
      for (let k = 0; k < layout.blockCount; k++) {
        const { start, end } = blockRange(layout, k);
        const peers = rng.int(3);
        for (let p = 0; p < peers; p++) {
          const values = Float32Array.from(
            { length: end - start },
            (_, t) =>
              w[start + t]! + 0.3 * (rng.next() - 0.5) - 2 * eta * g[start + t]! * rng.next(),
          );
          received.push({ block: k, values });
        }
      }
      backend.step(batch, eta, received);
      const got = await backend.readParameters();
      for (let k = 0; k < layout.blockCount; k++) {
        const { start, end } = blockRange(layout, k);
        const mine = received.filter((r) => r.block === k);
        const ok = mine.filter((r) =>
          movesToward(w.subarray(start, end), wNext.subarray(start, end), r.values),
        );
        accepted += ok.length;
        rejected += mine.length - ok.length;
        for (let i = start; i < end; i++) {
          const sum = ok.reduce((s, r) => s + r.values[i - start]!, wNext[i]!);
          expect(got[i]).toBeCloseTo(sum / (1 + ok.length), 6);
        }
      }
    }
    // The construction exercises both outcomes.
    expect(accepted).toBeGreaterThan(10);
    expect(rejected).toBeGreaterThan(10);
  });

  it('rejects peer blocks holding NaN or Infinity', async () => {
    const backend = new CpuBackend(twoCentres, Float32Array.from([...near(1), ...near(10)]));
    const bad = [Float32Array.from([0, 0, 0, NaN]), Float32Array.from([0, -Infinity, 0, 0])];
    backend.step(
      unlabelled(0),
      0.5,
      bad.map((values) => ({ block: 0, values })),
    );
    expect(Array.from(await backend.readBlock(0))).toEqual(Array.from(near(0.5)));
    expect(await backend.drainStats()).toMatchObject({ offered: 2, accepted: 0 });
  });

  it('drains losses and counts once', async () => {
    const backend = new CpuBackend(twoCentres, Float32Array.from([...near(1), ...near(10)]));
    backend.step(unlabelled(0), 0.5, [{ block: 0, values: near(0) }]);
    backend.step(unlabelled(0), 0, [{ block: 0, values: near(5) }]);
    const stats = await backend.drainStats();
    expect(stats.losses.length).toBe(2);
    expect(stats.losses[0]).toBe(2); // ½·‖1 − 0‖² over 4 dims
    expect(stats.losses[1]).toBeCloseTo(0.5 * 4 * 0.25 ** 2, 12); // after merge w = 0.25
    expect(stats).toMatchObject({ offered: 2, accepted: 1 });
    expect(await backend.drainStats()).toEqual({ losses: [], offered: 0, accepted: 0 });
  });

  it('validates inputs and leaves state unchanged when a step throws', async () => {
    const layout = parameterLayout({ kind: 'softmax', inputs: 3, classes: 2 }, 5); // 8 floats, 2 blocks
    const w = initParameters(layout, 3);
    const backend = new CpuBackend(layout, w);
    const batch: Batch = {
      size: 2,
      x: new Float32Array(6).fill(1),
      labels: Uint32Array.from([0, 1]),
    };
    const block = (k: number, n: number): ReceivedBlock => ({
      block: k,
      values: new Float32Array(n),
    });
    const badSteps: [Batch, number, ReceivedBlock[]][] = [
      [{ ...batch, x: new Float32Array(5) }, 0.1, []],
      [{ ...batch, labels: null }, 0.1, []],
      [{ ...batch, labels: Uint32Array.from([0, 2]) }, 0.1, []],
      [batch, NaN, []],
      [batch, Infinity, []],
      [batch, -0.1, []],
      [batch, 0.1, [block(2, 3)]],
      [batch, 0.1, [block(-1, 5)]],
      [batch, 0.1, [block(0.5, 5)]],
      [batch, 0.1, [block(0, 5), block(1, 5)]], // block 1 is 3 long
      [batch, 0.1, [block(0, 4)]],
    ];
    for (const [b, eta, received] of badSteps) {
      expect(() => backend.step(b, eta, received)).toThrow(RangeError);
    }
    expect(Array.from(await backend.readParameters())).toEqual(Array.from(w));
    expect(await backend.drainStats()).toEqual({ losses: [], offered: 0, accepted: 0 });
    expect(() => backend.writeParameters(new Float32Array(7))).toThrow(RangeError);
    expect(() => backend.readBlock(2)).toThrow(RangeError);
    expect(() => new CpuBackend(layout, new Float32Array(9))).toThrow(RangeError);
    expect((await backend.readBlock(1)).length).toBe(3);
    backend.destroy();
    expect(() => backend.step(batch, 0.1)).toThrow(/destroyed/);
  });

  it('copies parameters in and out', async () => {
    const layout = parameterLayout({ kind: 'kmeans', dims: 2, clusters: 2 });
    const w = Float32Array.from([1, 2, 3, 4]);
    const backend = new CpuBackend(layout, w);
    w[0] = 99;
    const read = await backend.readParameters();
    expect(Array.from(read)).toEqual([1, 2, 3, 4]);
    read[1] = 99;
    (await backend.readBlock(0))[2] = 99;
    expect(Array.from(await backend.readParameters())).toEqual([1, 2, 3, 4]);
    backend.writeParameters(Float32Array.from([5, 6, 7, 8]));
    expect(Array.from(await backend.readBlock(0))).toEqual([5, 6, 7, 8]);
  });
});

describe('CpuBackend training', () => {
  it('learns a synthetic 3-class problem with an MLP', async () => {
    const rng = new Rng(5);
    const dims = 10;
    const classes = 3;
    const means = Array.from({ length: classes }, () =>
      Array.from({ length: dims }, () => 2 * rng.normal()),
    );
    const sample = (n: number) => {
      const x = new Float32Array(n * dims);
      const labels = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        const c = rng.int(classes);
        labels[i] = c;
        for (let t = 0; t < dims; t++) x[i * dims + t] = means[c]![t]! + rng.normal();
      }
      return { name: 'blobs', count: n, features: dims, x, labels, classes };
    };
    const train = sample(2000);
    const test = sample(500);
    const layout = parameterLayout({ kind: 'mlp', inputs: dims, hidden: [16], classes });
    const w0 = initParameters(layout, 1);
    const before = evaluate(layout, w0, test);
    const backend = new CpuBackend(layout, w0);
    const B = 32;
    for (let epoch = 0; epoch < 3; epoch++) {
      for (let s = 0; s + B <= train.count; s += B) {
        const batch = {
          size: B,
          x: train.x.subarray(s * dims, (s + B) * dims),
          labels: train.labels.subarray(s, s + B),
        };
        backend.step(batch, 0.1);
      }
    }
    const losses = (await backend.drainStats()).losses;
    const after = evaluate(layout, await backend.readParameters(), test);
    expect(after.loss).toBeLessThan(0.3 * before.loss);
    expect(after.accuracy).toBeGreaterThan(0.95);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-20))).toBeLessThan(0.3 * mean(losses.slice(0, 5)));
  });

  it('K-Means SGD reaches the objective of the true centres on separated blobs', async () => {
    const rng = new Rng(8);
    const dims = 3;
    const truth = [
      [5, 5, 0],
      [-5, 5, 0],
      [5, -5, 0],
      [-5, -5, 5],
    ];
    const n = 4000;
    const x = new Float32Array(n * dims);
    for (let i = 0; i < n; i++) {
      const c = truth[rng.int(truth.length)]!;
      for (let t = 0; t < dims; t++) x[i * dims + t] = c[t]! + 0.5 * rng.normal();
    }
    const data = { name: 'blobs', count: n, features: dims, x, labels: null, classes: 0 };
    const layout = parameterLayout({ kind: 'kmeans', dims, clusters: truth.length });
    const trueObjective = evaluate(layout, Float32Array.from(truth.flat()), data).objective!;
    const w0 = initParameters(layout, 3, data);
    const initial = evaluate(layout, w0, data).objective!;
    const backend = new CpuBackend(layout, w0);
    const B = 64;
    for (let epoch = 0; epoch < 3; epoch++) {
      for (let s = 0; s + B <= n; s += B) {
        backend.step({ size: B, x: x.subarray(s * dims, (s + B) * dims), labels: null }, 0.5);
      }
    }
    const final = evaluate(layout, await backend.readParameters(), data).objective!;
    expect(final).toBeLessThan(initial);
    expect(final).toBeLessThan(1.02 * trueObjective);
  });
});
