/**
 * The CNN rows compare like with like only if TF.js's net is meshgrad's: from the same
 * parameters and minibatch, TF.js (cpu backend) and meshgrad's CpuBackend must score the same
 * loss on the first step, and, after each applied its own gradient, on the second.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import { CpuBackend, loadMnist } from '@meshgrad/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { meshgradSession } from './meshgrad-mlp.ts';
import { cnnBenchModel } from './suite.ts';
import type { BenchModel } from './suite.ts';
import { tfjsCnnSession } from './tfjs-cnn.ts';
import { DEFAULT_BENCH_OPTIONS } from './types.ts';

/** Relative agreement the brief asks of the two float32 implementations. */
const LOSS_RTOL = 1e-4;

async function losses(open: () => ReturnType<typeof meshgradSession>): Promise<number[]> {
  const session = open();
  try {
    const out: number[] = [];
    for (let step = 0; step < 2; step++) {
      session.step(step);
      out.push(await session.sync());
    }
    return out;
  } finally {
    session.dispose();
  }
}

describe('the TF.js CNN of bench:kernels', () => {
  let model: BenchModel;
  beforeAll(async () => {
    expect(await tf.setBackend('cpu')).toBe(true);
    const train = (await loadMnist()).train;
    model = cnnBenchModel(train, { ...DEFAULT_BENCH_OPTIONS, batchCount: 2 });
  });

  it('scores the same loss as CpuBackend from the same parameters, before and after one step', async () => {
    const lr = DEFAULT_BENCH_OPTIONS.learningRate;
    const mine = await losses(() =>
      meshgradSession(new CpuBackend(model.layout, model.params), model.batches, lr),
    );
    // Both formulations: tf.conv2d and the im2col path the wasm backend gets.
    const theirs = await losses(() =>
      tfjsCnnSession(tf, model.layout, model.params, model.batches, lr, false),
    );
    const im2col = await losses(() =>
      tfjsCnnSession(tf, model.layout, model.params, model.batches, lr, true),
    );
    for (let i = 0; i < mine.length; i++) {
      expect(Number.isFinite(mine[i]!)).toBe(true);
      expect(Math.abs(theirs[i]! - mine[i]!) / Math.abs(mine[i]!)).toBeLessThan(LOSS_RTOL);
      expect(Math.abs(im2col[i]! - mine[i]!) / Math.abs(mine[i]!)).toBeLessThan(LOSS_RTOL);
    }
    // The step changed the loss: the second comparison checks the gradients, not the init again.
    expect(Math.abs(mine[1]! - mine[0]!)).toBeGreaterThan(1e-3);
  });
});
