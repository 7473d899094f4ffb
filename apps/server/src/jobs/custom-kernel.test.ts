import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initParameters, makeDataset, parameterLayout, Rng, type Backend } from '@meshgrad/core';
import { openCustomKernel, serverDevice } from './custom-kernel.ts';
import { coreModelSpec, JobSpecError, parseJobSpec, type JobSpec } from './job-spec.ts';

const LINREG = path.resolve(
  import.meta.dirname,
  '../../../../examples/custom-wgsl-linreg/linreg.wgsl',
);

let dir: string;
let good: string;

/** Rows of 3 features and a target, y = 2·x0 − x1 + 0.5·x2 + 1. */
function data(count: number, seed: number) {
  const rng = new Rng(seed);
  const x = new Float32Array(count * 4);
  for (let i = 0; i < count; i++) {
    let y = 1;
    [2, -1, 0.5].forEach((w, j) => {
      const v = rng.normal();
      x[i * 4 + j] = v;
      y += w * v;
    });
    x[i * 4 + 3] = y;
  }
  return makeDataset({ name: 'linreg', x, features: 4 });
}

function spec(kernel: { kernel: string } | { wgsl: string }): JobSpec {
  return parseJobSpec(
    {
      id: 'custom',
      name: 'Custom',
      model: {
        kind: 'custom',
        ...kernel,
        inputs: 4,
        tensors: [
          { name: 'weight', shape: [3] },
          { name: 'bias', shape: [1] },
        ],
      },
      dataset: { kind: 'csv', file: 'unused.csv', labelColumn: null },
      batchSize: 16,
    },
    { baseDir: dir },
  );
}

async function refusal(wgsl: string): Promise<JobSpecError> {
  const file = path.join(dir, 'bad.wgsl');
  await writeFile(file, wgsl);
  const s = spec({ kernel: 'bad.wgsl' });
  const layout = parameterLayout(coreModelSpec(s.model));
  const err = await openCustomKernel(s, layout, new Float32Array(layout.size), data(16, 1)).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JobSpecError);
  expect((err as JobSpecError).field).toBe('model.kernel');
  return err as JobSpecError;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-kernel-'));
  good = await readFile(LINREG, 'utf8');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('custom WGSL kernels', () => {
  it('compile at load and evaluate checkpoints with the kernel’s own loss', async () => {
    const s = spec({ wgsl: good });
    const layout = parameterLayout(coreModelSpec(s.model));
    const test = data(2500, 2);
    const kernel = await openCustomKernel(s, layout, initParameters(layout, 1), data(64, 3));
    try {
      // At the true parameters the loss is 0; at w = 0 it is the mean of ½y², in float64 here.
      const truth = Float32Array.from([2, -1, 0.5, 1]);
      expect((await kernel.evaluate(truth, test)).loss).toBeLessThan(1e-9);
      let expected = 0;
      for (let i = 0; i < test.count; i++) expected += 0.5 * test.x[i * 4 + 3]! ** 2;
      expected /= test.count;
      const zero = await kernel.evaluate(new Float32Array(4), test);
      expect(zero.count).toBe(2500);
      expect(Math.abs(zero.loss - expected) / expected).toBeLessThan(1e-5);
    } finally {
      kernel.destroy();
    }
  });

  it('refuses a kernel that does not compile, with the compiler’s message and line', async () => {
    const e = await refusal(good.replace('prediction += params[j]', 'prediction += parms[j]'));
    expect(e.reason).toMatch(
      /^bad\.wgsl:29:19: .*parms.*\(in: prediction \+= parms\[j\] \* x\[row \+ j\];\)$/,
    );
  });

  it('refuses a kernel that breaks the binding layout or has no such entry point', async () => {
    let e = await refusal(
      good.replace(
        'var<storage, read> params: array<f32>',
        'var<storage, read_write> params: array<f32>',
      ),
    );
    expect(e.reason).toMatch(/^bad\.wgsl does not fit the custom kernel binding layout/);
    e = await refusal(good.replace('fn main(', 'fn train('));
    expect(e.reason).toMatch(/does not fit the custom kernel binding layout.*main/);
  });

  it('refuses a kernel that leaves gradient or loss values unwritten', async () => {
    let e = await refusal(good.replace('@workgroup_size(64)', '@workgroup_size(1)'));
    expect(e.reason).toMatch(
      /grad\[1\] is NaN: the kernel must write a finite value to every element of grad/,
    );
    e = await refusal(good.replace('loss[k] = 0.5 * r * r;', 'loss[k] = 0.5 * r * r / 0.0;'));
    expect(e.reason).toMatch(/loss\[\d+\] is (Infinity|NaN): the kernel must write a finite loss/);
  });
});

describe('custom kernels in the WebGPU backend', () => {
  it('take the platform’s SGD step on the kernel’s gradient and report its mean loss', async () => {
    const name = '@meshgrad/shaders';
    const shaders = (await import(/* @vite-ignore */ name)) as {
      WebGpuBackend: {
        create(
          device: GPUDevice,
          layout: ReturnType<typeof parameterLayout>,
          params: Float32Array,
          options: { customKernel: { wgsl: string } },
        ): Promise<Backend>;
      };
      requestBackendDevice(adapter: GPUAdapter | null): Promise<GPUDevice>;
    };
    const { gpu } = await serverDevice();
    const device = await shaders.requestBackendDevice(await gpu.requestAdapter());
    const s = spec({ wgsl: good });
    const layout = parameterLayout(coreModelSpec(s.model));
    const w = Float32Array.from([0.3, -0.2, 0.1, 0.05]);
    const backend = await shaders.WebGpuBackend.create(device, layout, w, {
      customKernel: { wgsl: good },
    });
    try {
      const batch = data(16, 9);
      const lr = 0.1;
      backend.step({ size: 16, x: batch.x, labels: null }, lr);
      // float64 reference: g = mean r·[x, 1], loss = mean ½r², w' = w − η·g.
      const g = new Float64Array(4);
      let loss = 0;
      for (let i = 0; i < 16; i++) {
        const row = batch.x.subarray(i * 4, i * 4 + 4);
        const r = w[0]! * row[0]! + w[1]! * row[1]! + w[2]! * row[2]! + w[3]! - row[3]!;
        loss += (0.5 * r * r) / 16;
        for (let j = 0; j < 4; j++) g[j]! += (r * (j < 3 ? row[j]! : 1)) / 16;
      }
      const after = await backend.readParameters();
      for (let j = 0; j < 4; j++) {
        expect(after[j]).toBeCloseTo(w[j]! - Math.fround(lr) * g[j]!, 5);
      }
      const stats = await backend.drainStats();
      expect(stats.losses).toHaveLength(1);
      expect(Math.abs(stats.losses[0]! - loss) / loss).toBeLessThan(1e-5);
    } finally {
      backend.destroy();
      device.destroy();
    }
  });
});
