/** Options and results of the kernel benchmark, shared by the CLI, the page and the Node run. */

/**
 * Which model a row trains: the 784-128-10 MLP (ids without a prefix) or the MNIST CNN of
 * examples/mnist-cnn (ids `cnn-…`).
 */
export const WORKLOADS = ['mlp', 'cnn'] as const;
export type Workload = (typeof WORKLOADS)[number];

export interface BenchOptions {
  /** Samples per minibatch (the brief's workload: 64). */
  readonly batchSize: number;
  /** Hidden widths of the MLP; the benchmark model is 784-128-10. */
  readonly hidden: readonly number[];
  /** Plain SGD learning rate, the same for every implementation. */
  readonly learningRate: number;
  /** Untimed steps before each timed run: pipeline compiles, buffer pools, JIT. */
  readonly warmupSteps: number;
  /** Timed steps per repetition, the same for every backend. */
  readonly steps: number;
  /**
   * Repetitions (rounds) per backend; the median is reported, and each ratio is the median of
   * the per-round ratios with a 95% interval (paired.ts), which needs at least 6 rounds.
   */
  readonly reps: number;
  /** Wait for queued device work every this many steps (and always at the end). */
  readonly syncEvery: number;
  /** Distinct real MNIST minibatches, cycled through. */
  readonly batchCount: number;
  /** Which backends to run, by id (see BACKEND_IDS); empty means all that are available. */
  readonly only: readonly string[];
  /** Which models to train (WORKLOADS); each adds its rows. */
  readonly models: readonly Workload[];
  readonly seed: number;
}

export const DEFAULT_BENCH_OPTIONS: BenchOptions = {
  batchSize: 64,
  hidden: [128],
  learningRate: 0.05,
  warmupSteps: 5,
  steps: 50,
  reps: 9,
  syncEvery: 10,
  batchCount: 32,
  only: [],
  models: WORKLOADS,
  seed: 1,
};

/** Every backend the benchmark knows, in the order it runs them. */
export const BACKEND_IDS = [
  'meshgrad-webgpu',
  'meshgrad-webgpu-dense',
  'meshgrad-webgpu-loop',
  'tfjs-webgpu',
  'tfjs-webgl',
  'tfjs-wasm',
  'tfjs-cpu',
  'meshgrad-cpu',
  'meshgrad-cpu-loop',
  // The MNIST CNN (examples/mnist-cnn) at the same batch size and minibatches.
  'cnn-meshgrad-webgpu',
  'cnn-tfjs-webgpu',
  'cnn-tfjs-webgl',
  'cnn-tfjs-wasm',
  'cnn-tfjs-cpu',
  'cnn-meshgrad-cpu',
] as const;
export type BackendId = (typeof BACKEND_IDS)[number];

export interface BackendResult {
  readonly id: BackendId;
  /** Null when the backend could not run here; `error` says why. */
  readonly samplesPerSecond: number | null;
  /** Samples/s of each repetition, in order. */
  readonly repetitions: number[];
  /** Mean loss of the last timed step of the last repetition (sanity: it must be finite). */
  readonly lastLoss: number | null;
  /** Anything worth knowing about how it ran (e.g. the TF.js WASM variant). */
  readonly note: string;
  readonly error: string | null;
}

export interface SuiteResult {
  readonly env: 'browser' | 'node';
  readonly adapter: string;
  readonly userAgent: string;
  readonly options: BenchOptions;
  readonly results: BackendResult[];
}

/** Progress lines, printed by the CLI as they come. */
export type Progress = (line: string) => void;
