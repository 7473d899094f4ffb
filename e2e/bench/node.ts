/**
 * The benchmark in Node: WebGPU through Dawn (the `webgpu` package), so on a machine with a
 * hardware GPU the same command measures it; TF.js's cpu, wasm and webgpu backends as far as
 * they run in Node (webgl does not: there is no WebGL here).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadMnist } from '@meshgrad/core';
import type { AdapterSummary } from '../pages/_common.ts';
import { adapterSummary, describeAdapter } from '../pages/_common.ts';
import { meshgradCpuCandidate, meshgradWebgpuCandidate } from './meshgrad-candidates.ts';
import { benchModel, cnnBenchModel, errorText, runSuite, workloadId } from './suite.ts';
import type { BenchModel } from './suite.ts';
import type { Candidate } from './suite.ts';
import { tfjsCandidate } from './tfjs-candidates.ts';
import type { BenchOptions, Progress, SuiteResult } from './types.ts';

/** SwiftShader's Vulkan driver from Debian's chromium package (docs/recipes.md). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

interface DawnGpu {
  readonly gpu: GPU;
  readonly adapter: GPUAdapter;
  readonly summary: AdapterSummary;
}

/**
 * Dawn's GPU and adapter. A hardware driver wins when there is one; without any, Vulkan's loader
 * is pointed at SwiftShader (VK_ICD_FILENAMES, read when Dawn creates its instance) and asked
 * again, so GPU-less machines still get an adapter.
 */
async function openDawn(progress: Progress): Promise<DawnGpu> {
  const webgpu = (await import('webgpu')) as unknown as {
    create(flags: string[]): GPU;
    globals: Record<string, unknown>;
  };
  // Dawn's GPUBufferUsage, GPUMapMode, ... are what browser code expects as globals.
  Object.assign(globalThis, webgpu.globals);
  let gpu = webgpu.create([]);
  let adapter = await gpu.requestAdapter();
  if (!adapter && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
    progress(`no Vulkan adapter; retrying with VK_ICD_FILENAMES=${SWIFTSHADER_ICD}`);
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    gpu = webgpu.create([]);
    adapter = await gpu.requestAdapter();
  }
  if (!adapter) {
    throw new Error(
      `Dawn found no WebGPU adapter (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? 'unset'}); ` +
        `on a machine without a GPU set VK_ICD_FILENAMES=${SWIFTSHADER_ICD}`,
    );
  }
  return { gpu, adapter, summary: adapterSummary(adapter) };
}

/** TF.js's webgpu backend looks for `navigator.gpu` when it is imported; Node 20 has no navigator. */
function exposeNavigatorGpu(gpu: GPU): void {
  const existing = (globalThis as { navigator?: object }).navigator;
  if (existing) {
    Object.defineProperty(existing, 'gpu', { value: gpu, configurable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', {
      value: { gpu, userAgent: `Node.js ${process.version}` },
      configurable: true,
    });
  }
}

export async function runNodeSuite(
  options: BenchOptions,
  progress: Progress,
): Promise<SuiteResult> {
  const dawn = await openDawn(progress);
  const adapter = describeAdapter(dawn.summary);
  progress(`adapter (Dawn): ${adapter}`);
  exposeNavigatorGpu(dawn.gpu);

  const tf = await import('@tensorflow/tfjs-core');
  // Gradients are registered separately from the ops (the `@tensorflow/tfjs` umbrella does this).
  await import('@tensorflow/tfjs-core/dist/register_all_gradients');
  // Each backend registers itself on import; one that cannot load here is reported, not fatal.
  const registered: Record<string, string | null> = {};
  for (const [name, load] of [
    ['cpu', () => import('@tensorflow/tfjs-backend-cpu')],
    [
      'wasm',
      async () => {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        // Bundled, the backend cannot find its .wasm files beside itself: point it at the package.
        const pkg = createRequire(import.meta.url).resolve(
          '@tensorflow/tfjs-backend-wasm/package.json',
        );
        wasm.setWasmPaths(join(dirname(pkg), 'dist') + '/');
      },
    ],
    ['webgpu', () => import('@tensorflow/tfjs-backend-webgpu')],
  ] as const) {
    try {
      await load();
      registered[name] = null;
    } catch (err) {
      registered[name] = errorText(err);
    }
  }

  const train = (await loadMnist()).train;
  const lr = options.learningRate;
  const unavailable = (id: Candidate['id'], why: string): Candidate => ({
    id,
    prepare: async () => {
      throw new Error(why);
    },
    open: async () => {
      throw new Error(why);
    },
  });
  const tfjs = (name: string, model: BenchModel): Candidate => {
    const why = registered[name];
    return why
      ? unavailable(workloadId(model.workload, `tfjs-${name}`), `import failed: ${why}`)
      : tfjsCandidate(tf, name, model, lr);
  };
  const candidates: Candidate[] = [];
  if (options.models.includes('mlp')) {
    const model = benchModel(train, options);
    candidates.push(
      meshgradWebgpuCandidate(dawn.gpu, model, lr),
      meshgradWebgpuCandidate(dawn.gpu, model, lr, 'never'),
      meshgradWebgpuCandidate(dawn.gpu, model, lr, 'auto', true),
      tfjs('webgpu', model),
      unavailable('tfjs-webgl', 'no WebGL in Node'),
      tfjs('wasm', model),
      tfjs('cpu', model),
      meshgradCpuCandidate(model, lr),
      meshgradCpuCandidate(model, lr, true),
    );
  }
  if (options.models.includes('cnn')) {
    const model = cnnBenchModel(train, options);
    candidates.push(
      meshgradWebgpuCandidate(dawn.gpu, model, lr),
      tfjs('webgpu', model),
      unavailable('cnn-tfjs-webgl', 'no WebGL in Node'),
      tfjs('wasm', model),
      tfjs('cpu', model),
      meshgradCpuCandidate(model, lr),
    );
  }
  const results = await runSuite(candidates, options, progress);
  return { env: 'node', adapter, userAgent: `Node.js ${process.version}`, options, results };
}
