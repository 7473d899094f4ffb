/** meshgrad's backends as benchmark candidates (browser and Node alike). */
import { CpuBackend } from '@meshgrad/core';
import { requestBackendDevice, WebGpuBackend } from '@meshgrad/shaders';
import { LOOP_PEERS, meshgradLoopSession } from './meshgrad-loop.ts';
import { meshgradSession } from './meshgrad-mlp.ts';
import { workloadId } from './suite.ts';
import type { BenchModel, Candidate } from './suite.ts';

/** `loop`: inside the ASGD loop with communication (meshgrad-loop.ts), id `meshgrad-cpu-loop`. */
export function meshgradCpuCandidate(
  model: BenchModel,
  learningRate: number,
  loop = false,
): Candidate {
  return {
    id: workloadId(model.workload, loop ? 'meshgrad-cpu-loop' : 'meshgrad-cpu'),
    prepare: async () =>
      loop ? `CpuBackend in the ASGD loop, ${LOOP_PEERS} peers` : 'CpuBackend (float32, JS)',
    open: async () => {
      const backend = new CpuBackend(model.layout, model.params);
      return loop
        ? meshgradLoopSession(backend, model.params, model.batches, learningRate)
        : meshgradSession(backend, model.batches, learningRate);
    },
  };
}

/**
 * WebGpuBackend on its own device, from a fresh adapter of the GPU TF.js's webgpu backend also
 * uses (an adapter gives out one device only).
 * `sparseInput: 'never'` (id `meshgrad-webgpu-dense`) turns off the first-layer sparse path that
 * MNIST's mostly-zero pixels trigger, to show what the dense kernels alone do against TF.js's
 * dense matmuls. `loop` (id `meshgrad-webgpu-loop`, sparse path as `auto`) runs the steps inside
 * the ASGD loop with communication (meshgrad-loop.ts).
 */
export function meshgradWebgpuCandidate(
  gpu: GPU,
  model: BenchModel,
  learningRate: number,
  sparseInput: 'auto' | 'never' = 'auto',
  loop = false,
): Candidate {
  const id = workloadId(
    model.workload,
    loop
      ? 'meshgrad-webgpu-loop'
      : sparseInput === 'auto'
        ? 'meshgrad-webgpu'
        : 'meshgrad-webgpu-dense',
  );
  let device: GPUDevice | null = null;
  return {
    id,
    async prepare() {
      const adapter = await gpu.requestAdapter();
      device = await requestBackendDevice(adapter);
      const info = device.adapterInfo;
      const where = loop ? `, in the ASGD loop with ${LOOP_PEERS} peers` : '';
      const sparse = model.workload === 'mlp' ? `, sparse first layer ${sparseInput}` : '';
      return `WebGpuBackend on ${info.vendor} ${info.architecture}${sparse}${where}`;
    },
    async open() {
      if (!device) throw new Error(`${id}: prepare() did not run`);
      const backend = await WebGpuBackend.create(device, model.layout, model.params, {
        sparseInput,
      });
      if (!loop) return meshgradSession(backend, model.batches, learningRate);
      // Room for every peer's every block, compiled here as the volunteer's loop does.
      await backend.reserveMailbox(LOOP_PEERS * model.layout.blockCount);
      return meshgradLoopSession(backend, model.params, model.batches, learningRate);
    },
    release() {
      device?.destroy();
      device = null;
    },
  };
}
