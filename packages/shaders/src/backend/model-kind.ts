/**
 * How one kind of model runs on the WebGPU backend. The backend owns what every model shares
 * (parameters, gradient, mailbox, loss ring, the loss-mean and SGD+Parzen passes, readbacks); a
 * `ModelKind` brings the rest, in four stages that follow the backend's own life:
 *
 * 1. regions: `regions` names the buffer regions the kind's kernels bind beyond the shared ones
 *    (labels, activations, ...); `BufferPlan` calls it, so buffer sizes stay in one schema.
 * 2. compile: `prepare` checks the model against the options (synchronously, throwing a
 *    RangeError before anything is allocated) and returns a `PreparedModel`, whose `compile`
 *    compiles every pipeline the kind will ever dispatch, asynchronously and in parallel with the
 *    backend's own. Nothing is compiled later, so a step never waits for a compiler.
 * 3. bind: once the buffers exist, `CompiledModel.bind` makes the bind groups from the regions
 *    by name (`BindRegion`), giving the `ModelPasses` of the running backend.
 * 4. upload and encode, every step: `upload` writes the minibatch into the kind's regions with
 *    `queue.writeBuffer`; then, inside the step's one compute pass, `encodeLoss` dispatches
 *    everything up to the per-sample losses in `sampleLoss` (the backend then averages them into
 *    the loss ring) and `encodeGradient` the rest of ∂loss/∂params into `grad`, which the
 *    backend's update pass reads next. Dispatches in one pass see each other's writes in order.
 *
 * A new kind is one file exporting a `ModelKind`, registered in models/registry.ts under its
 * `ModelSpec['kind']`; the backend never asks which kind it runs.
 */
import type { Batch, ParameterLayout } from '@meshgrad/core';
import type { CompiledProgram } from '../gpu/program.ts';
import type { Kernel, KernelTuning } from '../kernels/programs.ts';

/** Regions a kind adds to the buffer plan. Sizes in bytes (rounded up to 16 by the plan). */
export interface RegionSink {
  /** A storage region in a buffer of its own (read by one kernel, written by another). */
  work(name: string, bytes: number): void;
  /** A uniform region, in the buffer that also holds the step parameters. */
  uniform(name: string, bytes: number): void;
}

/** What sizes the kind's regions (a subset of the buffer plan's options). */
export interface RegionOptions {
  readonly maxBatch: number;
  /** Entries the sparse first-layer input can hold; 0 when the sparse path is off. */
  readonly sparseEntries: number;
}

/** The backend options a kind may read while preparing. */
export interface ModelKindOptions {
  readonly maxBatch: number;
  readonly tuning: KernelTuning;
  /** From WebGpuBackendOptions.sparseInput. */
  readonly sparseInput: 'auto' | 'never';
  /** From WebGpuBackendOptions.customKernel; present exactly when `takesKernel`. */
  readonly customKernel?: { readonly wgsl: string; readonly entryPoint?: string };
}

/** A kernel with its pipeline. */
export interface CompiledKernel {
  readonly kernel: Kernel;
  readonly compiled: CompiledProgram;
}

/** A compiled kernel bound to its buffers: ready to dispatch. */
export interface Pass extends CompiledKernel {
  readonly group: GPUBindGroup;
}

/** Compiles a kernel asynchronously (and prints it when the backend's debug option is on). */
export type CompileKernel = (kernel: Kernel) => Promise<CompiledKernel>;
/** The binding of a buffer-plan region by name; throws for a region the plan lacks. */
export type BindRegion = (region: string) => GPUBufferBinding;
/** Writes `data` at the start of a region; throws a RangeError when it does not fit. */
export type UploadRegion = (region: string, data: Float32Array | Uint32Array) => void;
/** Dispatches a pass over the step's rows (its grid comes from `pass.kernel.grid(rows)`). */
export type RunPass = (pass: Pass) => void;

/** How a step fed the first layer (diagnostics and benchmarks). */
export type InputPath = 'sparse' | 'dense';

export interface ModelKind {
  /** True for a kind whose gradient kernel the host supplies (`options.customKernel`). */
  readonly takesKernel: boolean;
  /** Declares the kind's regions of the buffer plan (stage 1). */
  regions(layout: ParameterLayout, options: RegionOptions, add: RegionSink): void;
  /** Checks the model and options and sizes the kind's inputs (stage 2). */
  prepare(layout: ParameterLayout, options: ModelKindOptions): PreparedModel;
}

export interface PreparedModel {
  /** Sparse first-layer entries the buffer plan must hold (`RegionOptions.sparseEntries`). */
  readonly sparseEntries: number;
  compile(compile: CompileKernel): Promise<CompiledModel>;
}

export interface CompiledModel {
  /** Binds every pass to the backend's buffers (stage 3). */
  bind(bind: BindRegion): ModelPasses;
}

export interface ModelPasses {
  /** Writes the step's `rows` samples of `batch` (already validated) into the regions. */
  upload(batch: Batch, rows: number, upload: UploadRegion): InputPath;
  /** Dispatches up to the per-sample losses in `sampleLoss`. */
  encodeLoss(run: RunPass): void;
  /** Dispatches the rest of the gradient into `grad` (may be nothing). */
  encodeGradient(run: RunPass): void;
}

/** Binds a compiled kernel's resources by the kernel's binding names. */
export function bindPass(c: CompiledKernel, resources: Record<string, GPUBufferBinding>): Pass {
  return { kernel: c.kernel, compiled: c.compiled, group: c.compiled.bindGroup(resources) };
}
