/** meshgrad's backends as benchmark candidates (browser and Node alike). */
import { CpuBackend } from '@meshgrad/core';
import { requestBackendDevice, WebGpuBackend } from '@meshgrad/shaders';
import { meshgradSession } from './meshgrad-mlp.ts';
import type { BenchModel, Candidate } from './suite.ts';

export function meshgradCpuCandidate(model: BenchModel, learningRate: number): Candidate {
  return {
    id: 'meshgrad-cpu',
    prepare: async () => 'CpuBackend (float32, JS)',
    open: async () =>
      meshgradSession(new CpuBackend(model.layout, model.params), model.batches, learningRate),
  };
}

/**
 * WebGpuBackend on its own device, from a fresh adapter of the GPU TF.js's webgpu backend also
 * uses (an adapter gives out one device only).
 * `sparseInput: 'never'` (id `meshgrad-webgpu-dense`) turns off the first-layer sparse path that
 * MNIST's mostly-zero pixels trigger, to show what the dense kernels alone do against TF.js's
 * dense matmuls.
 */
export function meshgradWebgpuCandidate(
  gpu: GPU,
  model: BenchModel,
  learningRate: number,
  sparseInput: 'auto' | 'never' = 'auto',
): Candidate {
  const id = sparseInput === 'auto' ? 'meshgrad-webgpu' : 'meshgrad-webgpu-dense';
  let device: GPUDevice | null = null;
  return {
    id,
    async prepare() {
      const adapter = await gpu.requestAdapter();
      device = await requestBackendDevice(adapter);
      const info = device.adapterInfo;
      return `WebGpuBackend on ${info.vendor} ${info.architecture}, sparse first layer ${sparseInput}`;
    },
    async open() {
      if (!device) throw new Error(`${id}: prepare() did not run`);
      const backend = await WebGpuBackend.create(device, model.layout, model.params, {
        sparseInput,
      });
      return meshgradSession(backend, model.batches, learningRate);
    },
    release() {
      device?.destroy();
      device = null;
    },
  };
}
