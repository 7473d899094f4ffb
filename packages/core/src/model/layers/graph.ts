/**
 * Reads a `layers` spec: checks every layer against the shape it receives, names the layers and
 * their tensors, and returns the plan the CPU backend (and the WebGPU kernels) execute.
 *
 * Errors are RangeErrors that name the layer (`model.layers[3] (conv2d conv2)`) and the
 * mismatched dimension, so a host can fix the spec without reading code.
 */
import type { LayerSpec, LayersLoss, LayersSpec, LayerType } from './types.ts';

/** Most layers in one model, residual blocks' inner layers included. */
export const MAX_LAYERS = 256;
/** Largest per-sample activation (floats); bounds the workspace a batch needs. */
export const MAX_ACTIVATION = 1 << 22;

/** A parameter tensor as the plan declares it; `parameterLayout` gives it an offset. */
export interface PlannedTensor {
  readonly name: string;
  readonly shape: readonly number[];
}

interface NodeBase {
  /** Where the layer sits in the spec, e.g. `model.layers[4].layers[1]`. */
  readonly path: string;
  readonly name: string;
  readonly inShape: readonly number[];
  readonly outShape: readonly number[];
}

export interface DenseNode extends NodeBase {
  readonly op: 'dense';
  /** Positions the layer maps independently (product of all but the last input dimension). */
  readonly positions: number;
  readonly inWidth: number;
  readonly outWidth: number;
  /** Indices into `LayersPlan.tensors`. */
  readonly weight: number;
  readonly bias: number;
}

export interface Conv2dNode extends NodeBase {
  readonly op: 'conv2d';
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly filters: number;
  readonly kernel: number;
  readonly stride: number;
  readonly padding: number;
  readonly outHeight: number;
  readonly outWidth: number;
  readonly weight: number;
  readonly bias: number;
}

export interface PoolNode extends NodeBase {
  readonly op: 'maxpool2d' | 'avgpool2d';
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly size: number;
  readonly stride: number;
  readonly outHeight: number;
  readonly outWidth: number;
}

export interface ElementwiseNode extends NodeBase {
  readonly op: 'flatten' | 'relu' | 'gelu';
}

export interface LayerNormNode extends NodeBase {
  readonly op: 'layernorm';
  readonly positions: number;
  readonly width: number;
  readonly epsilon: number;
  readonly weight: number;
  readonly bias: number;
}

export interface EmbeddingNode extends NodeBase {
  readonly op: 'embedding';
  readonly positions: number;
  readonly vocab: number;
  readonly dim: number;
  readonly token: number;
  readonly position: number;
}

export interface AttentionNode extends NodeBase {
  readonly op: 'attention';
  readonly positions: number;
  readonly width: number;
  readonly heads: number;
  readonly qkvWeight: number;
  readonly qkvBias: number;
  readonly projWeight: number;
  readonly projBias: number;
}

export interface ResidualNode extends NodeBase {
  readonly op: 'residual';
  readonly inner: readonly PlanNode[];
}

export type PlanNode =
  | DenseNode
  | Conv2dNode
  | PoolNode
  | ElementwiseNode
  | LayerNormNode
  | EmbeddingNode
  | AttentionNode
  | ResidualNode;

export interface LayersPlan {
  readonly spec: LayersSpec;
  readonly loss: LayersLoss;
  readonly nodes: readonly PlanNode[];
  readonly tensors: readonly PlannedTensor[];
  /** Shape the first layer reads. */
  readonly inputShape: readonly number[];
  /** Shape of the logits of one sample. */
  readonly outputShape: readonly number[];
  /** Floats per sample in a batch: the input, plus the last target token for `next-token`. */
  readonly features: number;
  /** Classes (`classify`) or vocabulary size (`next-token`): the width of the logits. */
  readonly classes: number;
  /** Positions scored per sample: 1 for `classify`, the context length for `next-token`. */
  readonly scoredPositions: number;
  /** Multiply-adds of one sample's forward pass (the backward pass is about twice as many). */
  readonly forwardMacs: number;
}

const PREFIX: Record<LayerType, string> = {
  dense: 'dense',
  conv2d: 'conv',
  maxpool2d: 'maxpool',
  avgpool2d: 'avgpool',
  flatten: 'flatten',
  relu: 'relu',
  gelu: 'gelu',
  layernorm: 'ln',
  embedding: 'embed',
  attention: 'attn',
  residual: 'res',
};

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const showShape = (shape: readonly number[]) => `[${shape.join(', ')}]`;

class PlanBuilder {
  readonly tensors: PlannedTensor[] = [];
  private readonly counts = new Map<LayerType, number>();
  private readonly names = new Set<string>();
  private layerCount = 0;
  macs = 0;

  tensor(name: string, shape: number[]): number {
    this.tensors.push({ name, shape });
    return this.tensors.length - 1;
  }

  nameOf(layer: LayerSpec, where: string): string {
    const n = (this.counts.get(layer.type) ?? 0) + 1;
    this.counts.set(layer.type, n);
    const name = layer.name ?? `${PREFIX[layer.type]}${n}`;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || name.length > 64) {
      throw new RangeError(
        `${where}.name must be letters, digits and _ (at most 64), got ${JSON.stringify(name)}`,
      );
    }
    if (this.names.has(name)) throw new RangeError(`${where}.name ${name} is used twice`);
    this.names.add(name);
    return name;
  }

  countLayer(where: string): void {
    if (++this.layerCount > MAX_LAYERS) {
      throw new RangeError(`${where}: more than ${MAX_LAYERS} layers`);
    }
  }
}

function positiveInt(where: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`${where}.${field} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function optionalInt(where: string, field: string, value: unknown, fallback: number, min: number) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${where}.${field} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function buildSequence(
  layers: readonly LayerSpec[],
  inShape: readonly number[],
  where: string,
  b: PlanBuilder,
  first: boolean,
): { nodes: PlanNode[]; outShape: readonly number[] } {
  if (!Array.isArray(layers) || layers.length === 0) {
    throw new RangeError(`${where} must list at least one layer`);
  }
  const nodes: PlanNode[] = [];
  let shape = inShape;
  layers.forEach((layer, i) => {
    const node = buildNode(layer, shape, `${where}[${i}]`, b, first && i === 0);
    nodes.push(node);
    shape = node.outShape;
  });
  return { nodes, outShape: shape };
}

function buildNode(
  layer: LayerSpec,
  inShape: readonly number[],
  path: string,
  b: PlanBuilder,
  first: boolean,
): PlanNode {
  if (layer === null || typeof layer !== 'object' || typeof layer.type !== 'string') {
    throw new RangeError(`${path} must be an object with a type`);
  }
  if (!(layer.type in PREFIX)) {
    throw new RangeError(
      `${path}.type must be one of ${Object.keys(PREFIX).join(', ')}, got ${JSON.stringify(layer.type)}`,
    );
  }
  b.countLayer(path);
  const name = b.nameOf(layer, path);
  const where = `${path} (${layer.type} ${name})`;
  const rank = (n: number, what: string) => {
    if (inShape.length !== n) {
      throw new RangeError(`${where} needs ${what}, got an input of shape ${showShape(inShape)}`);
    }
  };
  const check = (node: PlanNode): PlanNode => {
    if (product(node.outShape) > MAX_ACTIVATION) {
      throw new RangeError(
        `${where}: output ${showShape(node.outShape)} is more than ${MAX_ACTIVATION} floats per sample`,
      );
    }
    return node;
  };
  const base = { path, name, inShape };
  switch (layer.type) {
    case 'dense': {
      const units = positiveInt(where, 'units', layer.units);
      if (inShape.length < 1) rank(1, 'at least one dimension');
      const inWidth = inShape[inShape.length - 1]!;
      const positions = product(inShape) / inWidth;
      b.macs += positions * inWidth * units;
      return check({
        ...base,
        op: 'dense',
        outShape: [...inShape.slice(0, -1), units],
        positions,
        inWidth,
        outWidth: units,
        weight: b.tensor(`${name}.weight`, [units, inWidth]),
        bias: b.tensor(`${name}.bias`, [units]),
      });
    }
    case 'conv2d': {
      rank(3, 'a [channels, height, width] input');
      const [channels, height, width] = inShape as [number, number, number];
      const filters = positiveInt(where, 'filters', layer.filters);
      const kernel = positiveInt(where, 'kernel', layer.kernel);
      const stride = optionalInt(where, 'stride', layer.stride, 1, 1);
      const padding = optionalInt(where, 'padding', layer.padding, 0, 0);
      if (padding >= kernel) {
        throw new RangeError(`${where}: padding ${padding} must be below kernel ${kernel}`);
      }
      const outHeight = Math.floor((height + 2 * padding - kernel) / stride) + 1;
      const outWidth = Math.floor((width + 2 * padding - kernel) / stride) + 1;
      if (outHeight < 1 || outWidth < 1) {
        throw new RangeError(
          `${where}: kernel ${kernel} with padding ${padding} does not fit the input height × width ${height} × ${width}`,
        );
      }
      b.macs += filters * outHeight * outWidth * channels * kernel * kernel;
      return check({
        ...base,
        op: 'conv2d',
        outShape: [filters, outHeight, outWidth],
        channels,
        height,
        width,
        filters,
        kernel,
        stride,
        padding,
        outHeight,
        outWidth,
        weight: b.tensor(`${name}.weight`, [filters, channels, kernel, kernel]),
        bias: b.tensor(`${name}.bias`, [filters]),
      });
    }
    case 'maxpool2d':
    case 'avgpool2d': {
      rank(3, 'a [channels, height, width] input');
      const [channels, height, width] = inShape as [number, number, number];
      const size = positiveInt(where, 'size', layer.size);
      const stride = optionalInt(where, 'stride', layer.stride, size, 1);
      if (size > height || size > width) {
        throw new RangeError(
          `${where}: window ${size} is larger than the input height × width ${height} × ${width}`,
        );
      }
      const outHeight = Math.floor((height - size) / stride) + 1;
      const outWidth = Math.floor((width - size) / stride) + 1;
      return check({
        ...base,
        op: layer.type,
        outShape: [channels, outHeight, outWidth],
        channels,
        height,
        width,
        size,
        stride,
        outHeight,
        outWidth,
      });
    }
    case 'flatten':
      return check({ ...base, op: 'flatten', outShape: [product(inShape)] });
    case 'relu':
    case 'gelu':
      return check({ ...base, op: layer.type, outShape: inShape });
    case 'layernorm': {
      const epsilon = layer.epsilon ?? 1e-5;
      if (typeof epsilon !== 'number' || !(epsilon > 0) || !Number.isFinite(epsilon)) {
        throw new RangeError(
          `${where}.epsilon must be a finite number > 0, got ${String(epsilon)}`,
        );
      }
      const width = inShape[inShape.length - 1]!;
      return check({
        ...base,
        op: 'layernorm',
        outShape: inShape,
        positions: product(inShape) / width,
        width,
        epsilon,
        weight: b.tensor(`${name}.weight`, [width]),
        bias: b.tensor(`${name}.bias`, [width]),
      });
    }
    case 'embedding': {
      if (!first) throw new RangeError(`${where} must be the first layer: it reads token ids`);
      rank(1, 'a [positions] input of token ids');
      const vocab = positiveInt(where, 'vocab', layer.vocab);
      const dim = positiveInt(where, 'dim', layer.dim);
      const positions = inShape[0]!;
      return check({
        ...base,
        op: 'embedding',
        outShape: [positions, dim],
        positions,
        vocab,
        dim,
        token: b.tensor(`${name}.token.weight`, [vocab, dim]),
        position: b.tensor(`${name}.position.weight`, [positions, dim]),
      });
    }
    case 'attention': {
      rank(2, 'a [positions, width] input');
      const [positions, width] = inShape as [number, number];
      const heads = positiveInt(where, 'heads', layer.heads);
      if (width % heads !== 0) {
        throw new RangeError(`${where}: width ${width} is not a multiple of heads = ${heads}`);
      }
      b.macs += positions * width * 4 * width + positions * positions * width;
      return check({
        ...base,
        op: 'attention',
        outShape: inShape,
        positions,
        width,
        heads,
        qkvWeight: b.tensor(`${name}.qkv.weight`, [3 * width, width]),
        qkvBias: b.tensor(`${name}.qkv.bias`, [3 * width]),
        projWeight: b.tensor(`${name}.proj.weight`, [width, width]),
        projBias: b.tensor(`${name}.proj.bias`, [width]),
      });
    }
    case 'residual': {
      const { nodes, outShape } = buildSequence(layer.layers, inShape, `${path}.layers`, b, false);
      if (showShape(outShape) !== showShape(inShape)) {
        throw new RangeError(
          `${where}: its layers turn ${showShape(inShape)} into ${showShape(outShape)}; a residual block must keep the shape`,
        );
      }
      return { ...base, op: 'residual', outShape: inShape, inner: nodes };
    }
  }
}

/** Reads and checks a `layers` spec; throws a RangeError naming the bad layer and dimension. */
export function planLayers(spec: LayersSpec): LayersPlan {
  const loss = spec.loss ?? 'classify';
  if (loss !== 'classify' && loss !== 'next-token') {
    throw new RangeError(`model.loss must be classify or next-token, got ${String(loss)}`);
  }
  const inputs = positiveInt('model', 'inputs', spec.inputs);
  const classes = positiveInt('model', 'classes', spec.classes);
  if (classes < 2) throw new RangeError('model.classes must be at least 2');
  if (inputs > MAX_ACTIVATION) {
    throw new RangeError(`model.inputs is more than ${MAX_ACTIVATION} floats per sample`);
  }
  // A next-token sample holds one token more than the model reads: the last position's target.
  const read = loss === 'next-token' ? inputs - 1 : inputs;
  if (read < 1) throw new RangeError('model.inputs must be at least 2 for next-token');
  const inputShape = spec.inputShape ?? [read];
  if (!Array.isArray(inputShape) || inputShape.length < 1 || inputShape.length > 3) {
    throw new RangeError('model.inputShape must be a shape of 1 to 3 positive integers');
  }
  inputShape.forEach((d, i) => positiveInt('model', `inputShape[${i}]`, d));
  if (product(inputShape) !== read) {
    throw new RangeError(
      `model.inputShape ${showShape(inputShape)} holds ${product(inputShape)} values, but model.inputs = ${inputs} gives ${read}${loss === 'next-token' ? ' tokens read (one fewer than inputs for next-token)' : ''}`,
    );
  }
  if (loss === 'next-token' && inputShape.length !== 1) {
    throw new RangeError(`model.inputShape must be [positions] for next-token`);
  }
  const b = new PlanBuilder();
  const { nodes, outShape } = buildSequence(spec.layers, inputShape, 'model.layers', b, true);
  const last = nodes[nodes.length - 1]!;
  const lastName = `${last.path} (${last.op} ${last.name})`;
  if (loss === 'classify') {
    if (outShape.length !== 1 || outShape[0] !== classes) {
      throw new RangeError(
        `${lastName}: classify needs [classes] = [${classes}] logits from the last layer, got ${showShape(outShape)}${outShape.length === 1 ? '' : ' (add a flatten and a dense layer)'}`,
      );
    }
  } else {
    const head = nodes[0]!;
    if (head.op !== 'embedding') {
      throw new RangeError('model.layers[0] must be an embedding for next-token');
    }
    if (head.vocab !== classes) {
      throw new RangeError(
        `${head.path} (embedding ${head.name}): vocab ${head.vocab} must equal model.classes = ${classes} for next-token (the targets are tokens too)`,
      );
    }
    if (outShape.length !== 2 || outShape[0] !== read || outShape[1] !== classes) {
      throw new RangeError(
        `${lastName}: next-token needs [positions, classes] = [${read}, ${classes}] logits, got ${showShape(outShape)}`,
      );
    }
  }
  return {
    spec,
    loss,
    nodes,
    tensors: b.tensors,
    inputShape,
    outputShape: outShape,
    features: inputs,
    classes,
    scoredPositions: loss === 'classify' ? 1 : read,
    forwardMacs: b.macs,
  };
}

const plans = new WeakMap<LayersSpec, LayersPlan>();

/** `planLayers`, remembered per spec object (specs are immutable). */
export function planOf(spec: LayersSpec): LayersPlan {
  let plan = plans.get(spec);
  if (plan === undefined) {
    plan = planLayers(spec);
    plans.set(spec, plan);
  }
  return plan;
}

/** Every node of a plan in execution order, residual blocks' inner layers included. */
export function flattenNodes(nodes: readonly PlanNode[]): PlanNode[] {
  return nodes.flatMap((n) => (n.op === 'residual' ? [n, ...flattenNodes(n.inner)] : [n]));
}
