/**
 * Kernel benchmark page: meshgrad's backends and every TF.js backend this browser has, trained
 * side by side on the same adapter, model and minibatches (driven by scripts/bench-kernels.mjs).
 */
import * as tf from '@tensorflow/tfjs-core';
// Gradients are registered separately from the ops (the `@tensorflow/tfjs` umbrella does this).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { decodeDataset } from '@meshgrad/core';
import {
  adapterSummary,
  describeAdapter,
  expose,
  fetchBytes,
  log,
  requireAdapter,
} from './_common.ts';
import { meshgradCpuCandidate, meshgradWebgpuCandidate } from '../bench/meshgrad-candidates.ts';
import { benchModel, cnnBenchModel, runSuite } from '../bench/suite.ts';
import type { BenchModel } from '../bench/suite.ts';
import type { Candidate } from '../bench/suite.ts';
import { tfjsCandidate } from '../bench/tfjs-candidates.ts';
import type { BenchOptions, SuiteResult } from '../bench/types.ts';

async function bench(options: BenchOptions): Promise<SuiteResult> {
  // A missing adapter fails the whole run: a WebGPU comparison without WebGPU means nothing.
  const adapter = adapterSummary(await requireAdapter());
  log(`adapter: ${describeAdapter(adapter)}`);
  setWasmPaths(new URL('/tfjs-wasm/', location.href).href);

  const train = decodeDataset(await fetchBytes('mnist-train'));
  const lr = options.learningRate;
  const tfjsAll = (model: BenchModel): Candidate[] => [
    tfjsCandidate(tf, 'webgpu', model, lr),
    tfjsCandidate(
      tf,
      'webgl',
      model,
      lr,
      async () => `WebGL ${tf.env().getNumber('WEBGL_VERSION')} on ${webglRenderer()}`,
    ),
    tfjsCandidate(tf, 'wasm', model, lr, async () => {
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
      return `simd ${String(simd)}, multithread support ${String(threads)}, threads ${getThreadsCount()}`;
    }),
    tfjsCandidate(tf, 'cpu', model, lr),
  ];
  const candidates: Candidate[] = [];
  if (options.models.includes('mlp')) {
    const model = benchModel(train, options);
    log(
      `model: ${train.features}-${options.hidden.join('-')}-${train.classes} MLP, ${model.layout.size} parameters, batch ${options.batchSize}`,
    );
    candidates.push(
      meshgradWebgpuCandidate(navigator.gpu, model, lr),
      meshgradWebgpuCandidate(navigator.gpu, model, lr, 'never'),
      meshgradWebgpuCandidate(navigator.gpu, model, lr, 'auto', true),
      ...tfjsAll(model),
      meshgradCpuCandidate(model, lr),
      meshgradCpuCandidate(model, lr, true),
    );
  }
  if (options.models.includes('cnn')) {
    const model = cnnBenchModel(train, options);
    log(`model: MNIST CNN, ${model.layout.size} parameters, batch ${options.batchSize}`);
    candidates.push(
      meshgradWebgpuCandidate(navigator.gpu, model, lr),
      ...tfjsAll(model),
      meshgradCpuCandidate(model, lr),
    );
  }
  const results = await runSuite(candidates, options, log);
  return {
    env: 'browser',
    adapter: describeAdapter(adapter),
    userAgent: navigator.userAgent,
    options,
    results,
  };
}

/** Which GL implementation TF.js's webgl backend runs on (ANGLE on SwiftShader without a GPU). */
function webglRenderer(): string {
  const gl = document.createElement('canvas').getContext('webgl2');
  if (!gl) return 'no WebGL 2 context';
  const debug = gl.getExtension('WEBGL_debug_renderer_info');
  return String(gl.getParameter(debug ? debug.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
}

expose({ bench });
