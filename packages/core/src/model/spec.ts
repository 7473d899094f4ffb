/**
 * Model specifications and their flat parameter layout.
 *
 * Every model's parameters live in one Float32Array of `size` floats. Tensors are laid out in
 * the order listed by `parameterLayout`, row-major. The vector is cut into fixed blocks of
 * `blockSize` floats (the last one may be shorter); a block is the unit of exchange between
 * workers and of the Parzen test (DESIGN §3).
 */

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

export type ModelSpec = SoftmaxSpec | MlpSpec | KMeansSpec;

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

/** Widths of the dense layers, input first and classes last, for softmax and MLP models. */
export function denseWidths(spec: SoftmaxSpec | MlpSpec): number[] {
  return spec.kind === 'softmax'
    ? [spec.inputs, spec.classes]
    : [spec.inputs, ...spec.hidden, spec.classes];
}

/** Number of input features a model consumes per sample. */
export function inputSize(spec: ModelSpec): number {
  return spec.kind === 'kmeans' ? spec.dims : spec.inputs;
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
    default: {
      const kind: unknown = (spec as { kind?: unknown }).kind;
      throw new RangeError(`model.kind must be softmax, mlp or kmeans, got ${String(kind)}`);
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
