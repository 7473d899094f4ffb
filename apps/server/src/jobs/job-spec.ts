import { z } from 'zod';
import { DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, modelSpecSchema, validate } from '@meshgrad/core';

/**
 * A job as the server runs it. The host-facing JSON format (with file datasets and custom
 * kernels) builds on this; every field has a default so `{}` plus a model and a dataset is a job.
 */
export const jobSpecSchema = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lower-case letters, digits, _ or -'),
  name: z.string().min(1).max(200),
  description: z.string().max(2000).default(''),
  /** Who runs this job server; shown to volunteers before they join. */
  host: z.string().min(1).max(200).default('a meshgrad host'),
  model: modelSpecSchema,
  dataset: z.discriminatedUnion('kind', [
    z.object({
      kind: z.literal('mnist'),
    }),
    z.object({
      kind: z.literal('clusters'),
      clusters: z.number().int().positive().max(1024),
      dims: z.number().int().positive().max(4096),
      count: z.number().int().positive().max(1_000_000),
      testCount: z.number().int().positive().max(1_000_000).default(2_000),
      spread: z.number().positive().default(1),
      seed: z.number().int().default(7),
    }),
  ]),
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
  communication: z
    .object({
      /** Samples between two sends (b). */
      communicationPeriod: z.number().int().min(1).max(1_000_000).default(256),
      /** Blocks per send (m). */
      blocksPerMessage: z.number().int().min(1).max(1024).default(1),
      encoding: z.enum(['f32', 'f16', 'int8']).default('f32'),
    })
    .prefault({}),
});

export type JobSpec = z.infer<typeof jobSpecSchema>;

/** The built-in default job: the 784-128-10 MLP on built-in MNIST. */
export const DEFAULT_JOB: JobSpec = jobSpecSchema.parse({
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

/** Parses a job spec, or throws an Error naming the first bad field. */
export function parseJobSpec(value: unknown): JobSpec {
  const r = validate(jobSpecSchema, value);
  if (!r.ok) throw new Error(`invalid job spec: ${r.message}`);
  const spec = r.value;
  const inputs = spec.model.kind === 'kmeans' ? spec.model.dims : spec.model.inputs;
  if (spec.dataset.kind === 'mnist' && inputs !== 784) {
    throw new Error(`invalid job spec: model.inputs: MNIST has 784 features, got ${inputs}`);
  }
  if (spec.dataset.kind === 'mnist' && spec.model.kind !== 'kmeans' && spec.model.classes !== 10) {
    throw new Error(`invalid job spec: model.classes: MNIST has 10 classes`);
  }
  if (spec.dataset.kind === 'clusters' && inputs !== spec.dataset.dims) {
    throw new Error(
      `invalid job spec: model: ${inputs} inputs but the dataset has ${spec.dataset.dims} dims`,
    );
  }
  return spec;
}
