import { describe, expect, it } from 'vitest';
import { CpuBackend } from './cpu-backend.ts';
import { evaluate } from './evaluate.ts';
import { initParameters } from './init.ts';
import { validateBatch } from './math.ts';
import {
  CUSTOM_MODEL_NEEDS_WEBGPU,
  customKernelBatchInfo,
  customKernelWorkgroups,
  parameterLayout,
  type CustomSpec,
} from './spec.ts';

const spec: CustomSpec = {
  kind: 'custom',
  inputs: 3,
  classes: 0,
  tensors: [
    { name: 'weight', shape: [3, 2], initStd: 0.5 },
    { name: 'bias', shape: [2] },
  ],
};

describe('custom models', () => {
  it('lay out their tensors in order and size the dispatch for the kernel', () => {
    const layout = parameterLayout(spec, 4);
    expect(layout.tensors.map((t) => [t.name, t.shape, t.offset])).toEqual([
      ['weight', [3, 2], 0],
      ['bias', [2], 6],
    ]);
    expect(layout.size).toBe(8);
    expect(layout.blockCount).toBe(2);
    expect(customKernelWorkgroups(layout, 16)).toBe(1);
    expect(customKernelWorkgroups(layout, 65)).toBe(2);
    expect(Array.from(customKernelBatchInfo(layout, 16))).toEqual([16, 3, 8, 0]);
  });

  it('initialise each tensor from its own std (zeros without one), reproducibly', () => {
    const layout = parameterLayout(spec);
    const a = initParameters(layout, 7);
    expect(Array.from(a.subarray(6))).toEqual([0, 0]);
    expect(a.subarray(0, 6).some((v) => v !== 0)).toBe(true);
    expect(Array.from(initParameters(layout, 7))).toEqual(Array.from(a));
  });

  it('refuse bad specs with the field named', () => {
    expect(() => parameterLayout({ ...spec, tensors: [] })).toThrow(
      /model.tensors must not be empty/,
    );
    expect(() =>
      parameterLayout({
        ...spec,
        tensors: [
          { name: 'w', shape: [2] },
          { name: 'w', shape: [1] },
        ],
      }),
    ).toThrow(/model.tensors\[1\].name w repeats/);
    expect(() => parameterLayout({ ...spec, tensors: [{ name: 'w', shape: [0] }] })).toThrow(
      /tensors\[0\].shape\[0\]/,
    );
  });

  it('have no CPU implementation, and say so', () => {
    const layout = parameterLayout(spec);
    const params = new Float32Array(layout.size);
    expect(() => new CpuBackend(layout, params)).toThrow(CUSTOM_MODEL_NEEDS_WEBGPU);
    const data = {
      name: 'd',
      count: 1,
      features: 3,
      x: new Float32Array(3),
      labels: null,
      classes: 0,
    };
    expect(() => evaluate(layout, params, data)).toThrow(CUSTOM_MODEL_NEEDS_WEBGPU);
    // Batches are still checked, labels optional.
    expect(() =>
      validateBatch(layout, { size: 1, x: new Float32Array(3), labels: null }),
    ).not.toThrow();
    expect(() => validateBatch(layout, { size: 2, x: new Float32Array(3), labels: null })).toThrow(
      /batch.x has 3 floats/,
    );
  });
});
