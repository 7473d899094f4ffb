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

/** WebGpuBackend on its own device from `adapter`, the adapter TF.js's webgpu backend also uses. */
export function meshgradWebgpuCandidate(
  adapter: GPUAdapter,
  model: BenchModel,
  learningRate: number,
): Candidate {
  let device: GPUDevice | null = null;
  return {
    id: 'meshgrad-webgpu',
    async prepare() {
      device = await requestBackendDevice(adapter);
      return `WebGpuBackend on ${adapter.info.vendor} ${adapter.info.architecture}`;
    },
    async open() {
      if (!device) throw new Error('meshgrad-webgpu: prepare() did not run');
      const backend = await WebGpuBackend.create(device, model.layout, model.params);
      return meshgradSession(backend, model.batches, learningRate);
    },
    release() {
      device?.destroy();
      device = null;
    },
  };
}
