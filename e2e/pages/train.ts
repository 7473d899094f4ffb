/**
 * Training page: meshgrad's WebGpuBackend trains the built-in models on this browser's adapter;
 * the result is judged on parameters read back, with core's CPU `evaluate`.
 */
import {
  Batcher,
  CpuBackend,
  decodeDataset,
  evaluate,
  gaussianClusters,
  initParameters,
  parameterLayout,
} from '@meshgrad/core';
import type { Backend, Dataset, ParameterLayout } from '@meshgrad/core';
import { requestBackendDevice, WebGpuBackend } from '@meshgrad/shaders';
import {
  describeAdapter,
  adapterSummary,
  expose,
  fetchBytes,
  log,
  requireAdapter,
} from './_common.ts';

export interface MlpRunOptions {
  readonly hidden: readonly number[];
  readonly batchSize: number;
  readonly learningRate: number;
  readonly steps: number;
  readonly seed: number;
  /** Drain losses (one readback) every this many steps. */
  readonly logEvery: number;
}

export interface MlpRunResult {
  readonly adapter: string;
  readonly parameters: number;
  readonly trainCount: number;
  readonly testCount: number;
  readonly initialAccuracy: number;
  readonly accuracy: number;
  readonly testLoss: number;
  /** Mean training loss of each logging window, in order. */
  readonly lossCurve: number[];
  readonly trainSeconds: number;
  readonly samplesPerSecond: number;
  /** Test accuracy of CpuBackend trained on the same minibatches from the same start. */
  readonly cpuAccuracy: number;
  /** max |w_webgpu − w_cpu| / max |w_cpu| after training. */
  readonly maxParamDifference: number;
}

export interface KMeansRunOptions {
  readonly clusters: number;
  readonly dims: number;
  readonly count: number;
  readonly spread: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly steps: number;
  readonly seed: number;
  readonly logEvery: number;
}

export interface KMeansRunResult {
  readonly adapter: string;
  /** Objective (mean squared distance to the nearest centre) at the initial centres. */
  readonly initialObjective: number;
  /** ... at the centres the backend learned. */
  readonly learnedObjective: number;
  /** ... at the true generating centres. */
  readonly trueObjective: number;
  readonly lossCurve: number[];
  readonly trainSeconds: number;
}

async function openDevice(): Promise<{ device: GPUDevice; adapter: string }> {
  const adapter = await requireAdapter();
  const device = await requestBackendDevice(adapter);
  return { device, adapter: describeAdapter(adapterSummary(adapter)) };
}

/** Trains `steps` minibatches, draining the losses every `logEvery` steps. */
async function train(
  backend: Backend,
  data: Dataset,
  options: {
    batchSize: number;
    learningRate: number;
    steps: number;
    seed: number;
    logEvery: number;
  },
): Promise<{ lossCurve: number[]; seconds: number }> {
  const batcher = new Batcher(data, options.batchSize, options.seed);
  const lossCurve: number[] = [];
  const started = performance.now();
  for (let i = 1; i <= options.steps; i++) {
    backend.step(batcher.next(), options.learningRate);
    if (i % options.logEvery === 0 || i === options.steps) {
      const { losses } = await backend.drainStats();
      const mean = losses.reduce((a, b) => a + b, 0) / Math.max(1, losses.length);
      lossCurve.push(mean);
      const seconds = (performance.now() - started) / 1000;
      log(
        `step ${i}/${options.steps}: loss ${mean.toFixed(4)}, ${((i * options.batchSize) / seconds).toFixed(0)} samples/s`,
      );
    }
  }
  return { lossCurve, seconds: (performance.now() - started) / 1000 };
}

async function trainMlp(options: MlpRunOptions): Promise<MlpRunResult> {
  const { device, adapter } = await openDevice();
  log(`adapter: ${adapter}`);
  try {
    const [trainBytes, testBytes] = await Promise.all([
      fetchBytes('mnist-train'),
      fetchBytes('mnist-test'),
    ]);
    const trainSet = decodeDataset(trainBytes);
    const testSet = decodeDataset(testBytes);
    const layout: ParameterLayout = parameterLayout({
      kind: 'mlp',
      inputs: trainSet.features,
      hidden: options.hidden,
      classes: trainSet.classes,
    });
    const initial = initParameters(layout, options.seed);
    const backend = await WebGpuBackend.create(device, layout, initial);
    try {
      const run = await train(backend, trainSet, options);
      const learned = await backend.readParameters();
      const result = evaluate(layout, learned, testSet);
      log('training CpuBackend on the same minibatches for reference');
      const cpu = new CpuBackend(layout, initial);
      await train(cpu, trainSet, { ...options, logEvery: options.steps });
      const cpuLearned = await cpu.readParameters();
      cpu.destroy();
      return {
        adapter,
        parameters: layout.size,
        trainCount: trainSet.count,
        testCount: testSet.count,
        initialAccuracy: evaluate(layout, initial, testSet).accuracy ?? NaN,
        accuracy: result.accuracy ?? NaN,
        testLoss: result.loss,
        lossCurve: run.lossCurve,
        trainSeconds: run.seconds,
        samplesPerSecond: (options.steps * options.batchSize) / run.seconds,
        cpuAccuracy: evaluate(layout, cpuLearned, testSet).accuracy ?? NaN,
        maxParamDifference: maxAbsDifference(learned, cpuLearned) / maxAbs(cpuLearned),
      };
    } finally {
      backend.destroy();
    }
  } finally {
    device.destroy();
  }
}

async function trainKMeans(options: KMeansRunOptions): Promise<KMeansRunResult> {
  const { device, adapter } = await openDevice();
  log(`adapter: ${adapter}`);
  try {
    const { dataset, centres } = gaussianClusters({
      clusters: options.clusters,
      dims: options.dims,
      count: options.count,
      spread: options.spread,
      seed: options.seed,
    });
    const layout = parameterLayout({
      kind: 'kmeans',
      dims: options.dims,
      clusters: options.clusters,
    });
    const initial = initParameters(layout, options.seed, dataset);
    const objective = (params: Float32Array): number =>
      evaluate(layout, params, dataset).objective ?? NaN;
    const backend = await WebGpuBackend.create(device, layout, initial);
    try {
      const run = await train(backend, dataset, options);
      return {
        adapter,
        initialObjective: objective(initial),
        learnedObjective: objective(await backend.readParameters()),
        trueObjective: objective(Float32Array.from(centres)),
        lossCurve: run.lossCurve,
        trainSeconds: run.seconds,
      };
    } finally {
      backend.destroy();
    }
  } finally {
    device.destroy();
  }
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

expose({ trainMlp, trainKMeans });
