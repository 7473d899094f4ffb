import { describe, expect, it } from 'vitest';
import type { Batch } from '../data/dataset.ts';
import { averageThenStep } from '../sim/scale/merge/average-then-step.ts';
import { outerMomentum } from '../sim/scale/merge/outer-momentum.ts';
import { Rng } from '../util/rng.ts';
import type { ReceivedBlock } from './backend.ts';
import { CpuBackend } from './cpu-backend.ts';
import { initParameters } from './init.ts';
import { lossAndGradient } from './math.ts';
import { SCALING_MERGE_RULE, checkMergeRule, type MergeRule } from './merge-rule.ts';
import { blockRange, parameterLayout } from './spec.ts';

/** Two K-Means centres in 4 dims, one per block (as in cpu-backend.test.ts). */
const twoCentres = parameterLayout({ kind: 'kmeans', dims: 4, clusters: 2 }, 4);
const near = (value: number) => Float32Array.from([value, value, value, value]);
const atZero: Batch = { size: 1, x: near(0), labels: null };
const noMomentum = (rule: Omit<MergeRule, 'momentum' | 'momentumPeriod'>): MergeRule => ({
  ...rule,
  momentum: 0,
  momentumPeriod: 1,
});

describe('merge rules in CpuBackend', () => {
  // c0 = 1 and the sample at 0: g0 = 1 per coordinate; η = 0.5.
  it('average-then-step takes the mean and then the whole step', async () => {
    const merge = noMomentum({ order: 'average-then-step', parzen: 'hard' });
    const backend = new CpuBackend(twoCentres, Float32Array.from([...near(1), ...near(10)]), {
      merge,
    });
    backend.step(atZero, 0.5, [{ block: 0, values: near(0) }]);
    // (1 + 0) / 2 − 0.5 = 0, where step-then-average gives (0.5 + 0) / 2 = 0.25.
    expect(Array.from(await backend.readBlock(0))).toEqual(Array.from(near(0)));
    expect(await backend.drainStats()).toMatchObject({ offered: 1, accepted: 1 });
  });

  it('with the Parzen test off accepts a block the step moves away from, never a broken one', async () => {
    for (const parzen of ['hard', 'off'] as const) {
      const merge = noMomentum({ order: 'step-then-average', parzen });
      const backend = new CpuBackend(twoCentres, Float32Array.from([...near(1), ...near(10)]), {
        merge,
      });
      const broken = near(10);
      broken[2] = NaN;
      // The step takes c0 from 1 to 0.5, away from 2.
      backend.step(atZero, 0.5, [
        { block: 0, values: near(2) },
        { block: 1, values: broken },
      ]);
      const stats = await backend.drainStats();
      expect(stats.offered).toBe(2);
      expect(stats.accepted).toBe(parzen === 'off' ? 1 : 0);
      expect(Array.from(await backend.readBlock(0))).toEqual(
        Array.from(near(parzen === 'off' ? (0.5 + 2) / 2 : 0.5)),
      );
      // Block 1 (no gradient: the sample is nearer c0) keeps its value, the NaN refused.
      expect(Array.from(await backend.readBlock(1))).toEqual(Array.from(near(10)));
    }
  });

  it('the scaling rule equals the scaling simulator’s merge over many steps', async () => {
    const layout = parameterLayout({ kind: 'mlp', inputs: 6, hidden: [5], classes: 3 }, 7);
    const rng = new Rng(11);
    const w0 = initParameters(layout, 3);
    const backend = new CpuBackend(layout, w0, { merge: SCALING_MERGE_RULE });
    const sim = outerMomentum(
      averageThenStep('off'),
      SCALING_MERGE_RULE.momentum,
      SCALING_MERGE_RULE.momentumPeriod,
    ).create(layout.size);
    const w = Float32Array.from(w0);
    const g = new Float32Array(layout.size);
    const eta = Math.fround(0.25);
    for (let step = 0; step < 13; step++) {
      const batch: Batch = {
        size: 4,
        x: Float32Array.from({ length: 24 }, () => rng.normal()),
        labels: Uint32Array.from({ length: 4 }, () => rng.int(3)),
      };
      // Two peers' whole states near w: every block has mail (the simulator's inbox is whole states).
      const peers = [0, 1].map(() => Float32Array.from(w, (wi) => wi + 0.2 * rng.normal()));
      const received: ReceivedBlock[] = [];
      for (const peer of peers) {
        for (let k = 0; k < layout.blockCount; k++) {
          const { start, end } = blockRange(layout, k);
          received.push({ block: k, values: peer.slice(start, end) });
        }
      }
      backend.step(batch, eta, received);
      lossAndGradient(layout, w, batch, g);
      sim.apply({ w, g, eta, inbox: peers, blockSize: layout.blockSize });
      const got = await backend.readParameters();
      for (let i = 0; i < layout.size; i++) {
        expect(got[i]).toBeCloseTo(w[i]!, 5);
      }
      // Keep both on the same trajectory: rounding differs, the rule must not.
      w.set(got);
    }
  });

  it('outer momentum moves the state further than the merge alone, and restarts on writeParameters', async () => {
    const layout = parameterLayout({ kind: 'kmeans', dims: 2, clusters: 1 }, 2);
    const rule: MergeRule = { ...SCALING_MERGE_RULE, momentumPeriod: 2 };
    const batch: Batch = { size: 1, x: Float32Array.from([0, 0]), labels: null };
    const start = Float32Array.from([1, 1]);
    const plain = new CpuBackend(layout, start, { merge: { ...rule, momentum: 0 } });
    const withMomentum = new CpuBackend(layout, start, { merge: rule });
    // η = 0.25 on c = w with the sample at 0: each step multiplies w by 0.75.
    for (let s = 0; s < 4; s++) {
      plain.step(batch, 0.25);
      withMomentum.step(batch, 0.25);
    }
    const p = (await plain.readParameters())[0]!;
    const m = (await withMomentum.readParameters())[0]!;
    expect(p).toBeCloseTo(0.75 ** 4, 6);
    // Period 1 (2 steps): a = 1 − 0.5625, d = a, w = 0.5625. Period 2: a = 0.5625·(1 − 0.5625),
    // d = 0.5·0.4375 + a, w = 0.5625 − d.
    const a2 = 0.5625 * (1 - 0.5625);
    expect(m).toBeCloseTo(0.5625 - (0.5 * 0.4375 + a2), 6);
    expect(m).toBeLessThan(p);

    withMomentum.writeParameters(start);
    const fresh = new CpuBackend(layout, start, { merge: rule });
    for (let s = 0; s < 3; s++) {
      withMomentum.step(batch, 0.25);
      fresh.step(batch, 0.25);
    }
    expect(Array.from(await withMomentum.readParameters())).toEqual(
      Array.from(await fresh.readParameters()),
    );
  });

  it('refuses a rule out of range, naming the field', () => {
    const layout = parameterLayout({ kind: 'kmeans', dims: 2, clusters: 1 }, 2);
    const bad: [Partial<MergeRule>, RegExp][] = [
      [{ momentum: 1 }, /momentum must be in \[0, 1\)/],
      [{ momentum: Number.NaN }, /momentum/],
      [{ momentumPeriod: 0 }, /momentumPeriod/],
      [{ order: 'sideways' as MergeRule['order'] }, /merge order/],
      [{ parzen: 'soft' as MergeRule['parzen'] }, /merge parzen/],
    ];
    for (const [change, message] of bad) {
      const merge = { ...SCALING_MERGE_RULE, ...change };
      expect(() => checkMergeRule(merge)).toThrow(message);
      expect(() => new CpuBackend(layout, new Float32Array(2), { merge })).toThrow(message);
    }
  });
});
