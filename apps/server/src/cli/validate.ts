/**
 * `meshgrad validate`: everything the server would check before running a job, without starting
 * one: the spec, its data files, and the model against the data.
 */
import path from 'node:path';
import {
  describeModel,
  initParameters,
  parameterLayout,
  type Dataset,
  type ParameterLayout,
} from '@meshgrad/core';
import { openCustomKernel } from '../jobs/custom-kernel.ts';
import { loadJobData } from '../jobs/data.ts';
import { coreModelSpec, JobSpecError, type JobSpec } from '../jobs/job-spec.ts';
import { CliError, readSpecFile } from './spec-file.ts';

export interface ValidationReport {
  readonly file: string;
  readonly spec: JobSpec;
  readonly layout: ParameterLayout;
  readonly train: Dataset;
  readonly test: Dataset;
}

/**
 * Reads, parses and loads a job spec file and its data.
 * @throws CliError (unreadable file, bad JSON) or JobSpecError (naming the field).
 */
export async function validateJobFile(file: string): Promise<ValidationReport> {
  const spec = await readSpecFile(file);
  const { train, test } = await loadJobData(spec);
  const layout = parameterLayout(coreModelSpec(spec.model), spec.blockSize);
  if (spec.model.kind === 'custom') {
    // Compiled with Dawn and run once on a minibatch, exactly as `serve` does when it loads it.
    const kernel = await openCustomKernel(
      spec,
      layout,
      initParameters(layout, spec.seed, train),
      train,
    );
    kernel.destroy();
  }
  return { file, spec, layout, train, test };
}

/** One line per problem: `job.json: error: dataset.file: iris.csv: … (at line 7)`. */
export function formatValidationError(file: string, err: unknown): string {
  if (err instanceof JobSpecError) return `${file}: error: ${err.field}: ${err.reason}`;
  if (err instanceof CliError) {
    const rest = err.message.startsWith(`${file}: `)
      ? err.message.slice(file.length + 2)
      : err.message;
    return `${file}: error: ${rest}`;
  }
  return `${file}: error: ${err instanceof Error ? err.message : String(err)}`;
}

function modelText(spec: JobSpec): string {
  const m = spec.model;
  switch (m.kind) {
    case 'softmax':
      return `softmax regression, ${m.inputs} inputs, ${m.classes} classes`;
    case 'mlp':
      return `MLP ${[m.inputs, ...m.hidden, m.classes].join('-')}`;
    case 'kmeans':
      return `K-Means, ${m.clusters} centres in ${m.dims} dimensions`;
    case 'custom':
      return `custom WGSL kernel ${m.kernel ? path.basename(m.kernel) : '(inline)'}, ${m.inputs} inputs${m.classes ? `, ${m.classes} classes` : ''}, tensors ${m.tensors.map((t) => `${t.name} [${t.shape.join(', ')}]`).join(', ')}`;
    case 'layers':
      return describeModel(m);
  }
}

function datasetText(spec: JobSpec, train: Dataset, test: Dataset): string {
  const d = spec.dataset;
  const source =
    d.kind === 'csv'
      ? `csv ${path.basename(d.file)}`
      : d.kind === 'idx'
        ? `idx ${path.basename(d.images)}`
        : d.kind === 'npy'
          ? `npy ${path.basename(d.features)}`
          : d.kind === 'text'
            ? `text ${path.basename(d.file)}`
            : d.kind;
  const classes = train.labels
    ? `, ${Math.max(train.classes, test.classes)} classes`
    : d.kind === 'text'
      ? ' (token ids)'
      : ', unlabelled';
  return `${source}: ${train.count} training / ${test.count} held-out samples, ${train.features} features${classes}`;
}

function stopText(spec: JobSpec): string {
  const s = spec.stop;
  const parts = [
    s.targetAccuracy !== undefined ? `test accuracy ≥ ${s.targetAccuracy}` : null,
    s.targetObjective !== undefined ? `test objective ≤ ${s.targetObjective}` : null,
    s.targetLoss !== undefined ? `test loss ≤ ${s.targetLoss}` : null,
    s.maxSamples !== undefined ? `${s.maxSamples} samples` : null,
  ].filter((p) => p !== null);
  return parts.length ? `at ${parts.join(' or ')}` : 'never (until the admin stops it)';
}

/** What a valid spec will run, a few aligned lines. */
export function formatValidationReport(r: ValidationReport): string {
  const { spec, layout } = r;
  const b = spec.balancer;
  const c = spec.communication;
  const balancer =
    b.mode === 'fixed'
      ? `fixed: b=${b.communicationPeriod}, m=${b.blocksPerMessage}, ${b.encoding}`
      : `automatic, starting at b=${c.communicationPeriod}, m=${c.blocksPerMessage}, ${c.encoding}`;
  const rows: Array<[string, string]> = [
    ['job', `${spec.id} (${spec.name})`],
    [
      'model',
      `${modelText(spec)}: ${layout.size} parameters in ${layout.blockCount} block${layout.blockCount === 1 ? '' : 's'}`,
    ],
    ['dataset', datasetText(spec, r.train, r.test)],
    [
      'training',
      `batch ${spec.batchSize}, learning rate ${spec.learningRate}, ${spec.shards} shards`,
    ],
    ['balancer', balancer],
    ['stops', stopText(spec)],
  ];
  return [`${r.file}: ok`, ...rows.map(([k, v]) => `  ${k.padEnd(9)} ${v}`)].join('\n') + '\n';
}
