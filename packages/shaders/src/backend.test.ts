import type { Backend, Batch, Dataset, ParameterLayout, ReceivedBlock } from '@meshgrad/core';
import {
  CpuBackend,
  decodeInt8,
  encodeFloat16,
  encodeInt8,
  gaussianClusters,
  initParameters,
  lossAndGradient,
  parameterLayout,
  Rng,
} from '@meshgrad/core';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { BufferPlan } from './backend/buffers.ts';
import { WebGpuBackend } from './backend/webgpu-backend.ts';
import { peerBlocks } from './checks/harness.ts';
import { dawnAdapter, dawnDevice, dawnGpu, sharedDawnDevice } from './dawn.test-support.ts';
import { isWebGpuError, WebGpuError } from './gpu/errors.ts';
import { probeWebGpu, requestBackendDevice } from './gpu/probe.ts';
import { ComputeProgram, compileProgram, setShaderDebug } from './gpu/program.ts';

// Opened by the first test (see sharedDawnDevice: no adapter fails every test, never skips).
let device: GPUDevice;

beforeEach(async () => {
  device = await sharedDawnDevice();
});

afterAll(async () => {
  (await sharedDawnDevice().catch(() => null))?.destroy();
});

function batchOf(data: Dataset, start: number, size: number): Batch {
  const f = data.features;
  return {
    size,
    x: data.x.subarray(start * f, (start + size) * f),
    labels: data.labels ? data.labels.subarray(start, start + size) : null,
  };
}

/** Steps a CpuBackend and a WebGpuBackend in lockstep with merges, then compares them. */
async function compareWithCpu(
  layout: ParameterLayout,
  params: Float32Array,
  data: Dataset,
  options: { steps: number; batch: number; learningRate: number; inputPath?: 'sparse' | 'dense' },
): Promise<void> {
  const cpu = new CpuBackend(layout, params);
  const gpu = await WebGpuBackend.create(device, layout, params, {
    maxBatch: options.batch,
    lossRing: 5,
  });
  try {
    const rng = new Rng(7);
    const grad = new Float32Array(layout.size);
    const eta = Math.fround(options.learningRate);
    for (let s = 0; s < options.steps; s++) {
      const batch = batchOf(
        data,
        (s * options.batch) % (data.count - options.batch),
        options.batch,
      );
      let received: ReceivedBlock[] = [];
      if (s % 2 === 1) {
        const w = await cpu.readParameters();
        lossAndGradient(layout, w, batch, grad);
        const k = rng.int(layout.blockCount);
        received = [
          ...peerBlocks(layout, w, grad, eta, k, [3, 0.1]),
          ...peerBlocks(layout, w, grad, eta, layout.blockCount - 1, [2]),
        ];
      }
      cpu.step(batch, options.learningRate, received);
      gpu.step(batch, options.learningRate, received);
      if (options.inputPath) expect(gpu.lastInputPath).toBe(options.inputPath);
    }
    const [a, b] = await Promise.all([cpu.drainStats(), gpu.drainStats()]);
    expect(b.offered).toBe(a.offered);
    expect(b.accepted).toBe(a.accepted);
    expect(a.accepted).toBeGreaterThan(0);
    expect(a.accepted).toBeLessThan(a.offered);
    expect(b.losses).toHaveLength(a.losses.length);
    b.losses.forEach((loss, i) =>
      expect(Math.abs(loss - a.losses[i]!)).toBeLessThan(
        1e-5 * Math.max(1, Math.abs(a.losses[i]!)),
      ),
    );
    const [wc, wg] = await Promise.all([cpu.readParameters(), gpu.readParameters()]);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < wc.length; i++) {
      scale = Math.max(scale, Math.abs(wc[i]!));
      diff = Math.max(diff, Math.abs(wc[i]! - wg[i]!));
    }
    expect(diff / scale).toBeLessThan(1e-5);
  } finally {
    gpu.destroy();
    cpu.destroy();
  }
}

describe('WebGpuBackend agrees with CpuBackend', () => {
  it('MLP 784-32-10 on MNIST-like sparse images (sparse first layer), with merges', async () => {
    // Loading the real digits costs a minute of JSON transforms under vitest; what matters here
    // is the sparsity (~80% zeros, in strokes), which these 28×28 random strokes have too.
    const rng = new Rng(5);
    const count = 300;
    const x = new Float32Array(count * 784);
    for (let s = 0; s < count; s++) {
      let r = 4 + rng.int(20);
      let c = 4 + rng.int(20);
      for (let step = 0; step < 60; step++) {
        for (const [dr, dc] of [
          [0, 0],
          [0, 1],
          [1, 0],
          [1, 1],
        ] as const) {
          x[s * 784 + (r + dr) * 28 + c + dc] = 0.3 + 0.7 * rng.next();
        }
        r = Math.min(25, Math.max(2, r + rng.int(3) - 1));
        c = Math.min(25, Math.max(2, c + rng.int(3) - 1));
      }
    }
    const labels = Uint32Array.from({ length: count }, () => rng.int(10));
    const train: Dataset = { name: 'strokes', count, features: 784, x, labels, classes: 10 };
    const layout = parameterLayout({ kind: 'mlp', inputs: 784, hidden: [32], classes: 10 }, 4096);
    await compareWithCpu(layout, initParameters(layout, 3), train, {
      steps: 8,
      batch: 32,
      learningRate: 0.1,
      inputPath: 'sparse',
    });
  });

  it('softmax regression on dense inputs, with merges', async () => {
    const rng = new Rng(11);
    const count = 200;
    const x = Float32Array.from({ length: count * 40 }, () => rng.normal());
    const labels = Uint32Array.from({ length: count }, () => rng.int(7));
    const data: Dataset = { name: 'dense', count, features: 40, x, labels, classes: 7 };
    const layout = parameterLayout({ kind: 'softmax', inputs: 40, classes: 7 }, 50);
    await compareWithCpu(layout, initParameters(layout, 5), data, {
      steps: 8,
      batch: 24,
      learningRate: 0.2,
      inputPath: 'dense',
    });
  });

  it('K-Means on Gaussian clusters, with merges', async () => {
    const { dataset } = gaussianClusters({ clusters: 6, dims: 9, count: 400, seed: 3 });
    const layout = parameterLayout({ kind: 'kmeans', dims: 9, clusters: 6 }, 10);
    await compareWithCpu(layout, initParameters(layout, 9, dataset), dataset, {
      steps: 8,
      batch: 40,
      learningRate: 0.3,
    });
  });
});

describe('WebGpuBackend state and stats', () => {
  const layout = parameterLayout({ kind: 'softmax', inputs: 12, classes: 3 }, 10);
  const rng = new Rng(1);
  const batch: Batch = {
    size: 8,
    x: Float32Array.from({ length: 8 * 12 }, () => rng.normal()),
    labels: Uint32Array.from({ length: 8 }, () => rng.int(3)),
  };

  it('returns every loss in order across several ring wraps, and counts reset on drain', async () => {
    const params = initParameters(layout, 1);
    const gpu = await WebGpuBackend.create(device, layout, params, { lossRing: 4, maxBatch: 8 });
    const cpu = new CpuBackend(layout, params);
    try {
      for (let i = 0; i < 11; i++) {
        gpu.step(batch, 0.05);
        cpu.step(batch, 0.05);
        if (i === 2) expect((await gpu.drainStats()).losses).toHaveLength(3);
      }
      const stats = await gpu.drainStats();
      const ref = (await cpu.drainStats()).losses.slice(3);
      expect(stats.losses).toHaveLength(8);
      stats.losses.forEach((l, i) => expect(l).toBeCloseTo(ref[i]!, 5));
      expect(await gpu.drainStats()).toEqual({ losses: [], offered: 0, accepted: 0 });
    } finally {
      gpu.destroy();
    }
  });

  it('reads and writes parameters and blocks, and encodes blocks like core', async () => {
    const params = initParameters(layout, 2);
    const gpu = await WebGpuBackend.create(device, layout, params);
    try {
      expect(await gpu.readParameters()).toEqual(params);
      const next = params.map((v, i) => v + i * 0.001);
      gpu.writeParameters(next);
      expect(await gpu.readBlock(3)).toEqual(next.slice(30, 39));
      const last = layout.blockCount - 1;
      expect(await gpu.readBlock(last)).toEqual(next.slice(last * 10));
      const f16 = await gpu.readBlockEncoded(1, 'f16');
      expect(f16.values).toEqual(encodeFloat16(next.slice(10, 20)));
      const int8 = await gpu.readBlockEncoded(2, 'int8');
      const ref = encodeInt8(next.slice(20, 30));
      expect(int8).toEqual({ encoding: 'int8', values: ref.values, scale: ref.scale });
      expect(decodeInt8(ref.values, ref.scale)).toHaveLength(10);
      expect(() => gpu.writeParameters(new Float32Array(3))).toThrow(RangeError);
      await expect(gpu.readBlock(layout.blockCount)).rejects.toThrow(RangeError);
    } finally {
      gpu.destroy();
    }
  });

  it('reads blocks for a send with the next step, encoded like core, and the same as the CPU backend', async () => {
    const params = initParameters(layout, 3);
    const gpu = await WebGpuBackend.create(device, layout, params);
    const cpu = new CpuBackend(layout, params);
    try {
      const reads = [
        { block: 0, encoding: 'f32' },
        { block: 1, encoding: 'f16' },
        { block: 2, encoding: 'int8' },
        { block: layout.blockCount - 1, encoding: 'int8' },
      ] as const;
      const fromGpu = gpu.readBlocksAfterStep(reads);
      const fromCpu = cpu.readBlocksAfterStep(reads);
      gpu.step(batch, 0.1);
      cpu.step(batch, 0.1);
      const [g, c] = await Promise.all([fromGpu, fromCpu]);
      // The blocks as they stand after the step.
      const after = await gpu.readParameters();
      expect(g[0]).toEqual({ encoding: 'f32', values: after.slice(0, 10) });
      expect(g[1]).toEqual({ encoding: 'f16', values: encodeFloat16(after.slice(10, 20)) });
      const ref = encodeInt8(after.slice(20, 30));
      expect(g[2]).toEqual({ encoding: 'int8', values: ref.values, scale: ref.scale });
      expect(g[3]!.values).toHaveLength(layout.size - (layout.blockCount - 1) * 10);
      // The CPU backend's float64 step differs from float32 by rounding only.
      expect(c.map((b) => b?.encoding)).toEqual(['f32', 'f16', 'int8', 'int8']);
      c[0]!.values.forEach((v, i) => expect(v).toBeCloseTo(g[0]!.values[i]!, 5));

      // A read with no step after it goes with the next drain; a diverged block has no int8.
      const bad = new Float32Array(layout.size);
      bad[0] = NaN;
      gpu.writeParameters(bad);
      const diverged = gpu.readBlocksAfterStep([
        { block: 0, encoding: 'int8' },
        { block: 0, encoding: 'f16' },
      ]);
      await gpu.drainStats();
      const [int8, f16] = await diverged;
      expect(int8).toBeNull();
      // NaN in half precision: all exponent bits set.
      expect(f16!.values[0]! & 0x7c00).toBe(0x7c00);
      expect(() =>
        gpu.readBlocksAfterStep([{ block: layout.blockCount, encoding: 'f32' }]),
      ).toThrow(RangeError);
      const orphan = gpu.readBlocksAfterStep([{ block: 0, encoding: 'f32' }]);
      gpu.destroy();
      await expect(orphan).rejects.toSatisfy((e) => isWebGpuError(e, 'ERR_DESTROYED'));
    } finally {
      gpu.destroy();
    }
  });

  it('validates inputs before touching the device', async () => {
    const gpu = await WebGpuBackend.create(device, layout, initParameters(layout, 2), {
      maxBatch: 8,
      mailboxSlots: 2,
    });
    try {
      expect(() => gpu.step({ ...batch, labels: new Uint32Array(8).fill(3) }, 0.1)).toThrow(
        RangeError,
      );
      expect(() => gpu.step(batch, -1)).toThrow(RangeError);
      expect(() =>
        gpu.step({ size: 9, x: new Float32Array(9 * 12), labels: new Uint32Array(9) }, 0.1),
      ).toThrow(/maxBatch/);
      expect(() => gpu.step(batch, 0.1, [{ block: 0, values: new Float32Array(3) }])).toThrow(
        RangeError,
      );
      // More blocks than the mailbox holds: it grows (synchronously here, ahead with reserveMailbox).
      const three = [0, 1, 2].map((block) => ({ block, values: new Float32Array(10) }));
      gpu.step(batch, 0.1, three);
      expect(gpu.mailboxSlots).toBeGreaterThanOrEqual(3);
      await gpu.reserveMailbox(9);
      expect(gpu.mailboxSlots).toBeGreaterThanOrEqual(9);
      const nine = [...three, ...three, ...three];
      gpu.step(batch, 0.1, nine);
      expect((await gpu.drainStats()).offered).toBe(12);
    } finally {
      gpu.destroy();
    }
  });

  it('plans regions that do not overlap', () => {
    for (const spec of [
      { kind: 'mlp', inputs: 784, hidden: [128, 64], classes: 10 },
      { kind: 'kmeans', dims: 3, clusters: 5 },
    ] as const) {
      const plan = new BufferPlan(parameterLayout(spec), {
        maxBatch: 33,
        mailboxSlots: 3,
        lossRing: 7,
        alignment: 256,
        sparseEntries: 1000,
      });
      const byBuffer = new Map<string, { offset: number; size: number }[]>();
      for (const [, r] of plan.entries()) {
        expect(r.offset % 256).toBe(0);
        expect(r.size % 16).toBe(0);
        const list = byBuffer.get(r.buffer) ?? [];
        for (const o of list)
          expect(r.offset >= o.offset + o.size || o.offset >= r.offset + r.size).toBe(true);
        list.push(r);
        byBuffer.set(r.buffer, list);
        expect(r.offset + r.size).toBeLessThanOrEqual(plan.buffers.get(r.buffer)!.size);
      }
    }
  });
});

describe('errors', () => {
  const layout = parameterLayout({ kind: 'kmeans', dims: 2, clusters: 2 }, 4);
  const batch: Batch = { size: 2, x: new Float32Array([0, 0, 1, 1]), labels: null };

  it('a destroyed backend throws ERR_DESTROYED', async () => {
    const gpu: Backend = await WebGpuBackend.create(device, layout, new Float32Array(4));
    gpu.destroy();
    gpu.destroy();
    expect(() => gpu.step(batch, 0.1)).toThrow(expect.objectContaining({ code: 'ERR_DESTROYED' }));
    await expect(gpu.drainStats()).rejects.toSatisfy((e) => isWebGpuError(e, 'ERR_DESTROYED'));
    await expect(gpu.readParameters()).rejects.toBeInstanceOf(WebGpuError);
  });

  it('device loss reaches pending and later calls as ERR_DEVICE_LOST', async () => {
    const own = await dawnDevice();
    const gpu = await WebGpuBackend.create(own, layout, new Float32Array(4));
    gpu.step(batch, 0.1);
    const pending = gpu.drainStats();
    own.destroy();
    await expect(pending).rejects.toSatisfy((e) => isWebGpuError(e, 'ERR_DEVICE_LOST'));
    await own.lost;
    expect(() => gpu.step(batch, 0.1)).toThrow(
      expect.objectContaining({ code: 'ERR_DEVICE_LOST' }),
    );
    await expect(gpu.readBlock(0)).rejects.toSatisfy((e) => isWebGpuError(e, 'ERR_DEVICE_LOST'));
    await expect(WebGpuBackend.create(own, layout, new Float32Array(4))).rejects.toSatisfy((e) =>
      isWebGpuError(e, 'ERR_DEVICE_LOST'),
    );
  });

  it('an uncaptured validation error surfaces as ERR_VALIDATION', async () => {
    const own = await dawnDevice();
    const gpu = await WebGpuBackend.create(own, layout, new Float32Array(4));
    // An invalid buffer (MAP_READ may only go with COPY_DST) raises an uncaptured error.
    own.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    await expect(gpu.drainStats()).rejects.toSatisfy((e) => isWebGpuError(e, 'ERR_VALIDATION'));
    expect(() => gpu.step(batch, 0.1)).toThrow(expect.objectContaining({ code: 'ERR_VALIDATION' }));
    gpu.destroy();
    own.destroy();
  });

  it('requestBackendDevice without an adapter throws ERR_NO_ADAPTER', async () => {
    await expect(requestBackendDevice(null)).rejects.toSatisfy((e) =>
      isWebGpuError(e, 'ERR_NO_ADAPTER'),
    );
  });
});

describe('probe and programs', () => {
  it('probeWebGpu describes SwiftShader as a software adapter', async () => {
    const probe = await probeWebGpu(dawnGpu);
    expect(probe.ok).toBe(true);
    expect(probe.adapterInfo?.architecture).toBe('swiftshader');
    expect(probe.software).toBe(true);
    expect(probe.features).toContain('subgroups');
    expect(await probeWebGpu(undefined)).toMatchObject({ ok: false, software: false });
  });

  it('prints the WGSL of every program a backend uses when asked', async () => {
    const printed: string[] = [];
    const layout = parameterLayout({ kind: 'mlp', inputs: 8, hidden: [4], classes: 2 }, 16);
    const gpu = await WebGpuBackend.create(device, layout, new Float32Array(layout.size), {
      debug: (text) => printed.push(text),
    });
    gpu.destroy();
    const names = printed.map((t) => /\/\/ ---- ([\w-]+)/.exec(t)?.[1]);
    for (const name of ['dense-forward', 'dense-forward-sparse', 'softmax-ce', 'sgd-parzen']) {
      expect(names).toContain(name);
    }
    expect(printed.every((t) => t.includes('@compute'))).toBe(true);
  });

  it('requests the adapter limits explicitly', async () => {
    const adapter = await dawnAdapter();
    expect(device.limits.maxStorageBufferBindingSize).toBe(
      adapter.limits.maxStorageBufferBindingSize,
    );
    expect(device.limits.maxComputeWorkgroupStorageSize).toBe(
      adapter.limits.maxComputeWorkgroupStorageSize,
    );
  });

  it('caches pipelines per device by key and prints WGSL when debugging', async () => {
    const body = `override N: u32 = 1u;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1) fn main() { out[0] = N; }`;
    const printed: string[] = [];
    setShaderDebug((text) => printed.push(text));
    try {
      const a = await compileProgram(
        device,
        new ComputeProgram({ name: 'probe', body, overrides: { N: 2 } }),
      );
      const b = await compileProgram(
        device,
        new ComputeProgram({ name: 'probe', body, overrides: { N: 2 } }),
      );
      const c = await compileProgram(
        device,
        new ComputeProgram({ name: 'probe', body, overrides: { N: 3 } }),
      );
      expect(b).toBe(a);
      expect(c).not.toBe(a);
      expect(a.pipeline.label).toBe('probe');
      expect(printed).toHaveLength(2);
      expect(printed[0]).toContain('override N');
      await expect(
        compileProgram(device, new ComputeProgram({ name: 'broken', body: 'fn main( {' })),
      ).rejects.toSatisfy((e) => isWebGpuError(e, 'ERR_VALIDATION'));
    } finally {
      setShaderDebug(false);
    }
  });
});
