/**
 * `meshgrad export`: a stored checkpoint as safetensors (one F32 tensor per model tensor) or as
 * NumPy .npy files (one per tensor, in a directory), for PyTorch, JAX or NumPy users.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { encodeNpy, exportParameters, parameterLayout, type ParameterLayout } from '@meshgrad/core';
import { coreModelSpec, parseJobSpec, type JobSpec } from '../jobs/job-spec.ts';
import { parseCheckpointManifest, type CheckpointManifest } from '../store.ts';
import { CliError, parseJsonText } from './spec-file.ts';

export type ExportFormat = 'safetensors' | 'npy';

export interface LoadedCheckpoint {
  readonly spec: JobSpec;
  readonly layout: ParameterLayout;
  readonly manifest: CheckpointManifest;
  readonly params: Float32Array;
  /** The job's directory in the data directory. */
  readonly jobDir: string;
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'ENOENT' ? `${file}: file not found` : `${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return parseJsonText(text, file);
}

/**
 * Finds the checkpoint `target` names: a job directory in the data directory
 * (`.meshgrad/jobs/<job>`, its latest checkpoint), its `checkpoints` directory (the latest), a
 * manifest (`<seq>.json` or `latest.json`) or a weights file (`<seq>.bin`).
 */
async function locate(target: string): Promise<{ jobDir: string; manifestFile: string }> {
  const abs = path.resolve(target);
  if (await isDirectory(abs)) {
    if (await isDirectory(path.join(abs, 'checkpoints'))) {
      return { jobDir: abs, manifestFile: path.join(abs, 'checkpoints', 'latest.json') };
    }
    if (path.basename(abs) === 'checkpoints') {
      return { jobDir: path.dirname(abs), manifestFile: path.join(abs, 'latest.json') };
    }
    throw new CliError(
      `${target}: not a job directory (expected one with a checkpoints/ folder, e.g. .meshgrad/jobs/<job>)`,
    );
  }
  const dir = path.dirname(abs);
  const jobDir = path.dirname(dir);
  if (abs.endsWith('.json')) return { jobDir, manifestFile: abs };
  const bin = /^(\d+)\.bin$/.exec(path.basename(abs));
  if (bin) return { jobDir, manifestFile: path.join(dir, `${bin[1]}.json`) };
  throw new CliError(
    `${target}: expected a job directory, a checkpoint manifest (<seq>.json, latest.json) or weights (<seq>.bin)`,
  );
}

/** Reads a checkpoint with its job's spec (for the tensor names and shapes). */
export async function loadCheckpoint(target: string): Promise<LoadedCheckpoint> {
  const { jobDir, manifestFile } = await locate(target);
  const specFile = path.join(jobDir, 'spec.json');
  let manifestValue: unknown;
  try {
    manifestValue = await readJsonFile(manifestFile);
  } catch (err) {
    if (
      path.basename(manifestFile) === 'latest.json' &&
      /file not found/.test((err as Error).message)
    ) {
      throw new CliError(`${jobDir}: the job has no checkpoint yet`, { cause: err });
    }
    throw err;
  }
  const m = parseCheckpointManifest(manifestValue);
  if (!m.ok) throw new CliError(`${manifestFile}: not a checkpoint manifest: ${m.message}`);
  const { manifest } = m;
  let spec: JobSpec;
  try {
    spec = parseJobSpec(await readJsonFile(specFile));
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`${specFile}: ${(err as Error).message}`, { cause: err });
  }
  const layout = parameterLayout(coreModelSpec(spec.model), spec.blockSize);
  if (manifest.parameters !== layout.size) {
    throw new CliError(
      `${manifestFile}: the checkpoint has ${manifest.parameters} parameters, the job's model ${layout.size}`,
    );
  }
  const weightsFile = path.join(path.dirname(manifestFile), manifest.file);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(weightsFile);
  } catch (err) {
    throw new CliError(`${weightsFile}: ${(err as Error).message}`, { cause: err });
  }
  if (bytes.byteLength !== layout.size * 4) {
    throw new CliError(
      `${weightsFile}: ${bytes.byteLength} bytes, expected ${layout.size * 4} (${layout.size} float32 values)`,
    );
  }
  const params = new Float32Array(layout.size);
  new Uint8Array(params.buffer).set(bytes);
  return { spec, layout, manifest, params, jobDir };
}

/** safetensors metadata, the same keys the admin console's download carries. */
function metadata(c: LoadedCheckpoint): Record<string, string> {
  const { manifest } = c;
  return {
    'meshgrad.job': manifest.job,
    'meshgrad.checkpoint': String(manifest.seq),
    'meshgrad.samples': String(manifest.samples),
    'meshgrad.created_at': manifest.createdAt,
    'meshgrad.test_loss': String(manifest.testLoss),
    ...(manifest.testAccuracy !== undefined
      ? { 'meshgrad.test_accuracy': String(manifest.testAccuracy) }
      : {}),
    ...(manifest.testObjective !== undefined
      ? { 'meshgrad.test_objective': String(manifest.testObjective) }
      : {}),
    'meshgrad.layout':
      'dense weights are [in, out] (y = x @ W + b, ReLU between layers); K-Means centres are [clusters, dims]',
  };
}

export interface ExportResult {
  /** Files written. */
  readonly files: string[];
  readonly checkpoint: LoadedCheckpoint;
}

/**
 * Writes the checkpoint `target` names. safetensors: one file, default
 * `<job>-checkpoint-<seq>.safetensors`. npy: a directory, default `<job>-checkpoint-<seq>/`,
 * holding `<tensor>.npy` for each tensor.
 */
export async function exportCheckpoint(
  target: string,
  format: ExportFormat,
  out?: string,
): Promise<ExportResult> {
  const c = await loadCheckpoint(target);
  const stem = `${c.manifest.job}-checkpoint-${c.manifest.seq}`;
  if (format === 'safetensors') {
    const file = path.resolve(out ?? `${stem}.safetensors`);
    await fs.writeFile(file, exportParameters(c.layout, c.params, metadata(c)));
    return { files: [file], checkpoint: c };
  }
  const dir = path.resolve(out ?? stem);
  await fs.mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const t of c.layout.tensors) {
    const file = path.join(dir, `${t.name}.npy`);
    await fs.writeFile(file, encodeNpy(t.shape, c.params.subarray(t.offset, t.offset + t.size)));
    files.push(file);
  }
  return { files, checkpoint: c };
}
