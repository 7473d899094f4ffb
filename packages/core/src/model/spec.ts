/**
 * Model specifications and their flat parameter layout.
 *
 * Every model's parameters live in one Float32Array of `size` floats. Tensors are laid out in
 * the order listed by `parameterLayout`, row-major. The vector is cut into fixed blocks of
 * `blockSize` floats (the last one may be shorter); a block is the unit of exchange between
 * workers and of the Parzen test (DESIGN §3).
 */
import { planOf } from './layers/graph.ts';
import type { LayersSpec } from './layers/types.ts';

/** Softmax regression: logits = x·W + b. */
export interface SoftmaxSpec {
  readonly kind: 'softmax';
  readonly inputs: number;
  readonly classes: number;
}

/** Dense layers with ReLU between them and a softmax cross-entropy head. */
export interface MlpSpec {
  readonly kind: 'mlp';
  readonly inputs: number;
  /** Widths of the hidden layers, in order; may be empty (then it is softmax regression). */
  readonly hidden: readonly number[];
  readonly classes: number;
}

/** K-Means in its SGD form: each sample pulls its nearest centre (the paper's workload). */
export interface KMeansSpec {
  readonly kind: 'kmeans';
  readonly dims: number;
  readonly clusters: number;
}

/**
 * A host's own model: a WGSL kernel computes the minibatch loss gradient for the flat parameter
 * buffer (binding layout below and in docs/custom-wgsl.md); the platform does the SGD step, the
 * Parzen merge and the exchange. There is no CPU implementation: it runs only on WebGPU.
 */
export interface CustomSpec {
  readonly kind: 'custom';
  /** Features per sample: the row length of the `x` the kernel reads. */
  readonly inputs: number;
  /** Classes of the labels the kernel reads; 0 when it reads none (labels are then all 0). */
  readonly classes: number;
  /** The parameter tensors, concatenated in this order (each row-major) into one buffer. */
  readonly tensors: readonly CustomTensorSpec[];
}

export interface CustomTensorSpec {
  /** Name in checkpoints and exports: letters, digits, `_` and `.`. */
  readonly name: string;
  /** Row-major shape. */
  readonly shape: readonly number[];
  /** Standard deviation of the seeded normal initialisation; default 0 (all zeros). */
  readonly initStd?: number | undefined;
}

export type { LayersSpec } from './layers/types.ts';

export type ModelSpec = SoftmaxSpec | MlpSpec | KMeansSpec | CustomSpec | LayersSpec;

export interface TensorLayout {
  /** Stable name, used in checkpoints and safetensors exports, e.g. `dense0.weight`. */
  readonly name: string;
  /** Row-major shape. Dense weights are `[in, out]`. */
  readonly shape: readonly number[];
  /** Offset in floats into the flat parameter vector. */
  readonly offset: number;
  readonly size: number;
}

export interface ParameterLayout {
  readonly spec: ModelSpec;
  readonly tensors: readonly TensorLayout[];
  /** Total number of parameters P. */
  readonly size: number;
  /** Floats per block (the last block may be shorter). */
  readonly blockSize: number;
  /** Number of blocks K = ceil(size / blockSize). */
  readonly blockCount: number;
}

/**
 * Default block size in floats. 16,384 float32 values are 64 KiB, well under Chromium's
 * 262,144-byte data-channel message limit even with a header (DESIGN §3).
 */
export const DEFAULT_BLOCK_SIZE = 16_384;

/** Largest block that still fits one data-channel message as float32 with room for a header. */
export const MAX_BLOCK_SIZE = 65_000;

/**
 * Widths of the dense layers, input first and classes last, for softmax and MLP models.
 * Throws a RangeError for other kinds.
 */
export function denseWidths(spec: ModelSpec): number[] {
  if (spec.kind === 'softmax') return [spec.inputs, spec.classes];
  if (spec.kind === 'mlp') return [spec.inputs, ...spec.hidden, spec.classes];
  throw new RangeError(`a ${spec.kind} model has no dense layers`);
}

/** Number of input features a model consumes per sample. */
export function inputSize(spec: ModelSpec): number {
  if (spec.kind === 'layers') return planOf(spec).features;
  return spec.kind === 'kmeans' ? spec.dims : spec.inputs;
}

/**
 * Classes a classifier's labels must stay below (for `layers`: the width of the logits, the
 * vocabulary for next-token models); 0 for K-Means and unlabelled custom models.
 */
export function modelClasses(spec: ModelSpec): number {
  if (spec.kind === 'layers') return planOf(spec).classes;
  return spec.kind === 'kmeans' ? 0 : spec.classes;
}

/** Checks a spec's numbers and throws a RangeError that names the bad field. */
export function validateModelSpec(spec: ModelSpec): void {
  const positive = (field: string, value: number) => {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`model.${field} must be a positive integer, got ${String(value)}`);
    }
  };
  switch (spec.kind) {
    case 'softmax':
      positive('inputs', spec.inputs);
      positive('classes', spec.classes);
      if (spec.classes < 2) throw new RangeError('model.classes must be at least 2');
      break;
    case 'mlp':
      positive('inputs', spec.inputs);
      positive('classes', spec.classes);
      if (spec.classes < 2) throw new RangeError('model.classes must be at least 2');
      spec.hidden.forEach((w, i) => positive(`hidden[${i}]`, w));
      break;
    case 'kmeans':
      positive('dims', spec.dims);
      positive('clusters', spec.clusters);
      break;
    case 'custom': {
      positive('inputs', spec.inputs);
      if (!Number.isInteger(spec.classes) || spec.classes < 0) {
        throw new RangeError(`model.classes must be 0 or a positive integer, got ${spec.classes}`);
      }
      if (spec.tensors.length === 0) throw new RangeError('model.tensors must not be empty');
      const names = new Set<string>();
      spec.tensors.forEach((t, i) => {
        if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(t.name)) {
          throw new RangeError(
            `model.tensors[${i}].name must be letters, digits, _ and ., got ${JSON.stringify(t.name)}`,
          );
        }
        if (names.has(t.name)) throw new RangeError(`model.tensors[${i}].name ${t.name} repeats`);
        names.add(t.name);
        if (t.shape.length === 0) throw new RangeError(`model.tensors[${i}].shape is empty`);
        t.shape.forEach((d, j) => positive(`tensors[${i}].shape[${j}]`, d));
        if (t.initStd !== undefined && !(Number.isFinite(t.initStd) && t.initStd >= 0)) {
          throw new RangeError(`model.tensors[${i}].initStd must be a finite number >= 0`);
        }
      });
      break;
    }
    case 'layers':
      // Shape inference checks every layer; its errors name the layer and the dimension.
      planOf(spec);
      break;
    default: {
      const kind: unknown = (spec as { kind?: unknown }).kind;
      throw new RangeError(
        `model.kind must be softmax, mlp, kmeans, custom or layers, got ${String(kind)}`,
      );
    }
  }
}

export function parameterLayout(
  spec: ModelSpec,
  blockSize: number = DEFAULT_BLOCK_SIZE,
): ParameterLayout {
  validateModelSpec(spec);
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > MAX_BLOCK_SIZE) {
    throw new RangeError(
      `blockSize must be an integer in [1, ${MAX_BLOCK_SIZE}], got ${blockSize}`,
    );
  }
  const tensors: TensorLayout[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, shape, offset, size });
    offset += size;
  };
  if (spec.kind === 'kmeans') {
    add('centres', [spec.clusters, spec.dims]);
  } else if (spec.kind === 'custom') {
    for (const t of spec.tensors) add(t.name, [...t.shape]);
  } else if (spec.kind === 'layers') {
    for (const t of planOf(spec).tensors) add(t.name, [...t.shape]);
  } else {
    const widths = denseWidths(spec);
    for (let l = 0; l + 1 < widths.length; l++) {
      const fanIn = widths[l] as number;
      const fanOut = widths[l + 1] as number;
      add(`dense${l}.weight`, [fanIn, fanOut]);
      add(`dense${l}.bias`, [fanOut]);
    }
  }
  return {
    spec,
    tensors,
    size: offset,
    blockSize,
    blockCount: Math.ceil(offset / blockSize),
  };
}

/** Where each tensor of a `layers` plan starts in the flat vector (plan order = layout order). */
export function tensorOffsets(layout: ParameterLayout): number[] {
  return layout.tensors.map((t) => t.offset);
}

/** Half-open float range [start, end) of block k. */
export function blockRange(layout: ParameterLayout, k: number): { start: number; end: number } {
  if (!Number.isInteger(k) || k < 0 || k >= layout.blockCount) {
    throw new RangeError(`block index ${k} out of range [0, ${layout.blockCount})`);
  }
  const start = k * layout.blockSize;
  return { start, end: Math.min(start + layout.blockSize, layout.size) };
}

/** Finds a tensor by name or throws. */
export function tensorByName(layout: ParameterLayout, name: string): TensorLayout {
  const t = layout.tensors.find((x) => x.name === name);
  if (!t) throw new RangeError(`no tensor named ${name} in this model`);
  return t;
}

/** Why a custom model cannot train or evaluate on the CPU. */
export const CUSTOM_MODEL_NEEDS_WEBGPU =
  'a custom WGSL model runs only on WebGPU: there is no CPU implementation of a host kernel';

/**
 * The binding layout of a custom WGSL gradient kernel (docs/custom-wgsl.md), the one schema the
 * server's compile check and the WebGPU backend both build from. All bindings are in group 0.
 */
export const CUSTOM_KERNEL_BINDINGS = [
  /** `Batch { size, features, params, classes }`, four u32. */
  { binding: 0, name: 'batch', type: 'uniform' },
  /** The parameters w, `params` floats. */
  { binding: 1, name: 'params', type: 'read-only-storage' },
  /** The kernel writes ∇L(w), the mean over the minibatch, `params` floats. */
  { binding: 2, name: 'grad', type: 'storage' },
  /** The minibatch features, `size × features` floats, row-major. */
  { binding: 3, name: 'x', type: 'read-only-storage' },
  /** The minibatch labels, `size` u32 (all 0 for unlabelled data). */
  { binding: 4, name: 'labels', type: 'read-only-storage' },
  /** The kernel writes each sample's loss, `size` floats. */
  { binding: 5, name: 'loss', type: 'storage' },
] as const;

/** Invocations per workgroup a custom kernel must declare: `@workgroup_size(64)`. */
export const CUSTOM_KERNEL_WORKGROUP_SIZE = 64;

/** Bytes of the `Batch` uniform (four u32, padded to 16). */
export const CUSTOM_KERNEL_BATCH_BYTES = 16;

/**
 * Workgroups to dispatch for a custom kernel: one invocation per parameter or per sample,
 * whichever is more.
 */
export function customKernelWorkgroups(layout: ParameterLayout, batchSize: number): number {
  return Math.ceil(Math.max(layout.size, batchSize, 1) / CUSTOM_KERNEL_WORKGROUP_SIZE);
}

/** The `Batch` uniform of a custom kernel for one minibatch, little-endian. */
export function customKernelBatchInfo(layout: ParameterLayout, batchSize: number): Uint32Array {
  const spec = layout.spec;
  if (spec.kind !== 'custom') throw new RangeError('customKernelBatchInfo needs a custom model');
  return Uint32Array.from([batchSize, spec.inputs, layout.size, spec.classes]);
}
