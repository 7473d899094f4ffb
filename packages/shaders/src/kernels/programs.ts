/**
 * Program factories: one function per kernel, from the model's numbers to a `ComputeProgram`
 * (WGSL file + generated preamble + override values), plus the dispatch size that goes with it.
 * The backend and the kernel checks build their programs here, so the checks run exactly the
 * kernels training runs.
 */
import {
  CUSTOM_KERNEL_BINDINGS,
  customKernelWorkgroups,
  PARZEN_MERGE_RULE,
  type MergeRule,
  type ParameterLayout,
} from '@meshgrad/core';
import { CODEC_PARAMS, STEP_PARAMS } from '../backend/uniforms.ts';
import { ComputeProgram } from '../gpu/program.ts';
import type { VectorWidth } from './preamble.ts';
import { vectorPreamble } from './preamble.ts';
import codecF16Source from './codec-f16.wgsl?raw';
import codecF16NativeSource from './codec-f16-native.wgsl?raw';
import codecInt8Source from './codec-int8.wgsl?raw';
import denseBackwardInputSource from './dense-backward-input.wgsl?raw';
import denseBackwardWeightsSource from './dense-backward-weights.wgsl?raw';
import denseBackwardWeightsSparseSource from './dense-backward-weights-sparse.wgsl?raw';
import denseForwardSource from './dense-forward.wgsl?raw';
import denseForwardSparseSource from './dense-forward-sparse.wgsl?raw';
import kmeansAssignSource from './kmeans-assign.wgsl?raw';
import kmeansGradSource from './kmeans-grad.wgsl?raw';
import kmeansSource from './kmeans.wgsl?raw';
import { elementGrid, GRID_PREAMBLE } from './layers/programs.ts';
import lossReduceSource from './loss-reduce.wgsl?raw';
import outerMomentumSource from './outer-momentum.wgsl?raw';
import sgdParzenSource from './sgd-parzen.wgsl?raw';
import softmaxCeSource from './softmax-ce.wgsl?raw';
import workgroupSumSource from './workgroup-sum.wgsl?raw';

const ceil = (n: number, d: number) => Math.ceil(n / d);

/** A program and its grid for one problem size. */
export interface Kernel {
  readonly program: ComputeProgram;
  /** Workgroups to dispatch for `rows` batch rows (samples) in this step. */
  grid(rows: number): readonly [number, number];
}

/** The shape of one dense layer within the flat parameter vector. */
export interface DenseShape {
  /** Inputs K. */
  readonly inputs: number;
  /** Outputs N. */
  readonly outputs: number;
  /** Float offset of the weight [K, N]; the bias [N] must follow it directly. */
  readonly weightOffset: number;
}

/**
 * vec4 where a layer's rows allow it (N and the weight offset multiples of 4, so every row of
 * [W; b] starts on a vec4), else scalar.
 */
export function denseVectorWidth(shape: DenseShape): VectorWidth {
  return shape.outputs % 4 === 0 && shape.weightOffset % 4 === 0 ? 4 : 1;
}

function stepPreamble(width?: VectorWidth): string {
  return (width === undefined ? '' : vectorPreamble(width)) + STEP_PARAMS.wgsl();
}

/** How the dense kernels are shaped for a class of adapter. */
export interface KernelTuning {
  /** Stage k-slices in workgroup memory (GPUs) or read storage directly (SwiftShader). */
  readonly stageTiles: boolean;
  /** Invocations per workgroup the dense kernels aim for. */
  readonly denseThreads: number;
}

/** GPUs: staged tiles, 64-invocation workgroups. */
export const HARDWARE_TUNING: KernelTuning = { stageTiles: true, denseThreads: 64 };

/**
 * Software rasterisers (SwiftShader): no staging and small workgroups, which it runs with less
 * coroutine switching at barriers and spreads better over CPU cores (measured on 64×784×128:
 * direct reads with 8-invocation workgroups 4.5 ms, staged 64-invocation tiles 14 ms).
 */
export const SOFTWARE_TUNING: KernelTuning = { stageTiles: false, denseThreads: 8 };

/** The tuning for `device`'s adapter: software for SwiftShader or a fallback adapter. */
export function tuningFor(device: GPUDevice): KernelTuning {
  // adapterInfo is recent (Chrome 132+); without it assume hardware.
  const info = (device as { adapterInfo?: Partial<GPUAdapterInfo> }).adapterInfo;
  const software =
    info?.isFallbackAdapter === true || /swiftshader/i.test(info?.architecture ?? '');
  return software ? SOFTWARE_TUNING : HARDWARE_TUNING;
}

/**
 * Threads across a row's V-columns, each owning 4 of them: enough to cover the row in one
 * workgroup column for narrow layers, at most 8 (32 V-columns per workgroup) for wide ones.
 */
function columnThreads(nv: number): number {
  return Math.min(8, Math.max(1, ceil(nv, 4)));
}

/**
 * A layer's rows in V units for the dense kernels: vector width, V-columns NV, the weight offset
 * in V, and the threads across a row that the column-owning kernels use.
 */
function denseColumns(shape: DenseShape) {
  const width = denseVectorWidth(shape);
  const nv = shape.outputs / width;
  return { width, nv, offset: shape.weightOffset / width, tx: columnThreads(nv) };
}

/** Dense forward on a dense input: y = x·W + b, optional ReLU (dense-forward.wgsl). */
export function denseForwardKernel(
  shape: DenseShape,
  relu: boolean,
  tuning: KernelTuning = HARDWARE_TUNING,
): Kernel {
  const { width, nv, offset, tx } = denseColumns(shape);
  const ty = Math.max(1, Math.min(8, Math.floor(tuning.denseThreads / tx)));
  const program = new ComputeProgram({
    name: 'dense-forward',
    body: denseForwardSource,
    preamble: stepPreamble(width),
    overrides: {
      K: shape.inputs,
      NV: nv,
      W_OFF: offset,
      RELU: relu,
      STAGE: tuning.stageTiles,
      TX: tx,
      TY: ty,
    },
  });
  return { program, grid: (rows) => [ceil(nv, tx * 4), ceil(rows, ty * 4)] };
}

/** Dense forward on a CSR input of [x | 1] (dense-forward-sparse.wgsl). */
export function denseForwardSparseKernel(shape: DenseShape, relu: boolean): Kernel {
  const { width, nv, offset, tx } = denseColumns(shape);
  const ts = Math.max(1, Math.floor(64 / tx));
  const program = new ComputeProgram({
    name: 'dense-forward-sparse',
    body: denseForwardSparseSource,
    preamble: stepPreamble(width),
    overrides: { NV: nv, W_OFF: offset, RELU: relu, TX: tx, TS: ts },
  });
  return { program, grid: (rows) => [ceil(nv, tx * 4), ceil(rows, ts)] };
}

/** [dW; db] = [x | 1]ᵀ·dY on a dense input (dense-backward-weights.wgsl). */
export function denseBackwardWeightsKernel(
  shape: DenseShape,
  tuning: KernelTuning = HARDWARE_TUNING,
): Kernel {
  const { width, nv, offset, tx } = denseColumns(shape);
  const ty = Math.max(1, Math.floor(tuning.denseThreads / tx));
  const program = new ComputeProgram({
    name: 'dense-backward-weights',
    body: denseBackwardWeightsSource,
    preamble: stepPreamble(width),
    overrides: { K: shape.inputs, NV: nv, G_OFF: offset, TX: tx, TY: ty },
  });
  // Each thread owns 4 rows of the K + 1.
  return { program, grid: () => [ceil(nv, tx * 4), ceil(ceil(shape.inputs + 1, 4), ty)] };
}

/** [dW; db] = [x | 1]ᵀ·dY on a CSC input (dense-backward-weights-sparse.wgsl). */
export function denseBackwardWeightsSparseKernel(shape: DenseShape): Kernel {
  const { width, nv, offset, tx } = denseColumns(shape);
  const ty = Math.max(1, Math.floor(64 / tx));
  const program = new ComputeProgram({
    name: 'dense-backward-weights-sparse',
    body: denseBackwardWeightsSparseSource,
    preamble: vectorPreamble(width),
    overrides: { K: shape.inputs, NV: nv, G_OFF: offset, TX: tx, TY: ty },
  });
  return { program, grid: () => [ceil(nv, tx * 4), ceil(shape.inputs + 1, ty)] };
}

/** dX = (dY·Wᵀ) ⊙ ReLU'(a) (dense-backward-input.wgsl). */
export function denseBackwardInputKernel(shape: DenseShape): Kernel {
  const { width, nv, offset } = denseColumns(shape);
  const tx = Math.min(32, shape.inputs);
  const ty = Math.max(1, Math.floor(64 / tx));
  const program = new ComputeProgram({
    name: 'dense-backward-input',
    body: denseBackwardInputSource,
    preamble: stepPreamble(width),
    overrides: { K: shape.inputs, NV: nv, W_OFF: offset, TX: tx, TY: ty },
  });
  return { program, grid: (rows) => [ceil(shape.inputs, tx), ceil(rows, ty)] };
}

const SAMPLE_WG = 64;

/**
 * Workgroup size of the reductions (loss mean, Parzen dot products, int8 max). 64, not 256:
 * SwiftShader runs 256-invocation workgroups with barriers pathologically slowly (measured: the
 * SGD+Parzen pass over 100k parameters, 7 blocks, took 16 ms with 256 threads per block and
 * 1.1 ms with 64), and on GPUs 64 threads per block suffice for a memory-bound pass.
 */
const REDUCE_WG = 64;

/** Softmax cross-entropy: per-sample loss and ∂(mean loss)/∂logits (softmax-ce.wgsl). */
export function softmaxCrossEntropyKernel(classes: number): Kernel {
  const program = new ComputeProgram({
    name: 'softmax-ce',
    body: softmaxCeSource,
    preamble: stepPreamble(),
    overrides: { CLASSES: classes, WG: SAMPLE_WG },
  });
  return { program, grid: (rows) => [ceil(rows, SAMPLE_WG), 1] };
}

/**
 * A host's custom gradient kernel (docs/custom-wgsl.md): its own WGSL under the fixed binding
 * layout of core's CUSTOM_KERNEL_BINDINGS, one invocation per parameter or sample.
 */
export function customGradKernel(
  layout: ParameterLayout,
  kernel: { readonly wgsl: string; readonly entryPoint?: string },
): Kernel {
  const program = new ComputeProgram({
    name: 'custom',
    body: kernel.wgsl,
    entryPoint: kernel.entryPoint ?? 'main',
    bindings: CUSTOM_KERNEL_BINDINGS,
  });
  return { program, grid: (rows) => [customKernelWorkgroups(layout, rows), 1] };
}

/** Batch mean of the per-sample losses into the loss ring (loss-reduce.wgsl). */
export function lossReduceKernel(): Kernel {
  const program = new ComputeProgram({
    name: 'loss-reduce',
    body: lossReduceSource,
    preamble: stepPreamble(),
    overrides: { WG: REDUCE_WG },
  });
  return { program, grid: () => [1, 1] };
}

/** K-Means nearest centre and per-sample loss (kmeans-assign.wgsl). */
export function kmeansAssignKernel(dims: number, clusters: number, centresOffset = 0): Kernel {
  const program = new ComputeProgram({
    name: 'kmeans-assign',
    body: kmeansAssignSource,
    preamble: stepPreamble() + kmeansSource,
    overrides: { DIMS: dims, CLUSTERS: clusters, C_OFF: centresOffset, WG: SAMPLE_WG },
  });
  return { program, grid: (rows) => [ceil(rows, SAMPLE_WG), 1] };
}

/** K-Means gradient of the mean loss (kmeans-grad.wgsl). */
export function kmeansGradKernel(dims: number, clusters: number, centresOffset = 0): Kernel {
  const program = new ComputeProgram({
    name: 'kmeans-grad',
    body: kmeansGradSource,
    preamble: stepPreamble() + kmeansSource,
    overrides: { DIMS: dims, CLUSTERS: clusters, C_OFF: centresOffset, WG: SAMPLE_WG },
  });
  return { program, grid: () => [ceil(dims * clusters, SAMPLE_WG), 1] };
}

/** Block geometry of the update kernel. */
export interface UpdateShape {
  /** Parameters P. */
  readonly size: number;
  readonly blockSize: number;
  readonly blockCount: number;
  /** Mailbox capacity in blocks. */
  readonly slots: number;
  /** Floats between mailbox slots, a multiple of 4 (buffers.ts `blockStride`). */
  readonly slotStride: number;
}

/** vec4 when blocks are whole vec4s (then every block starts on one), else scalar. */
export function updateVectorWidth(shape: UpdateShape): VectorWidth {
  return shape.blockSize % 4 === 0 ? 4 : 1;
}

/** How the update kernel merges: core's MergeRule without its outer momentum. */
export type UpdateRule = Pick<MergeRule, 'order' | 'parzen'>;

/** SGD step + Parzen test + merge, one workgroup per block (sgd-parzen.wgsl). */
export function sgdParzenKernel(shape: UpdateShape, rule: UpdateRule = PARZEN_MERGE_RULE): Kernel {
  const width = updateVectorWidth(shape);
  const program = new ComputeProgram({
    name: 'sgd-parzen',
    body: sgdParzenSource,
    preamble: stepPreamble(width) + workgroupSumSource,
    overrides: {
      BLOCK_V: shape.blockSize / width,
      SLOT_V: shape.slotStride / width,
      SIZE: shape.size,
      SLOTS: shape.slots,
      WG: REDUCE_WG,
      AVERAGE_FIRST: rule.order === 'average-then-step',
      PARZEN: rule.parzen === 'hard',
    },
  });
  return { program, grid: () => [shape.blockCount, 1] };
}

/**
 * Outer momentum with β = `beta` over `paddedCount` floats (a multiple of 4), one thread per
 * vec4 (outer-momentum.wgsl).
 */
export function outerMomentumKernel(paddedCount: number, beta: number): Kernel {
  const count = paddedCount / 4;
  const program = new ComputeProgram({
    name: 'outer-momentum',
    body: outerMomentumSource,
    preamble: GRID_PREAMBLE,
    overrides: { COUNT_V: count, BETA: beta, WG: 64 },
  });
  return { program, grid: () => elementGrid(count) };
}

const CODEC_WG = 64;

/** float16 encode (two values per u32) of `count` values; bitwise, exact everywhere. */
export function f16EncodeKernel(): { program: ComputeProgram; grid(count: number): number } {
  const program = new ComputeProgram({
    name: 'codec-f16',
    entryPoint: 'encode',
    body: codecF16Source,
    preamble: CODEC_PARAMS.wgsl(),
    overrides: { WG: CODEC_WG },
  });
  return { program, grid: (count) => ceil(ceil(count, 2), CODEC_WG) };
}

/**
 * float16 decode of `count` values; with `native` (only where the device has `shader-f16`) it
 * widens with WGSL's f16 type, else bitwise.
 */
export function f16DecodeKernel(native: boolean): {
  program: ComputeProgram;
  grid(count: number): number;
} {
  const program = native
    ? new ComputeProgram({
        name: 'codec-f16-native',
        entryPoint: 'decode',
        body: codecF16NativeSource,
        preamble: 'enable f16;\n' + CODEC_PARAMS.wgsl(),
        overrides: { WG: CODEC_WG },
      })
    : new ComputeProgram({
        name: 'codec-f16',
        entryPoint: 'decode',
        body: codecF16Source,
        preamble: CODEC_PARAMS.wgsl(),
        overrides: { WG: CODEC_WG },
      });
  return { program, grid: (count) => ceil(count, CODEC_WG) };
}

/** int8 encode of one block: a single workgroup reduces max |v| and quantises. */
export function int8EncodeKernel(): { program: ComputeProgram; grid(count: number): number } {
  const program = new ComputeProgram({
    name: 'codec-int8',
    entryPoint: 'encode',
    body: codecInt8Source,
    preamble: CODEC_PARAMS.wgsl(),
    overrides: { WG: REDUCE_WG },
  });
  return { program, grid: () => 1 };
}

/** int8 decode of `count` values from the encode layout (scale, flag, packed codes). */
export function int8DecodeKernel(): { program: ComputeProgram; grid(count: number): number } {
  const program = new ComputeProgram({
    name: 'codec-int8',
    entryPoint: 'decode',
    body: codecInt8Source,
    preamble: CODEC_PARAMS.wgsl(),
    overrides: { WG: CODEC_WG },
  });
  return { program, grid: (count) => ceil(count, CODEC_WG) };
}
