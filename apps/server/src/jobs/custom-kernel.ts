/**
 * Custom WGSL models on the server (docs/custom-wgsl.md): the kernel is compiled when the job is
 * loaded, with Dawn (the `webgpu` package) in Node, and refused with the compiler's message and
 * line; it is then run once on a minibatch to check it writes every gradient and loss value.
 * Checkpoints of a custom model are evaluated with the same kernel (its mean per-sample loss on
 * the held-out set), since there is no CPU implementation to evaluate them with.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import {
  CUSTOM_KERNEL_BATCH_BYTES,
  CUSTOM_KERNEL_BINDINGS,
  customKernelBatchInfo,
  customKernelWorkgroups,
  type Dataset,
  type EvaluationResult,
  type ParameterLayout,
} from '@meshgrad/core';
import { JobSpecError, MAX_KERNEL_BYTES, type JobSpec } from './job-spec.ts';
import { InOrder } from './in-order.ts';

/** SwiftShader's Vulkan driver from Debian's chromium package (docs/recipes.md). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
/** Rows per dispatch when evaluating a checkpoint. */
export const EVALUATE_BATCH_ROWS = 1024;

/** A compiled, checked custom kernel on the server's device. */
export interface CustomKernel {
  /** The kernel's source, as volunteers get it. */
  readonly wgsl: string;
  readonly entryPoint: string;
  /** Mean per-sample loss the kernel reports for `params` on `data`. */
  evaluate(params: Float32Array, data: Dataset): Promise<EvaluationResult>;
  destroy(): void;
}

interface WebGpuModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/**
 * HACK: dawn.node tears its instance down when the GPU object is garbage-collected, even while
 * devices made from it live on (shaders/dawn.test-support.ts has the details): keep it, and the
 * device, reachable for the life of the process.
 */
let dawn: Promise<DawnDevice> | null = null;

export interface DawnDevice {
  readonly gpu: GPU;
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
}

/** The process's Dawn device, opened on first use; SwiftShader when there is no GPU. */
async function openDawnDevice(): Promise<DawnDevice> {
  let webgpu: WebGpuModule;
  try {
    webgpu = (await import('webgpu')) as unknown as WebGpuModule;
  } catch (err) {
    throw new Error(
      `the 'webgpu' package (Dawn for Node) cannot be loaded: ${(err as Error).message}`,
      { cause: err },
    );
  }
  // GPUBufferUsage, GPUShaderStage, GPUMapMode are globals in browsers; Dawn exports them.
  Object.assign(globalThis, webgpu.globals);
  let gpu = webgpu.create([]);
  let adapter = await gpu.requestAdapter();
  if (!adapter && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
    // Vulkan's loader reads this when Dawn creates its instance, so a fresh instance sees it.
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    gpu = webgpu.create([]);
    adapter = await gpu.requestAdapter();
  }
  if (!adapter) {
    throw new Error(
      'Dawn found no WebGPU adapter; on a machine without a GPU install chromium and libvulkan1 ' +
        `and set VK_ICD_FILENAMES=${SWIFTSHADER_ICD}`,
    );
  }
  const device = await adapter.requestDevice({ label: 'meshgrad-server' });
  return { gpu, adapter, device };
}

/** The process's Dawn GPU, adapter and device (opened once, on first use). */
export function serverDevice(): Promise<DawnDevice> {
  dawn ??= openDawnDevice().catch((err: unknown) => {
    dawn = null;
    throw err;
  });
  return dawn;
}

/** The spec field the kernel came from, for errors. */
function kernelField(spec: JobSpec): string {
  return spec.model.kind === 'custom' && spec.model.kernel !== undefined
    ? 'model.kernel'
    : 'model.wgsl';
}

/** Reads the kernel source the spec names (a file or inline). */
export async function readKernelSource(spec: JobSpec): Promise<string> {
  const model = spec.model;
  if (model.kind !== 'custom') throw new RangeError('not a custom model');
  if (model.wgsl !== undefined) return model.wgsl;
  const file = model.kernel as string;
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new JobSpecError(
      'model.kernel',
      code === 'ENOENT'
        ? `file not found: ${file}`
        : `cannot read ${file}: ${(err as Error).message}`,
      file,
      { cause: err },
    );
  }
  if (Buffer.byteLength(text) > MAX_KERNEL_BYTES) {
    throw new JobSpecError(
      'model.kernel',
      `${path.basename(file)} is larger than the limit of ${MAX_KERNEL_BYTES} bytes`,
      file,
    );
  }
  return text;
}

/** One line from a Dawn message, which may span several. */
function oneLine(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
}

/**
 * Compiles the kernel of a custom job and checks it against the binding layout and on one
 * minibatch of `train`. Throws a JobSpecError on `model.kernel` (or `model.wgsl`) with the
 * compiler's first error and its line, or what the trial run found.
 */
export async function openCustomKernel(
  spec: JobSpec,
  layout: ParameterLayout,
  initialParams: Float32Array,
  train: Dataset,
): Promise<CustomKernel> {
  const model = spec.model;
  if (model.kind !== 'custom') throw new RangeError('not a custom model');
  const field = kernelField(spec);
  const source = await readKernelSource(spec);
  const name = model.kernel !== undefined ? path.basename(model.kernel) : 'wgsl';
  const file = model.kernel;
  const fail = (reason: string, cause?: unknown): never => {
    throw new JobSpecError(field, reason, file, cause === undefined ? undefined : { cause });
  };

  let device: GPUDevice;
  try {
    device = (await serverDevice()).device;
  } catch (err) {
    return fail(
      `this server cannot compile custom kernels: ${oneLine((err as Error).message)}`,
      err,
    );
  }

  // In an error scope, so a bad kernel is our error to report rather than Dawn's to print.
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: `custom:${name}`, code: source });
  const info = await module.getCompilationInfo();
  const invalidModule = await device.popErrorScope();
  const error = info.messages.find((m) => m.type === 'error');
  if (error) {
    const line = source.split('\n')[error.lineNum - 1]?.trim();
    return fail(
      `${name}:${error.lineNum}:${error.linePos}: ${oneLine(error.message)}${line ? ` (in: ${line.length > 80 ? `${line.slice(0, 77)}...` : line})` : ''}`,
    );
  }
  if (invalidModule) return fail(`${name}: ${oneLine(invalidModule.message)}`);

  const bindGroupLayout = device.createBindGroupLayout({
    label: 'custom-kernel',
    entries: CUSTOM_KERNEL_BINDINGS.map((b) => ({
      binding: b.binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b.type },
    })),
  });
  let pipeline: GPUComputePipeline;
  try {
    pipeline = await device.createComputePipelineAsync({
      label: `custom:${name}`,
      layout: device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] }),
      compute: { module, entryPoint: model.entryPoint },
    });
  } catch (err) {
    return fail(
      `${name} does not fit the custom kernel binding layout (docs/custom-wgsl.md): ${oneLine((err as Error).message)}`,
      err,
    );
  }

  const runner = new KernelRunner(device, pipeline, bindGroupLayout, layout, name);
  try {
    const rows = Math.min(spec.batchSize, train.count);
    const x = train.x.subarray(0, rows * train.features);
    const labels = train.labels ? train.labels.subarray(0, rows) : null;
    const { grad, loss } = await runner.run(initialParams, x, labels, rows, true);
    const badGrad = grad.findIndex((v) => !Number.isFinite(v));
    if (badGrad >= 0) {
      fail(
        `after one run on the first minibatch, grad[${badGrad}] is ${grad[badGrad]}: the kernel must write a finite value to every element of grad (${layout.size} parameters; is it @workgroup_size(64)?)`,
      );
    }
    const badLoss = loss.findIndex((v) => !Number.isFinite(v));
    if (badLoss >= 0) {
      fail(
        `after one run on the first minibatch, loss[${badLoss}] is ${loss[badLoss]}: the kernel must write a finite loss for every sample of the batch (${rows} samples)`,
      );
    }
  } catch (err) {
    runner.destroy();
    if (err instanceof JobSpecError) throw err;
    return fail(`${name} failed its trial run: ${oneLine((err as Error).message)}`, err);
  }

  return {
    wgsl: source,
    entryPoint: model.entryPoint,
    async evaluate(params, data) {
      let sum = 0;
      for (let start = 0; start < data.count; start += EVALUATE_BATCH_ROWS) {
        const rows = Math.min(EVALUATE_BATCH_ROWS, data.count - start);
        const x = data.x.subarray(start * data.features, (start + rows) * data.features);
        const labels = data.labels ? data.labels.subarray(start, start + rows) : null;
        const { loss } = await runner.run(params, x, labels, rows, false);
        for (const v of loss) sum += v;
      }
      return { loss: sum / data.count, count: data.count };
    },
    destroy: () => runner.destroy(),
  };
}

/** The buffers and one dispatch of a custom kernel, sized on demand. */
class KernelRunner {
  private buffers: Record<string, GPUBuffer> = {};
  private capacityRows = 0;
  /** Runs share buffers, so they take turns. */
  private readonly turns = new InOrder();

  constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    private readonly bindGroupLayout: GPUBindGroupLayout,
    private readonly layout: ParameterLayout,
    private readonly name: string,
  ) {}

  private ensure(rows: number, features: number): void {
    if (rows <= this.capacityRows) return;
    this.destroy();
    const d = this.device;
    const u = GPUBufferUsage;
    const bytes = (n: number) => Math.max(16, Math.ceil((n * 4) / 16) * 16);
    const p = this.layout.size;
    this.buffers = {
      batch: d.createBuffer({ size: CUSTOM_KERNEL_BATCH_BYTES, usage: u.UNIFORM | u.COPY_DST }),
      params: d.createBuffer({ size: bytes(p), usage: u.STORAGE | u.COPY_DST }),
      grad: d.createBuffer({ size: bytes(p), usage: u.STORAGE | u.COPY_SRC | u.COPY_DST }),
      x: d.createBuffer({ size: bytes(rows * features), usage: u.STORAGE | u.COPY_DST }),
      labels: d.createBuffer({ size: bytes(rows), usage: u.STORAGE | u.COPY_DST }),
      loss: d.createBuffer({ size: bytes(rows), usage: u.STORAGE | u.COPY_SRC | u.COPY_DST }),
      readGrad: d.createBuffer({ size: bytes(p), usage: u.MAP_READ | u.COPY_DST }),
      readLoss: d.createBuffer({ size: bytes(rows), usage: u.MAP_READ | u.COPY_DST }),
    };
    this.capacityRows = rows;
  }

  /**
   * One dispatch on `rows` samples. With `poison`, grad and loss are filled with NaN first, so
   * values the kernel does not write show up as NaN.
   */
  run(
    params: Float32Array,
    x: Float32Array,
    labels: Uint32Array | null,
    rows: number,
    poison: boolean,
  ): Promise<{ grad: Float32Array; loss: Float32Array }> {
    return this.turns.run(async () => {
      const features = x.length / rows;
      this.ensure(rows, features);
      const b = this.buffers as Record<
        'batch' | 'params' | 'grad' | 'x' | 'labels' | 'loss' | 'readGrad' | 'readLoss',
        GPUBuffer
      >;
      const q = this.device.queue;
      const info = customKernelBatchInfo(this.layout, rows);
      q.writeBuffer(b.batch, 0, info.buffer, info.byteOffset, info.byteLength);
      q.writeBuffer(b.params, 0, params.buffer, params.byteOffset, params.byteLength);
      q.writeBuffer(b.x, 0, x.buffer, x.byteOffset, x.byteLength);
      const l = labels ?? new Uint32Array(rows);
      q.writeBuffer(b.labels, 0, l.buffer, l.byteOffset, rows * 4);
      if (poison) {
        const nan = new Float32Array(Math.max(this.layout.size, rows)).fill(Number.NaN);
        q.writeBuffer(b.grad, 0, nan.buffer, 0, this.layout.size * 4);
        q.writeBuffer(b.loss, 0, nan.buffer, 0, rows * 4);
      }
      const group = this.device.createBindGroup({
        layout: this.bindGroupLayout,
        entries: CUSTOM_KERNEL_BINDINGS.map((binding) => ({
          binding: binding.binding,
          resource: { buffer: b[binding.name] },
        })),
      });
      this.device.pushErrorScope('validation');
      const encoder = this.device.createCommandEncoder({ label: `custom:${this.name}` });
      const pass = encoder.beginComputePass();
      pass.setPipeline(this.pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(customKernelWorkgroups(this.layout, rows));
      pass.end();
      encoder.copyBufferToBuffer(b.grad, 0, b.readGrad, 0, this.layout.size * 4);
      encoder.copyBufferToBuffer(b.loss, 0, b.readLoss, 0, rows * 4);
      q.submit([encoder.finish()]);
      const invalid = await this.device.popErrorScope();
      if (invalid) throw new Error(invalid.message);
      await Promise.all([
        b.readGrad.mapAsync(GPUMapMode.READ),
        b.readLoss.mapAsync(GPUMapMode.READ),
      ]);
      const grad = new Float32Array(b.readGrad.getMappedRange(0, this.layout.size * 4).slice(0));
      const loss = new Float32Array(b.readLoss.getMappedRange(0, rows * 4).slice(0));
      b.readGrad.unmap();
      b.readLoss.unmap();
      return { grad, loss };
    });
  }

  destroy(): void {
    for (const buffer of Object.values(this.buffers)) buffer.destroy();
    this.buffers = {};
    this.capacityRows = 0;
  }
}
