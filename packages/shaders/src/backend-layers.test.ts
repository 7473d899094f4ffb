import type { Batch, LayersSpec, ReceivedBlock } from '@meshgrad/core';
import { CpuBackend, initParameters, lossAndGradient, parameterLayout, Rng } from '@meshgrad/core';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { WebGpuBackend } from './backend/webgpu-backend.ts';
import { peerBlocks } from './checks/harness.ts';
import { sharedDawnDevice } from './dawn.test-support.ts';

let device: GPUDevice;

beforeEach(async () => {
  device = await sharedDawnDevice();
});

afterAll(async () => {
  (await sharedDawnDevice().catch(() => null))?.destroy();
});

/** The bound of the whole-step kernel checks (kernel-checks.ts backendCheck). */
const STEP_BOUND = 1e-5;

function randomBatch(rng: Rng, rows: number, spec: LayersSpec): Batch {
  const first = spec.layers[0]!;
  // Token ids (the next-token targets included) under an embedding, else normal features.
  const x = Float32Array.from({ length: rows * spec.inputs }, () =>
    first.type === 'embedding' ? rng.int(first.vocab) : rng.normal(),
  );
  const labels =
    spec.loss === 'next-token'
      ? null
      : Uint32Array.from({ length: rows }, () => rng.int(spec.classes));
  return { size: rows, x, labels };
}

/** Steps both backends in lockstep (every other step with merges) and compares them. */
async function lockstep(spec: LayersSpec, blockSize: number, steps: number, rows: number) {
  const layout = parameterLayout(spec, blockSize);
  const params = initParameters(layout, 13);
  const cpu = new CpuBackend(layout, params);
  const gpu = await WebGpuBackend.create(device, layout, params, { maxBatch: rows, lossRing: 4 });
  try {
    const rng = new Rng(21);
    const grad = new Float32Array(layout.size);
    const lr = 0.05;
    const eta = Math.fround(lr);
    for (let s = 0; s < steps; s++) {
      // The last step is smaller than maxBatch: grids follow the step's rows.
      const batch = randomBatch(rng, s === steps - 1 ? rows - 3 : rows, spec);
      let received: ReceivedBlock[] = [];
      if (s % 2 === 1) {
        const w = await cpu.readParameters();
        lossAndGradient(layout, w, batch, grad);
        received = [
          ...peerBlocks(layout, w, grad, eta, rng.int(layout.blockCount), [3, 0.1]),
          ...peerBlocks(layout, w, grad, eta, layout.blockCount - 1, [2]),
        ];
      }
      cpu.step(batch, lr, received);
      gpu.step(batch, lr, received);
    }
    const [a, b] = await Promise.all([cpu.drainStats(), gpu.drainStats()]);
    expect(b.offered).toBe(a.offered);
    expect(b.accepted).toBe(a.accepted);
    expect(a.accepted).toBeGreaterThan(0);
    expect(a.accepted).toBeLessThan(a.offered);
    expect(b.losses).toHaveLength(steps);
    b.losses.forEach((loss, i) =>
      expect(Math.abs(loss - a.losses[i]!)).toBeLessThan(
        STEP_BOUND * Math.max(1, Math.abs(a.losses[i]!)),
      ),
    );
    const [wc, wg] = await Promise.all([cpu.readParameters(), gpu.readParameters()]);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < wc.length; i++) {
      scale = Math.max(scale, Math.abs(wc[i]!));
      diff = Math.max(diff, Math.abs(wc[i]! - wg[i]!));
    }
    expect(diff / scale).toBeLessThan(STEP_BOUND);
    // The parameters moved: the comparison is not between two untouched copies.
    let moved = 0;
    for (let i = 0; i < wc.length; i++) moved = Math.max(moved, Math.abs(wc[i]! - params[i]!));
    expect(moved / scale).toBeGreaterThan(100 * STEP_BOUND);
  } finally {
    gpu.destroy();
    cpu.destroy();
  }
}

describe('WebGpuBackend runs the layers kind like CpuBackend', () => {
  it('a small CNN: conv + ReLU, max pooling, strided conv + GELU, average pooling, dense', async () => {
    await lockstep(
      {
        kind: 'layers',
        inputs: 2 * 10 * 10,
        classes: 5,
        inputShape: [2, 10, 10],
        layers: [
          { type: 'conv2d', filters: 4, kernel: 3, padding: 1 },
          { type: 'relu' },
          { type: 'maxpool2d', size: 2 },
          { type: 'conv2d', filters: 6, kernel: 3, stride: 2, padding: 1 },
          { type: 'gelu' },
          { type: 'avgpool2d', size: 3, stride: 1 },
          { type: 'flatten' },
          { type: 'dense', units: 5 },
        ],
      },
      37,
      6,
      12,
    );
  });

  it('residual blocks, layer norms, dense layers over positions and a leading ReLU', async () => {
    await lockstep(
      {
        kind: 'layers',
        inputs: 3 * 8,
        classes: 4,
        inputShape: [3, 8],
        layers: [
          { type: 'relu' },
          { type: 'dense', units: 10 },
          {
            type: 'residual',
            layers: [
              { type: 'layernorm' },
              { type: 'dense', units: 10 },
              { type: 'relu' },
              { type: 'dense', units: 10 },
            ],
          },
          { type: 'residual', layers: [{ type: 'gelu' }] },
          { type: 'layernorm', epsilon: 1e-3 },
          { type: 'flatten' },
          { type: 'dense', units: 4 },
        ],
      },
      64,
      6,
      10,
    );
  });

  it('a small transformer on next-token prediction: embedding, attention, layer norm, GELU', async () => {
    const positions = 7;
    const width = 12;
    const block = (n: number) => [
      {
        type: 'residual' as const,
        layers: [{ type: 'layernorm' as const }, { type: 'attention' as const, heads: n }],
      },
      {
        type: 'residual' as const,
        layers: [
          { type: 'layernorm' as const },
          { type: 'dense' as const, units: 2 * width },
          { type: 'gelu' as const },
          { type: 'dense' as const, units: width },
        ],
      },
    ];
    await lockstep(
      {
        kind: 'layers',
        inputs: positions + 1,
        classes: 11,
        loss: 'next-token',
        layers: [
          { type: 'embedding', vocab: 11, dim: width },
          ...block(3),
          { type: 'layernorm' },
          { type: 'dense', units: 11 },
        ],
      },
      97,
      4,
      6,
    );
  });

  it('an embedding with the classify loss, attention as its first consumer', async () => {
    await lockstep(
      {
        kind: 'layers',
        inputs: 5,
        classes: 3,
        layers: [
          { type: 'embedding', vocab: 9, dim: 8 },
          { type: 'attention', heads: 2 },
          { type: 'flatten' },
          { type: 'dense', units: 3 },
        ],
      },
      40,
      6,
      8,
    );
  });

  it('refuses, before allocating, a maxBatch whose grids exceed the per-dimension limit', async () => {
    // 4096 positions × 600 samples = 2.46M rows: 76800 row tiles of 32 in the dense GEMM.
    const layout = parameterLayout({
      kind: 'layers',
      inputs: 4096 * 2,
      classes: 2,
      inputShape: [4096, 2],
      layers: [{ type: 'dense', units: 2 }, { type: 'flatten' }, { type: 'dense', units: 2 }],
    });
    await expect(
      WebGpuBackend.create(device, layout, new Float32Array(layout.size), { maxBatch: 600 }),
    ).rejects.toThrow(
      /layers-dense-forward needs a 1 × 76800 grid at maxBatch 600.*lower maxBatch/,
    );
  });
});
