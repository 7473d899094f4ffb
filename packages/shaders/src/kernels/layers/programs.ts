/**
 * Program factories of the layers kind (core's layers/): the tiled GEMM (gemm.wgsl) under one
 * generated operand view per product, the elementwise kernel and pooling. The backend
 * (backend/models/layers.ts) and the kernel checks build their programs here, so the checks run
 * exactly the kernels training runs.
 *
 * A view is WGSL text because it is the structure that changes between products (which buffer an
 * operand comes from, how an index unfolds into an im2col column); every number in it (widths,
 * offsets, kernel geometry) is an `override` constant and part of the pipeline key.
 */
import type {
  AttentionNode,
  Conv2dNode,
  DenseNode,
  EmbeddingNode,
  LayerNormNode,
  PoolNode,
} from '@meshgrad/core';
import { STEP_PARAMS } from '../../backend/uniforms.ts';
import { ComputeProgram } from '../../gpu/program.ts';
import type { Kernel } from '../programs.ts';
import workgroupSumSource from '../workgroup-sum.wgsl?raw';
import activationSource from './activation.wgsl?raw';
import attentionSource from './attention.wgsl?raw';
import elementwiseSource from './elementwise.wgsl?raw';
import embeddingSource from './embedding.wgsl?raw';
import gemmSource from './gemm.wgsl?raw';
import gridSource from './grid.wgsl?raw';
import layernormBackwardSource from './layernorm-backward.wgsl?raw';
import layernormForwardSource from './layernorm-forward.wgsl?raw';
import layernormParamsSource from './layernorm-params.wgsl?raw';
import nextTokenCeSource from './next-token-ce.wgsl?raw';
import poolSource from './pool.wgsl?raw';
import poolBackwardSource from './pool-backward.wgsl?raw';
import poolForwardSource from './pool-forward.wgsl?raw';

const ceil = (n: number, d: number) => Math.ceil(n / d);

/** Most threads per side of a GEMM workgroup: 8 × 8 threads, each 4 × 4 entries of C. */
const GEMM_THREADS_PER_SIDE = 8;
/** Invocations of the one-thread-per-element kernels. */
const ELEMENT_WG = 64;
/**
 * Workgroups per row of a 2-D element grid: far below WebGPU's guaranteed 65535 per dimension,
 * so batch × activation up to 2^32 elements fits.
 */
const GRID_ROW = 4096;

/** The preamble of every kernel dispatched on a `groupGrid`: the step struct and grid.wgsl. */
export const GRID_PREAMBLE = STEP_PARAMS.wgsl() + gridSource;

/** An epilogue activation, fused into the store of a product. */
export type Activation = 'none' | 'relu' | 'gelu';

/** A GEMM dimension: fixed, or a multiple of the step's batch (`perSample` × batch). */
export type GemmDim = number | { readonly perSample: number };

const dimAt = (d: GemmDim, rows: number) => (typeof d === 'number' ? d : d.perSample * rows);
const dimWgsl = (d: GemmDim, name: string) =>
  typeof d === 'number' ? name : `${name} * step.batch`;

/** One product C = A·B as gemm.wgsl runs it. */
export interface GemmView {
  /** Program name (label of its GPU objects). */
  readonly name: string;
  readonly m: GemmDim;
  readonly n: GemmDim;
  readonly k: GemmDim;
  /** Buffer declarations after `step` (binding 0): bindings 1, 2, ... */
  readonly buffers: string;
  /** WGSL helpers and the bodies of loadA(m, k), loadB(k, n) and storeC(m, n, acc). */
  readonly loadA: string;
  readonly loadB: string;
  readonly storeC: string;
  readonly helpers?: string;
  /** Numbers the view's text names; `DIM_M`, `DIM_N`, `DIM_K` are added from m, n, k. */
  readonly overrides: Readonly<Record<string, number>>;
}

function sideThreads(d: GemmDim): number {
  // A fixed small side gets a narrower workgroup instead of idle threads.
  return typeof d === 'number'
    ? Math.max(1, Math.min(GEMM_THREADS_PER_SIDE, ceil(d, 4)))
    : GEMM_THREADS_PER_SIDE;
}

/** The GEMM kernel of a view; its grid covers M × N for the step's rows. */
export function gemmKernel(view: GemmView): Kernel {
  const tm = sideThreads(view.m);
  const tn = sideThreads(view.n);
  const declared = Object.keys(view.overrides)
    .map((name) => `override ${name}: u32;\n`)
    .join('');
  const preamble = `${STEP_PARAMS.wgsl()}${activationSource}
override DIM_M: u32;
override DIM_N: u32;
override DIM_K: u32;
${declared}
@group(0) @binding(0) var<uniform> step: StepParams;
${view.buffers}
fn dims() -> vec3<u32> {
  return vec3<u32>(${dimWgsl(view.m, 'DIM_M')}, ${dimWgsl(view.n, 'DIM_N')}, ${dimWgsl(view.k, 'DIM_K')});
}
${view.helpers ?? ''}
fn loadA(m: u32, k: u32) -> f32 {
${view.loadA}
}
fn loadB(k: u32, n: u32) -> f32 {
${view.loadB}
}
fn storeC(m: u32, n: u32, acc: f32) {
${view.storeC}
}
`;
  const perDim = (d: GemmDim) => (typeof d === 'number' ? d : d.perSample);
  const program = new ComputeProgram({
    name: view.name,
    body: gemmSource,
    preamble,
    overrides: {
      ...view.overrides,
      DIM_M: perDim(view.m),
      DIM_N: perDim(view.n),
      DIM_K: perDim(view.k),
      TM: tm,
      TN: tn,
    },
  });
  return {
    program,
    grid: (rows) => [ceil(dimAt(view.n, rows), tn * 4), ceil(dimAt(view.m, rows), tm * 4)],
  };
}

/**
 * Buffer declarations of a view: the `read` operands, then the one `written`, as bindings 1, 2, ...
 * after `step`.
 */
function viewBuffers(read: readonly string[], written: string): string {
  return [
    ...read.map((name) => ({ name, access: 'read' })),
    { name: written, access: 'read_write' },
  ]
    .map((b, i) => `@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: array<f32>;`)
    .join('\n');
}

/** WGSL applying `act` to `v`. */
function activate(act: Activation, v: string): string {
  return act === 'none' ? v : `${act}(${v})`;
}

/**
 * A dense layer over `positions` positions per sample (core's DenseNode): W is
 * [outWidth, inWidth] (PyTorch). `weight` and `bias` are float offsets in the parameter vector
 * here, not tensor indices as in the plan; so in every geometry below.
 */
export type DenseGeometry = Pick<
  DenseNode,
  'positions' | 'inWidth' | 'outWidth' | 'weight' | 'bias'
>;

/** y = act(x·Wᵀ + b) (core's denseForward). */
export function layersDenseForwardKernel(g: DenseGeometry, act: Activation): Kernel {
  return gemmKernel({
    name: 'layers-dense-forward',
    m: { perSample: g.positions },
    n: g.outWidth,
    k: g.inWidth,
    buffers: viewBuffers(['x', 'params'], 'y'),
    loadA: '  return x[m * DIM_K + k];',
    loadB: '  return params[W_OFF + n * DIM_K + k];',
    storeC: `  y[m * DIM_N + n] = ${activate(act, 'acc + params[B_OFF + n]')};`,
    overrides: { W_OFF: g.weight, B_OFF: g.bias },
  });
}

/** dx = dy·W (core's denseBackward, its input gradient). */
export function layersDenseBackwardInputKernel(g: DenseGeometry): Kernel {
  return gemmKernel({
    name: 'layers-dense-backward-input',
    m: { perSample: g.positions },
    n: g.inWidth,
    k: g.outWidth,
    buffers: viewBuffers(['dy', 'params'], 'dx'),
    loadA: '  return dy[m * DIM_K + k];',
    loadB: '  return params[W_OFF + k * DIM_N + n];',
    storeC: '  dx[m * DIM_N + n] = acc;',
    overrides: { W_OFF: g.weight },
  });
}

/**
 * ∂W = dyᵀ·x and ∂b = Σ dy in one product: [∂W | ∂b] = dyᵀ·[x | 1], column inWidth of B being
 * the ones. Overwrites the layer's gradient (each tensor's gradient has exactly one writer).
 */
export function layersDenseBackwardWeightsKernel(g: DenseGeometry): Kernel {
  return gemmKernel({
    name: 'layers-dense-backward-weights',
    m: g.outWidth,
    n: g.inWidth + 1,
    k: { perSample: g.positions },
    buffers: viewBuffers(['dy', 'x'], 'grad'),
    loadA: '  return dy[k * DIM_M + m];',
    loadB: '  if (n == IN) { return 1.0; }\n  return x[k * IN + n];',
    storeC: '  if (n == IN) { grad[B_OFF + m] = acc; } else { grad[W_OFF + m * IN + n] = acc; }',
    overrides: { W_OFF: g.weight, B_OFF: g.bias, IN: g.inWidth },
  });
}

/** A conv2d layer (core's Conv2dNode): W is [filters, channels, kernel, kernel]. */
export type ConvGeometry = Omit<Conv2dNode, 'op' | 'path' | 'name' | 'inShape' | 'outShape'>;

function convOverrides(g: ConvGeometry): Record<string, number> {
  return {
    C: g.channels,
    IH: g.height,
    IW: g.width,
    F: g.filters,
    KS: g.kernel,
    STRIDE: g.stride,
    PAD: g.padding,
    OH: g.outHeight,
    OW: g.outWidth,
    W_OFF: g.weight,
    B_OFF: g.bias,
  };
}

/**
 * Entry (r, j) of the im2col matrix of the whole batch: r = (c·KS + ky)·KS + kx, j = s·OH·OW +
 * oy·OW + ox; 0 in the padding.
 */
const IM2COL = `fn col(r: u32, j: u32) -> f32 {
  let s = j / (OH * OW);
  let p = j % (OH * OW);
  let c = r / (KS * KS);
  let ky = (r / KS) % KS;
  let kx = r % KS;
  let iy = i32((p / OW) * STRIDE + ky) - i32(PAD);
  let ix = i32((p % OW) * STRIDE + kx) - i32(PAD);
  if (iy < 0 || ix < 0 || iy >= i32(IH) || ix >= i32(IW)) { return 0.0; }
  return x[(s * C + c) * IH * IW + u32(iy) * IW + u32(ix)];
}`;

/** out[s, f, p] = act(Σ_r W[f, r]·col(r, (s, p)) + b[f]): convolution as an implicit GEMM. */
export function layersConvForwardKernel(g: ConvGeometry, act: Activation): Kernel {
  const patch = g.channels * g.kernel * g.kernel;
  return gemmKernel({
    name: 'layers-conv2d-forward',
    m: g.filters,
    n: { perSample: g.outHeight * g.outWidth },
    k: patch,
    buffers: viewBuffers(['x', 'params'], 'y'),
    helpers: IM2COL,
    loadA: '  return params[W_OFF + m * DIM_K + k];',
    loadB: '  return col(k, n);',
    storeC: `  let s = n / (OH * OW);
  y[(s * F + m) * OH * OW + n % (OH * OW)] = ${activate(act, 'acc + params[B_OFF + m]')};`,
    overrides: convOverrides(g),
  });
}

/** [∂W | ∂b] = dy·[colᵀ | 1] over every sample and output pixel. Overwrites the gradient. */
export function layersConvBackwardWeightsKernel(g: ConvGeometry): Kernel {
  const patch = g.channels * g.kernel * g.kernel;
  return gemmKernel({
    name: 'layers-conv2d-backward-weights',
    m: g.filters,
    n: patch + 1,
    k: { perSample: g.outHeight * g.outWidth },
    buffers: viewBuffers(['dy', 'x'], 'grad'),
    helpers: IM2COL,
    loadA: '  let s = k / (OH * OW);\n  return dy[(s * F + m) * OH * OW + k % (OH * OW)];',
    loadB: '  if (n == PATCH) { return 1.0; }\n  return col(n, k);',
    storeC:
      '  if (n == PATCH) { grad[B_OFF + m] = acc; } else { grad[W_OFF + m * PATCH + n] = acc; }',
    overrides: { ...convOverrides(g), PATCH: patch },
  });
}

/**
 * dx[s, c, iy, ix] = Σ_(f, ky, kx) W[f, c, ky, kx]·dy[s, f, oy, ox] over the outputs that read
 * (iy, ix): a gather (no atomics), as an implicit GEMM with M = channels, N = batch·H·W and
 * K = filters·kernel².
 */
export function layersConvBackwardInputKernel(g: ConvGeometry): Kernel {
  return gemmKernel({
    name: 'layers-conv2d-backward-input',
    m: g.channels,
    n: { perSample: g.height * g.width },
    k: g.filters * g.kernel * g.kernel,
    buffers: viewBuffers(['dy', 'params'], 'dx'),
    loadA: `  let f = k / (KS * KS);
  return params[W_OFF + (f * C + m) * KS * KS + k % (KS * KS)];`,
    loadB: `  let f = k / (KS * KS);
  let ky = (k / KS) % KS;
  let kx = k % KS;
  let s = n / (IH * IW);
  let ty = i32((n / IW) % IH + PAD) - i32(ky);
  let tx = i32(n % IW + PAD) - i32(kx);
  if (ty < 0 || tx < 0) { return 0.0; }
  if (u32(ty) % STRIDE != 0u || u32(tx) % STRIDE != 0u) { return 0.0; }
  let oy = u32(ty) / STRIDE;
  let ox = u32(tx) / STRIDE;
  if (oy >= OH || ox >= OW) { return 0.0; }
  return dy[((s * F + f) * OH + oy) * OW + ox];`,
    storeC: `  let s = n / (IH * IW);
  dx[(s * C + m) * IH * IW + n % (IH * IW)] = acc;`,
    overrides: convOverrides(g),
  });
}

/** The elementwise operations of elementwise.wgsl. */
export type ElementwiseOp = 'relu' | 'gelu' | 'add';

const ELEMENTWISE_CODE: Record<ElementwiseOp, number> = { relu: 0, gelu: 1, add: 2 };

/** A 2-D grid of `groups` workgroups (kernels index them as wid.y·grid.x + wid.x). */
function groupGrid(groups: number): readonly [number, number] {
  return groups <= GRID_ROW ? [groups, 1] : [GRID_ROW, ceil(groups, GRID_ROW)];
}

/** Grid of a one-thread-per-element kernel over `count` elements. */
export function elementGrid(count: number): readonly [number, number] {
  return groupGrid(ceil(count, ELEMENT_WG));
}

/**
 * dst = op(src) (forward), dst = aux · op'(src) (backward), or dst = src + aux (`add`), over
 * `perSample` floats of each sample.
 */
export function layersElementwiseKernel(
  op: ElementwiseOp,
  backward: boolean,
  perSample: number,
): Kernel {
  const program = new ComputeProgram({
    name: `layers-${op}${backward && op !== 'add' ? '-backward' : ''}`,
    body: elementwiseSource,
    preamble: GRID_PREAMBLE + activationSource,
    overrides: {
      OP: ELEMENTWISE_CODE[op],
      BACKWARD: backward && op !== 'add',
      N_PER_SAMPLE: perSample,
      WG: ELEMENT_WG,
    },
  });
  return { program, grid: (rows) => elementGrid(rows * perSample) };
}

/** A pooling layer (core's PoolNode), max or average. */
export type PoolGeometry = Pick<
  PoolNode,
  'channels' | 'height' | 'width' | 'size' | 'stride' | 'outHeight' | 'outWidth'
> & { readonly max: boolean };

function poolOverrides(g: PoolGeometry): Record<string, number | boolean> {
  return {
    MAX: g.max,
    C: g.channels,
    IH: g.height,
    IW: g.width,
    OH: g.outHeight,
    OW: g.outWidth,
    SIZE: g.size,
    STRIDE: g.stride,
    WG: ELEMENT_WG,
  };
}

/**
 * Pooling forward, one thread per output (pool-forward.wgsl), or backward, one thread per input
 * (pool-backward.wgsl).
 */
function poolKernel(g: PoolGeometry, backward: boolean): Kernel {
  const program = new ComputeProgram({
    name: `layers-${g.max ? 'max' : 'avg'}pool-${backward ? 'backward' : 'forward'}`,
    body: backward ? poolBackwardSource : poolForwardSource,
    preamble: GRID_PREAMBLE + poolSource,
    overrides: poolOverrides(g),
  });
  const perSample = backward
    ? g.channels * g.height * g.width
    : g.channels * g.outHeight * g.outWidth;
  return { program, grid: (rows) => elementGrid(rows * perSample) };
}

/** Pooling forward, one thread per output (pool-forward.wgsl). */
export function layersPoolForwardKernel(g: PoolGeometry): Kernel {
  return poolKernel(g, false);
}

/** Pooling backward, one thread per input (pool-backward.wgsl). */
export function layersPoolBackwardKernel(g: PoolGeometry): Kernel {
  return poolKernel(g, true);
}

/**
 * Threads of the layer-norm reductions: a power of two; 64, as the backend's other reductions
 * (SwiftShader runs wider workgroups with barriers far slower; programs.ts REDUCE_WG).
 */
const NORM_WG = 64;

/** A layer norm over the last dimension (core's LayerNormNode), γ and β at their offsets. */
export type LayerNormGeometry = Pick<
  LayerNormNode,
  'positions' | 'width' | 'epsilon' | 'weight' | 'bias'
>;

/** Floats of per-row statistics (mean, rstd) the forward keeps for the backward. */
export const LAYERNORM_STATS_PER_ROW = 2;

/** Layer norm forward, one workgroup per row (layernorm-forward.wgsl). */
export function layersLayerNormForwardKernel(g: LayerNormGeometry): Kernel {
  const program = new ComputeProgram({
    name: 'layers-layernorm-forward',
    body: layernormForwardSource,
    preamble: GRID_PREAMBLE + workgroupSumSource,
    overrides: {
      WIDTH: g.width,
      POSITIONS: g.positions,
      G_OFF: g.weight,
      B_OFF: g.bias,
      EPSILON: g.epsilon,
      WG: NORM_WG,
    },
  });
  return { program, grid: (rows) => groupGrid(rows * g.positions) };
}

/** Layer norm input gradient, one workgroup per row (layernorm-backward.wgsl). */
export function layersLayerNormBackwardInputKernel(g: LayerNormGeometry): Kernel {
  const program = new ComputeProgram({
    name: 'layers-layernorm-backward-input',
    body: layernormBackwardSource,
    preamble: GRID_PREAMBLE + workgroupSumSource,
    overrides: { WIDTH: g.width, POSITIONS: g.positions, G_OFF: g.weight, WG: NORM_WG },
  });
  return { program, grid: (rows) => groupGrid(rows * g.positions) };
}

/** Layer norm ∂γ and ∂β, one workgroup per column (layernorm-params.wgsl). */
export function layersLayerNormBackwardParamsKernel(g: LayerNormGeometry): Kernel {
  const program = new ComputeProgram({
    name: 'layers-layernorm-backward-params',
    body: layernormParamsSource,
    preamble: GRID_PREAMBLE + workgroupSumSource,
    overrides: {
      WIDTH: g.width,
      POSITIONS: g.positions,
      G_OFF: g.weight,
      B_OFF: g.bias,
      WG: NORM_WG,
    },
  });
  return { program, grid: () => groupGrid(g.width) };
}

/** A token + position embedding (core's EmbeddingNode), its tables at their offsets. */
export type EmbeddingGeometry = Pick<
  EmbeddingNode,
  'positions' | 'vocab' | 'dim' | 'token' | 'position'
> & {
  /** Floats per sample in the input (positions, or positions + 1 with the target). */
  readonly stride: number;
};

function embeddingProgram(g: EmbeddingGeometry, entryPoint: 'forward' | 'backward') {
  return new ComputeProgram({
    name: 'layers-embedding',
    entryPoint,
    body: embeddingSource,
    preamble: GRID_PREAMBLE,
    overrides: {
      POSITIONS: g.positions,
      DIM: g.dim,
      VOCAB: g.vocab,
      STRIDE: g.stride,
      TOK_OFF: g.token,
      POS_OFF: g.position,
      WG: ELEMENT_WG,
    },
  });
}

/** Embedding forward, one thread per output element (embedding.wgsl `forward`). */
export function layersEmbeddingForwardKernel(g: EmbeddingGeometry): Kernel {
  return {
    program: embeddingProgram(g, 'forward'),
    grid: (rows) => elementGrid(rows * g.positions * g.dim),
  };
}

/** Embedding table gradients, one thread per table entry (embedding.wgsl `backward`). */
export function layersEmbeddingBackwardKernel(g: EmbeddingGeometry): Kernel {
  return {
    program: embeddingProgram(g, 'backward'),
    grid: () => elementGrid((g.vocab + g.positions) * g.dim),
  };
}

function nextTokenProgram(positions: number, vocab: number, entryPoint: 'score' | 'per_sample') {
  return new ComputeProgram({
    name: 'layers-next-token-ce',
    entryPoint,
    body: nextTokenCeSource,
    preamble: GRID_PREAMBLE,
    overrides: { POSITIONS: positions, VOCAB: vocab, WG: ELEMENT_WG },
  });
}

/** Next-token loss and logit gradient per scored position (next-token-ce.wgsl `score`). */
export function layersNextTokenScoreKernel(positions: number, vocab: number): Kernel {
  return {
    program: nextTokenProgram(positions, vocab, 'score'),
    grid: (rows) => elementGrid(rows * positions),
  };
}

/** Per-sample mean of the position losses (next-token-ce.wgsl `per_sample`). */
export function layersNextTokenSampleKernel(positions: number, vocab: number): Kernel {
  return {
    program: nextTokenProgram(positions, vocab, 'per_sample'),
    grid: (rows) => [ceil(rows, ELEMENT_WG), 1],
  };
}

/** The attention core between the projections (core's AttentionNode). */
export type AttentionGeometry = Pick<AttentionNode, 'positions' | 'width' | 'heads'>;

/** Floats per sample of the attention core's regions. */
export function attentionRegionSizes(g: AttentionGeometry) {
  return {
    qkv: g.positions * 3 * g.width,
    probs: g.heads * g.positions * g.positions,
    context: g.positions * g.width,
  };
}

/**
 * One entry point of attention.wgsl, one thread per (sample, head, position): `forward`, then
 * in the backward pass `backward_query` before `backward_key`.
 */
export function layersAttentionKernel(
  g: AttentionGeometry,
  entryPoint: 'forward' | 'backward_query' | 'backward_key',
): Kernel {
  const program = new ComputeProgram({
    name: 'layers-attention',
    entryPoint,
    body: attentionSource,
    preamble: GRID_PREAMBLE,
    overrides: {
      T: g.positions,
      D: g.width,
      H: g.heads,
      DH: g.width / g.heads,
      WG: ELEMENT_WG,
    },
  });
  return { program, grid: (rows) => elementGrid(rows * g.heads * g.positions) };
}
