/**
 * Runs every available backend through the same timing protocol (see timing.ts) and collects
 * the medians. Environment-neutral: the browser page and the Node run both drive it.
 */
import type { Batch, Dataset, LayersSpec, MlpSpec, ParameterLayout } from '@meshgrad/core';
import { initParameters, parameterLayout, validateModelSpec } from '@meshgrad/core';
import cnnJob from '../../examples/mnist-cnn/job.json';
import { median, timeSession } from './timing.ts';
import type { TrainingSession } from './timing.ts';
import type { BackendId, BackendResult, BenchOptions, Progress, Workload } from './types.ts';

/** One backend as the suite sees it. */
export interface Candidate {
  readonly id: BackendId;
  /**
   * Makes the backend ready once (registers it, requests a device, switches TF.js to it) and
   * returns a note on how it runs. Throwing means "not available here", with the reason.
   */
  prepare(): Promise<string>;
  /** A fresh model at the benchmark's initial parameters. */
  open(): Promise<TrainingSession>;
  /** Frees what `prepare` acquired (a GPU device), once every repetition has run. */
  release?(): void;
}

/** The benchmark model and its initial parameters, shared by every candidate. */
export interface BenchModel {
  readonly workload: Workload;
  readonly layout: ParameterLayout;
  readonly params: Float32Array;
  readonly batches: readonly Batch[];
}

export function benchModel(train: Dataset, options: BenchOptions): BenchModel {
  const spec: MlpSpec = {
    kind: 'mlp',
    inputs: train.features,
    hidden: options.hidden,
    classes: train.classes,
  };
  const layout = parameterLayout(spec);
  return {
    workload: 'mlp',
    layout,
    params: initParameters(layout, options.seed),
    batches: benchBatches(train, options),
  };
}

/** The CNN of examples/mnist-cnn/job.json (its one home), checked as the server checks it. */
export function cnnSpec(): LayersSpec {
  const spec = cnnJob.model as unknown as LayersSpec;
  validateModelSpec(spec);
  return spec;
}

/** The MNIST CNN on the same minibatches as the MLP (benchBatches), seeded as meshgrad seeds it. */
export function cnnBenchModel(train: Dataset, options: BenchOptions): BenchModel {
  const layout = parameterLayout(cnnSpec());
  return {
    workload: 'cnn',
    layout,
    params: initParameters(layout, options.seed),
    batches: benchBatches(train, options),
  };
}

/** A backend id with the workload's prefix (`cnn-meshgrad-cpu`); the MLP's ids have none. */
export function workloadId(workload: Workload, id: string): BackendId {
  return (workload === 'mlp' ? id : `${workload}-${id}`) as BackendId;
}

/**
 * `batchCount` real minibatches: consecutive rows of the training split, which loadMnist has
 * already shuffled, so each batch mixes digits. Views, not copies: both sides read the same
 * memory.
 */
export function benchBatches(train: Dataset, options: BenchOptions): Batch[] {
  const { batchSize, batchCount } = options;
  if (!train.labels) throw new Error(`${train.name} has no labels`);
  if (train.count < batchSize * batchCount) {
    throw new Error(`${train.name} has ${train.count} rows, fewer than ${batchSize * batchCount}`);
  }
  const batches: Batch[] = [];
  for (let i = 0; i < batchCount; i++) {
    const from = i * batchSize;
    batches.push({
      size: batchSize,
      x: train.x.subarray(from * train.features, (from + batchSize) * train.features),
      labels: train.labels.subarray(from, from + batchSize),
    });
  }
  return batches;
}

export async function runSuite(
  candidates: readonly Candidate[],
  options: BenchOptions,
  progress: Progress,
): Promise<BackendResult[]> {
  const selected = candidates.filter(
    (c) => options.only.length === 0 || options.only.includes(c.id),
  );
  const state = new Map<
    BackendId,
    { note: string; error: string | null; runs: number[]; lastLoss: number | null }
  >();
  for (const c of selected) {
    progress(`preparing ${c.id}`);
    try {
      const note = await c.prepare();
      state.set(c.id, { note, error: null, runs: [], lastLoss: null });
      progress(`  ${c.id}: ${note}`);
    } catch (err) {
      const error = errorText(err);
      state.set(c.id, { note: '', error, runs: [], lastLoss: null });
      progress(`  ${c.id}: unavailable: ${error}`);
    }
  }
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const c of selected) {
      const s = state.get(c.id);
      if (!s || s.error !== null) continue;
      const label = `${c.id} rep ${rep}/${options.reps}`;
      progress(`${label}: ${options.warmupSteps} warm-up + ${options.steps} timed steps`);
      let session: TrainingSession | null = null;
      try {
        session = await c.open();
        const run = await timeSession(session, options, label, progress);
        if (!Number.isFinite(run.lastLoss))
          throw new Error(`loss is ${run.lastLoss} after training`);
        s.runs.push(run.samplesPerSecond);
        s.lastLoss = run.lastLoss;
        progress(
          `${label}: ${run.samplesPerSecond.toFixed(1)} samples/s, loss ${run.lastLoss.toFixed(4)}`,
        );
      } catch (err) {
        s.error = errorText(err);
        progress(`${label}: failed: ${s.error}`);
      } finally {
        session?.dispose();
      }
    }
  }
  for (const c of selected) c.release?.();
  return selected.map((c) => {
    const s = state.get(c.id);
    const ok = s !== undefined && s.error === null && s.runs.length > 0;
    return {
      id: c.id,
      samplesPerSecond: ok ? median(s.runs) : null,
      repetitions: s?.runs ?? [],
      lastLoss: s?.lastLoss ?? null,
      note: s?.note ?? '',
      error: ok ? null : (s?.error ?? 'not run'),
    };
  });
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
