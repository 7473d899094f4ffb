/**
 * The job spec, format v1: what a host writes in `job.json` (docs/job-spec.md documents every
 * field). `parseJobSpec` turns a parsed JSON value into a `JobSpec` with every default filled in
 * and every file path absolute, or throws a `JobSpecError` naming the field and the reason.
 *
 * A parsed spec is itself a valid spec: the server saves it in the data directory and parses it
 * again when it resumes the job, so nothing here may change a value's shape on the way through.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  customTensorSchema,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_GUARD,
  encodingSchema,
  JOB_GUARD_MODES,
  layersModelSchema,
  MAX_BLOCK_SIZE,
  MERGE_ORDERS,
  MERGE_PARZEN_MODES,
  modelSpecSchema,
  PARZEN_MERGE_RULE,
  parameterLayout,
  type ModelSpec,
  type ModelSpecPayload,
} from '@meshgrad/core';

/** Longest file path a spec may name. */
const MAX_PATH_LENGTH = 4096;
/** Held-out fraction of a file dataset when the spec names no test files. */
export const DEFAULT_TEST_FRACTION = 0.2;

const filePath = z.string().min(1, 'must name a file').max(MAX_PATH_LENGTH);
/** Multiplies every feature value (e.g. 1/255 for byte images). */
const scale = z
  .number()
  .refine((v) => Number.isFinite(v) && v !== 0, 'must be a finite, non-zero number')
  .default(1);
/** Fraction of the rows held out for evaluation when no test files are given. */
const testFraction = z.number().gt(0, 'must be > 0').max(0.9, 'must be at most 0.9');

const notBoth = (v: { test?: unknown; testFraction?: unknown }) =>
  v.test === undefined || v.testFraction === undefined;
const notBothMessage = {
  message: 'give test files or testFraction, not both',
  path: ['testFraction'],
};

const idxDataset = z
  .strictObject({
    kind: z.literal('idx'),
    /** IDX file of samples, shape [count, ...]; each sample is flattened. */
    images: filePath,
    /** IDX file of non-negative integer labels, shape [count]; null or absent: unlabelled. */
    labels: filePath.nullable().default(null),
    scale,
    test: z
      .strictObject({ images: filePath, labels: filePath.nullable().default(null) })
      .optional(),
    testFraction: testFraction.optional(),
  })
  .refine(notBoth, notBothMessage);

const npyDataset = z
  .strictObject({
    kind: z.literal('npy'),
    /** .npy array of samples, shape [count, ...]; each sample is flattened. */
    features: filePath,
    /** .npy array of non-negative integer labels, shape [count]; null or absent: unlabelled. */
    labels: filePath.nullable().default(null),
    scale,
    test: z
      .strictObject({ features: filePath, labels: filePath.nullable().default(null) })
      .optional(),
    testFraction: testFraction.optional(),
  })
  .refine(notBoth, notBothMessage);

const csvDataset = z
  .strictObject({
    kind: z.literal('csv'),
    file: filePath,
    delimiter: z.string().length(1, 'must be one character').default(','),
    /** Whether the first row names the columns: true, false, or 'auto' (detect). */
    header: z.union([z.literal('auto'), z.boolean()]).default('auto'),
    /**
     * The label column: a header name, a 0-based index (negative counts from the end), or null
     * for unlabelled data. Absent: the last column.
     */
    labelColumn: z.union([z.string().min(1).max(256), z.number().int(), z.null()]).optional(),
    scale,
    test: z.strictObject({ file: filePath }).optional(),
    testFraction: testFraction.optional(),
  })
  .refine(notBoth, notBothMessage);

export const datasetSpecSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('mnist'),
  }),
  z.strictObject({
    kind: z.literal('clusters'),
    clusters: z.number().int().positive().max(1024),
    dims: z.number().int().positive().max(4096),
    count: z.number().int().positive().max(1_000_000),
    testCount: z.number().int().positive().max(1_000_000).default(2_000),
    spread: z.number().positive().default(1),
    seed: z.number().int().default(7),
  }),
  idxDataset,
  csvDataset,
  npyDataset,
  /**
   * Any UTF-8 file for a next-token `layers` model (core data/text.ts): byte vocabulary, the
   * last `validationFraction` of the bytes held out, windows of model.inputs tokens.
   */
  z.strictObject({
    kind: z.literal('text'),
    file: filePath,
    validationFraction: testFraction.default(0.1),
  }),
]);

/** Longest custom kernel source, in bytes of UTF-8. */
export const MAX_KERNEL_BYTES = 256 * 1024;

/**
 * A host's own model: a WGSL kernel that computes the loss gradient (docs/custom-wgsl.md), from
 * a file (`kernel`) or inline (`wgsl`), with the shapes of its parameter tensors.
 */
const customModel = z
  .strictObject({
    kind: z.literal('custom'),
    /** The kernel's .wgsl file. */
    kernel: filePath.optional(),
    /** The kernel's source, inline (instead of `kernel`). */
    wgsl: z.string().min(1).max(MAX_KERNEL_BYTES).optional(),
    entryPoint: z
      .string()
      .max(128)
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a WGSL identifier')
      .default('main'),
    /** Features per sample the kernel reads from x. */
    inputs: z.number().int().positive().max(1_000_000),
    /** Classes of the labels the kernel reads; 0 when it reads none. */
    classes: z.number().int().min(0).max(65_536).default(0),
    tensors: z.array(customTensorSchema.strict()).min(1).max(256),
  })
  .refine((m) => (m.kernel === undefined) !== (m.wgsl === undefined), {
    message: 'give kernel (a .wgsl file) or wgsl (the source inline), exactly one',
    path: ['kernel'],
  });

/** The built-in model kinds (core's schema), strict so a misspelt field is an error. */
const [softmaxModel, mlpModel, kmeansModel] = modelSpecSchema.options;

export const jobModelSchema = z.discriminatedUnion('kind', [
  softmaxModel.strict(),
  mlpModel.strict(),
  kmeansModel.strict(),
  customModel,
  layersModelSchema,
]);

export type JobModelSpec = z.output<typeof jobModelSchema>;

/** The model as core knows it: a custom model without its kernel (which travels apart). */
export function coreModelSpec(model: JobModelSpec): ModelSpecPayload {
  if (model.kind !== 'custom') return model;
  return {
    kind: 'custom',
    inputs: model.inputs,
    classes: model.classes,
    tensors: model.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      ...(t.initStd !== undefined ? { initStd: t.initStd } : {}),
    })),
  };
}

const samplesPerSend = z.number().int().min(1).max(1_000_000);
const blocksPerSend = z.number().int().min(1).max(1024);

export const balancerSpecSchema = z.discriminatedUnion('mode', [
  z
    .strictObject({ mode: z.literal(['automatic', 'auto']) })
    .transform(() => ({ mode: 'automatic' as const })),
  z.strictObject({
    mode: z.literal('fixed'),
    /** Samples between two sends (b). */
    communicationPeriod: samplesPerSend,
    /** Blocks per send (m). */
    blocksPerMessage: blocksPerSend,
    encoding: encodingSchema.default('f32'),
  }),
]);

/** Default per-round timeout of a synchronous job (s): a worker this late leaves the round. */
export const DEFAULT_ROUND_TIMEOUT_SEC = 30;

/**
 * How workers combine their work: `asgd` (default) is the paper's asynchronous SGD with peer
 * block exchange (DESIGN §3); `sync` is the synchronous parameter-server baseline, one barrier
 * per round (jobs/sync-rounds.ts).
 */
/**
 * How an ASGD step merges peer blocks (core's MergeRule, DESIGN §3.1); the defaults are the first
 * rule, `PARZEN_MERGE_RULE` (§3.7 says why not the scaling benchmark's).
 */
export const mergeSpecSchema = z.strictObject({
  /** `step-then-average` (default, the first rule) or `average-then-step`. */
  order: z.enum(MERGE_ORDERS).default(PARZEN_MERGE_RULE.order),
  /** `hard` (default): the Parzen test; `off`: every finite block under the norm bound is merged. */
  parzen: z.enum(MERGE_PARZEN_MODES).default(PARZEN_MERGE_RULE.parzen),
  /** Outer momentum β on the merged state; 0 (default) turns it off. */
  momentum: z.number().min(0).lt(1, 'must be below 1').default(PARZEN_MERGE_RULE.momentum),
  /** Steps between two outer-momentum updates (default 4, used when momentum > 0). */
  momentumPeriod: z.number().int().min(1).max(1000).default(PARZEN_MERGE_RULE.momentumPeriod),
});

export const trainingSpecSchema = z.strictObject({
  mode: z.enum(['asgd', 'sync']).default('asgd'),
  /** ASGD mode: how a step merges the peer blocks that arrived. */
  merge: mergeSpecSchema.prefault({}),
  /**
   * ASGD mode: the receive-path guard against forged blocks (core's JOB_GUARD_MODES, docs/design.md
   * §8.1): `off` or `clip-trust` (self-centred clipping with per-peer trust and quarantine).
   */
  guard: z.enum(JOB_GUARD_MODES).default(DEFAULT_GUARD),
  /** Sync mode: a worker that has not contributed this long after a round began is left out of it. */
  roundTimeoutSec: z.number().positive().max(3600).default(DEFAULT_ROUND_TIMEOUT_SEC),
});

export const stopSpecSchema = z.strictObject({
  /** Stop once a checkpoint's held-out accuracy is at least this (classifiers). */
  targetAccuracy: z.number().gt(0, 'must be > 0').max(1, 'must be at most 1').optional(),
  /** Stop once a checkpoint's held-out K-Means objective is at most this (kmeans). */
  targetObjective: z.number().min(0).optional(),
  /** Stop once a checkpoint's held-out loss is at most this (any model). */
  targetLoss: z.number().min(0).optional(),
  /** Stop once the job has processed this many samples (all workers together). */
  maxSamples: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
});

/**
 * A job as the server runs it. Every field but `id`, `name`, `model` and `dataset` has a
 * default.
 */
export const jobSpecSchema = z.strictObject({
  id: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lower-case letters, digits, _ or -'),
  name: z.string().min(1).max(200),
  description: z.string().max(2000).default(''),
  /** Who runs this job server; shown to volunteers before they join. */
  host: z.string().min(1).max(200).default('a meshgrad host'),
  model: jobModelSchema,
  dataset: datasetSpecSchema,
  batchSize: z.number().int().min(1).max(4096).default(64),
  learningRate: z.number().positive().max(100).default(0.1),
  seed: z.number().int().default(1),
  blockSize: z.number().int().min(1).max(MAX_BLOCK_SIZE).default(DEFAULT_BLOCK_SIZE),
  /** Data shards the training set is cut into; workers get the least-used shard. */
  shards: z.number().int().min(1).max(1024).default(8),
  /** Neighbours per worker for block exchange. */
  neighbours: z.number().int().min(1).max(32).default(4),
  /** How often the server asks a worker for its state, evaluates it and keeps a checkpoint. */
  checkpointIntervalSec: z.number().positive().max(86_400).default(10),
  /** Workers' starting communication settings; the automatic balancer adapts from here. */
  communication: z
    .strictObject({
      /** Samples between two sends (b). */
      communicationPeriod: samplesPerSend.default(256),
      /** Blocks per send (m). */
      blocksPerMessage: blocksPerSend.default(1),
      encoding: encodingSchema.default('f32'),
    })
    .prefault({}),
  /** Asynchronous SGD with peer exchange (default), or synchronous parameter-server rounds. */
  training: trainingSpecSchema.prefault({}),
  /** Automatic balancing (default), or fixed settings for every worker. */
  balancer: balancerSpecSchema.prefault({ mode: 'automatic' }),
  /** When the job stops itself; none by default (it runs until stopped). */
  stop: stopSpecSchema.prefault({}),
});

/** What a host writes (defaults optional). */
export type JobSpecInput = z.input<typeof jobSpecSchema>;
/** A parsed spec: defaults filled in, file paths absolute. */
export type JobSpec = z.output<typeof jobSpecSchema>;
export type DatasetSpec = JobSpec['dataset'];
export type FileDatasetSpec = Extract<DatasetSpec, { kind: 'idx' | 'csv' | 'npy' }>;
export type TextDatasetSpec = Extract<DatasetSpec, { kind: 'text' }>;
export type BalancerSpec = JobSpec['balancer'];
export type StopSpec = JobSpec['stop'];
export type TrainingMode = JobSpec['training']['mode'];

/**
 * A spec the server cannot run. `field` is the dotted path of the offending field (`(spec)` for
 * the whole document), `reason` what is wrong with it; `file` the data or kernel file involved,
 * when there is one. The message is `invalid job spec: <field>: <reason>`.
 */
export class JobSpecError extends Error {
  override readonly name = 'JobSpecError';

  constructor(
    readonly field: string,
    readonly reason: string,
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super(`invalid job spec: ${field}: ${reason}`, options);
  }
}

/** The first zod issue as a field path and a reason a host can act on. */
function describeIssue(issue: z.core.$ZodIssue, value: unknown): { field: string; reason: string } {
  const at = issue.path.map(String);
  const field = at.length ? at.join('.') : '(spec)';
  const got = valueAt(value, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeys(value, issue.path);
      return {
        field: [...at, issue.keys[0] ?? ''].join('.'),
        reason: `unknown field${known ? ` (expected one of: ${known})` : ''}`,
      };
    }
    case 'invalid_type':
      return {
        field,
        reason:
          got === undefined
            ? `required (expected ${article(issue.expected)})`
            : `expected ${article(issue.expected)}, got ${show(got)}`,
      };
    case 'invalid_union': {
      const options = (issue as { options?: unknown[] }).options;
      if (options && options.length > 0) {
        return {
          field,
          reason: `must be one of ${options.map((o) => JSON.stringify(o)).join(', ')}; got ${show(got)}`,
        };
      }
      return { field, reason: `${issue.message}; got ${show(got)}` };
    }
    case 'too_small':
    case 'too_big': {
      // A message the schema wrote itself says it better than the generic bound.
      if (!/^Too (small|big)/.test(issue.message)) {
        return { field, reason: `${issue.message}, got ${show(got)}` };
      }
      const op =
        issue.code === 'too_small'
          ? issue.inclusive === false
            ? '>'
            : '>='
          : issue.inclusive === false
            ? '<'
            : '<=';
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const what =
        issue.origin === 'string'
          ? `${issue.code === 'too_small' ? 'at least' : 'at most'} ${String(bound)} characters long`
          : issue.origin === 'array'
            ? `${issue.code === 'too_small' ? 'at least' : 'at most'} ${String(bound)} entries`
            : `${op} ${String(bound)}`;
      return { field, reason: `must be ${what}, got ${show(got)}` };
    }
    case 'custom':
      return { field, reason: issue.message };
    default:
      return { field, reason: `${issue.message}${got === undefined ? '' : `, got ${show(got)}`}` };
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** A value as a short JSON snippet for an error message. */
function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function valueAt(value: unknown, at: readonly PropertyKey[]): unknown {
  let v = value;
  for (const key of at) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** The fields the schema accepts at `at`, for an unknown-field message. */
function knownKeys(value: unknown, at: readonly PropertyKey[]): string | null {
  let schema: z.ZodType = jobSpecSchema;
  let v = value;
  for (const key of at) {
    schema = childSchema(schema, key, v) ?? schema;
    v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  }
  const object = objectOf(schema, v);
  return object ? Object.keys(object.shape).join(', ') : null;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) {
      s = s.unwrap() as z.ZodType;
    } else if (s instanceof z.ZodNullable) {
      s = s.unwrap() as z.ZodType;
    } else if (s instanceof z.ZodPipe) {
      s = s.in as z.ZodType;
    } else return s;
  }
}

function objectOf(schema: z.ZodType, value: unknown): z.ZodObject | null {
  const s = unwrap(schema);
  if (s instanceof z.ZodObject) return s;
  if (s instanceof z.ZodDiscriminatedUnion && value !== null && typeof value === 'object') {
    const key = s.def.discriminator;
    const tag = (value as Record<string, unknown>)[key];
    for (const option of s.options as z.ZodType[]) {
      const o = objectOf(option, null);
      const d = o?.shape[key] as z.ZodType | undefined;
      if (d && d.safeParse(tag).success) return o;
    }
  }
  return null;
}

function childSchema(schema: z.ZodType, key: PropertyKey, value: unknown): z.ZodType | null {
  const o = objectOf(schema, value);
  if (o && typeof key === 'string') return (o.shape[key] as z.ZodType | undefined) ?? null;
  return null;
}

export interface ParseJobSpecOptions {
  /**
   * Directory that relative file paths in the spec are relative to: the spec file's own
   * directory for `meshgrad serve --job` and `meshgrad validate`. Default: the working directory.
   */
  readonly baseDir?: string;
  /**
   * Directories the spec's data and kernel files must lie in (after following symlinks);
   * absent: no confinement (tools that only check a spec's form, such as `meshgrad validate`).
   * The server passes the data directory, the folders of its `--job` files and `--allow-data-dir`.
   */
  readonly allowedDirs?: readonly string[];
}

/** Number of input features the model takes per sample. */
export function modelInputs(model: ModelSpec): number {
  return model.kind === 'kmeans' ? model.dims : model.inputs;
}

/** Checks a value against the job spec format; throws a `JobSpecError` naming the first bad field. */
export function parseJobSpec(value: unknown, options: ParseJobSpecOptions = {}): JobSpec {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new JobSpecError('(spec)', 'a job spec is a JSON object');
  }
  // `$schema` lets editors find docs/job-spec.schema.json; it is not part of the job.
  const { $schema: _editorSchema, ...fields } = value as Record<string, unknown>;
  const r = jobSpecSchema.safeParse(fields);
  if (!r.success) {
    const issue = r.error.issues[0];
    const { field, reason } = issue
      ? describeIssue(issue, value)
      : { field: '(spec)', reason: 'invalid' };
    throw new JobSpecError(field, reason);
  }
  const spec = r.data;
  checkModelAgainstSpec(spec);
  const resolved = resolvePaths(spec, path.resolve(options.baseDir ?? process.cwd()));
  if (options.allowedDirs) confinePaths(resolved, options.allowedDirs);
  return resolved;
}

/** Every file a spec names, with its field. */
function specFiles(spec: JobSpec): Array<{ field: string; file: string }> {
  const out: Array<{ field: string; file: string | null }> = [];
  if (spec.model.kind === 'custom' && spec.model.kernel !== undefined) {
    out.push({ field: 'model.kernel', file: spec.model.kernel });
  }
  const d = spec.dataset;
  if (d.kind === 'idx') {
    out.push(
      { field: 'dataset.images', file: d.images },
      { field: 'dataset.labels', file: d.labels },
    );
    if (d.test) {
      out.push(
        { field: 'dataset.test.images', file: d.test.images },
        { field: 'dataset.test.labels', file: d.test.labels },
      );
    }
  } else if (d.kind === 'npy') {
    out.push(
      { field: 'dataset.features', file: d.features },
      { field: 'dataset.labels', file: d.labels },
    );
    if (d.test) {
      out.push(
        { field: 'dataset.test.features', file: d.test.features },
        { field: 'dataset.test.labels', file: d.test.labels },
      );
    }
  } else if (d.kind === 'csv') {
    out.push({ field: 'dataset.file', file: d.file });
    if (d.test) out.push({ field: 'dataset.test.file', file: d.test.file });
  }
  return out.filter((f): f is { field: string; file: string } => f.file !== null);
}

const isInside = (file: string, dir: string) => {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
};

/** The real path of a file (or of its nearest existing parent, for files not there yet). */
function realPath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    const parent = path.dirname(file);
    return parent === file ? file : path.join(realPath(parent), path.basename(file));
  }
}

/**
 * Why: a spec comes from whoever holds the admin token, and the server would read and parse
 * any path it names (`/proc/self/environ` holds the TURN secret). Both the path as written and
 * the file it leads to through symlinks must lie inside a directory the host allowed.
 */
function confinePaths(spec: JobSpec, allowedDirs: readonly string[]): void {
  const written = allowedDirs.map((d) => path.resolve(d));
  const real = written.map(realPath);
  const allowed = [...written, ...real];
  for (const { field, file } of specFiles(spec)) {
    const asWritten = allowed.some((d) => isInside(file, d));
    const followed = realPath(file);
    if (asWritten && real.some((d) => isInside(followed, d))) continue;
    throw new JobSpecError(
      field,
      `${file} is outside the directories this server reads data from (${allowedDirs.join(', ')}); put the file there or start the server with --allow-data-dir`,
      file,
    );
  }
}

/** Cross-field checks that need no data: the model against the dataset, balancer and stop. */
function checkModelAgainstSpec(spec: JobSpec): void {
  const { model, dataset } = spec;
  const inputs = modelInputs(model);
  const inputsField = model.kind === 'kmeans' ? 'model.dims' : 'model.inputs';
  if (dataset.kind === 'mnist') {
    if (inputs !== 784) {
      throw new JobSpecError(inputsField, `MNIST has 784 features, got ${inputs}`);
    }
    if (
      (model.kind === 'softmax' || model.kind === 'mlp' || model.kind === 'layers') &&
      model.classes !== 10
    ) {
      throw new JobSpecError('model.classes', `MNIST has 10 classes, got ${model.classes}`);
    }
  }
  const nextToken = model.kind === 'layers' && model.loss === 'next-token';
  if ((dataset.kind === 'text') !== nextToken) {
    throw new JobSpecError(
      dataset.kind === 'text' ? 'dataset.kind' : 'model.loss',
      dataset.kind === 'text'
        ? 'a text dataset needs a layers model with "loss": "next-token"'
        : `a next-token model reads token windows of a text dataset, not ${dataset.kind}`,
    );
  }
  if (dataset.kind === 'clusters' && inputs !== dataset.dims) {
    throw new JobSpecError('model', `${inputs} inputs but the dataset has ${dataset.dims} dims`);
  }
  const classifier = model.kind === 'softmax' || model.kind === 'mlp' || model.kind === 'layers';
  if (spec.stop.targetAccuracy !== undefined && !classifier) {
    throw new JobSpecError(
      'stop.targetAccuracy',
      `needs a classifier (softmax, mlp or layers); a ${model.kind} model has no accuracy${model.kind === 'custom' ? ' (its kernel reports only a loss: use targetLoss)' : ''}`,
    );
  }
  if (spec.stop.targetObjective !== undefined && model.kind !== 'kmeans') {
    throw new JobSpecError(
      'stop.targetObjective',
      `needs a kmeans model; use targetLoss or targetAccuracy for ${model.kind}`,
    );
  }
  const layout = modelLayout(spec);
  if (spec.balancer.mode === 'fixed' && spec.balancer.blocksPerMessage > layout.blockCount) {
    throw new JobSpecError(
      'balancer.blocksPerMessage',
      `at most ${layout.blockCount}: the model has ${layout.blockCount} blocks of ${spec.blockSize} values`,
    );
  }
}

/**
 * The parameter layout, or a JobSpecError naming the field: a `layers` model's shape errors
 * start with the layer's path (`model.layers[3] (conv2d conv2): …`), which becomes the field.
 */
function modelLayout(spec: JobSpec) {
  try {
    return parameterLayout(coreModelSpec(spec.model), spec.blockSize);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    const at = /^(model(?:\.[A-Za-z]+|\[\d+\])*)(?:\s*\(([^)]*)\))?[.:]?\s*(.*)$/.exec(err.message);
    if (at === null) throw new JobSpecError('model', err.message, undefined, { cause: err });
    const [, field = 'model', layer, rest = ''] = at;
    const reason = layer === undefined ? rest : `${layer}: ${rest}`;
    throw new JobSpecError(field, reason, undefined, { cause: err });
  }
}

/** The spec with every data file path made absolute against `baseDir`. */
function resolvePaths(spec: JobSpec, baseDir: string): JobSpec {
  const abs = (p: string) => path.resolve(baseDir, p);
  const absOrNull = (p: string | null) => (p === null ? null : abs(p));
  if (spec.model.kind === 'custom' && spec.model.kernel !== undefined) {
    spec = { ...spec, model: { ...spec.model, kernel: abs(spec.model.kernel) } };
  }
  const d = spec.dataset;
  switch (d.kind) {
    case 'idx':
      return {
        ...spec,
        dataset: {
          ...d,
          images: abs(d.images),
          labels: absOrNull(d.labels),
          ...(d.test
            ? { test: { images: abs(d.test.images), labels: absOrNull(d.test.labels) } }
            : {}),
        },
      };
    case 'npy':
      return {
        ...spec,
        dataset: {
          ...d,
          features: abs(d.features),
          labels: absOrNull(d.labels),
          ...(d.test
            ? { test: { features: abs(d.test.features), labels: absOrNull(d.test.labels) } }
            : {}),
        },
      };
    case 'csv':
      return {
        ...spec,
        dataset: {
          ...d,
          file: abs(d.file),
          ...(d.test ? { test: { file: abs(d.test.file) } } : {}),
        },
      };
    case 'text':
      return { ...spec, dataset: { ...d, file: abs(d.file) } };
    default:
      return spec;
  }
}

/** The built-in default job: the 784-128-10 MLP on built-in MNIST. */
export const DEFAULT_JOB: JobSpec = parseJobSpec({
  id: 'mnist-mlp',
  name: 'MNIST digits, 784-128-10 MLP',
  description:
    'Trains a small neural network to read handwritten digits (MNIST, 10,000 real digits). ' +
    'Your tab computes gradients on its GPU and swaps model state with other volunteers.',
  model: { kind: 'mlp', inputs: 784, hidden: [128], classes: 10 },
  dataset: { kind: 'mnist' },
  batchSize: 64,
  learningRate: 0.1,
});

/**
 * The job spec format as JSON Schema (draft 2020-12), for editors: a spec that starts with
 * `"$schema": "…/job-spec.schema.json"` gets completion and inline errors. Cross-field rules
 * (the model against the dataset, stop criteria against the model) are only in `parseJobSpec`.
 */
export function jobSpecJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(jobSpecSchema, { io: 'input', unrepresentable: 'any' });
  const properties = (schema.properties ?? {}) as Record<string, unknown>;
  return {
    ...schema,
    title: 'meshgrad job spec, format v1',
    description: 'See docs/job-spec.md.',
    properties: {
      $schema: { type: 'string', description: 'Ignored; lets editors find this schema.' },
      ...properties,
    },
  };
}
