/**
 * `Backend` on WebGPU (DESIGN §2, §3): parameters, gradient and training state live on the
 * device; a step is one queue submission (uploads via writeBuffer, then one command buffer
 * holding every pass) and reads nothing back. Losses land in a ring buffer on the device and
 * acceptance counts in counters, both fetched in batches by `drainStats`.
 */
import type {
  Backend,
  BackendStats,
  Batch,
  BlockRead,
  EncodedBlock,
  Encoding,
  MergeRule,
  ParameterLayout,
  ReceivedBlock,
} from '@meshgrad/core';
import {
  blockRange,
  checkMergeRule,
  hasOuterMomentum,
  MAX_PEERS_PER_BLOCK,
  PARZEN_MERGE_RULE,
  validateBatch,
} from '@meshgrad/core';
import { DeviceMonitor, WebGpuError } from '../gpu/errors.ts';
import type { CompiledProgram } from '../gpu/program.ts';
import { compileProgram, compileProgramNow, programListing } from '../gpu/program.ts';
import type { Kernel } from '../kernels/programs.ts';
import {
  HARDWARE_TUNING,
  lossReduceKernel,
  outerMomentumKernel,
  sgdParzenKernel,
  SOFTWARE_TUNING,
  tuningFor,
} from '../kernels/programs.ts';
import { encodedBlockAt, encodedByteSize, GpuBlockCodec } from './block-codec.ts';
import type { BufferSet } from './buffers.ts';
import {
  bindRegion,
  blockStride,
  BufferPlan,
  createBuffers,
  createPlannedBuffer,
  paddedParameterCount,
  regionBuffer,
} from './buffers.ts';
import type { CompiledKernel, ModelPasses, Pass } from './model-kind.ts';
import { bindPass } from './model-kind.ts';
import { modelKindOf } from './models/registry.ts';
import { copyMapped, StagingPool } from './staging.ts';
import { STEP_PARAMS } from './uniforms.ts';

/** Default largest minibatch. */
export const DEFAULT_MAX_BATCH = 256;
/**
 * Default mailbox capacity in blocks: room for core's Mailbox at its fullest
 * (MAX_PEERS_PER_BLOCK per block) up to this many; it grows when one step brings more.
 */
export const DEFAULT_MAILBOX_SLOTS = 32;
/** Default loss ring length in steps. A full ring is copied out without waiting, never lost. */
export const DEFAULT_LOSS_RING = 1024;
export interface WebGpuBackendOptions {
  /** Largest minibatch `step` accepts (default `DEFAULT_MAX_BATCH`). */
  readonly maxBatch?: number;
  /**
   * Initial mailbox capacity in blocks (default `DEFAULT_MAILBOX_SLOTS`, or fewer when the model
   * has few blocks; grows on demand).
   */
  readonly mailboxSlots?: number;
  /** Loss ring length in steps (default `DEFAULT_LOSS_RING`). */
  readonly lossRing?: number;
  /**
   * Print the WGSL of every program this backend uses, once at create, with `console.log` or the
   * given function (default off). `setShaderDebug` prints every program compiled anywhere.
   */
  readonly debug?: boolean | ((text: string) => void);
  /**
   * First-layer sparse path: `auto` uses it for batches with at most `SPARSE_MAX_DENSITY` (models/dense.ts)
   * nonzero inputs, `never` always runs the dense kernels (default `auto`).
   */
  readonly sparseInput?: 'auto' | 'never';
  /** Label prefix of the GPU objects (default `meshgrad`). */
  readonly label?: string;
  /**
   * Kernel shapes: `software` for SwiftShader-like adapters, `hardware` for GPUs (default
   * `auto`: from the device's adapter info).
   */
  readonly tuning?: 'auto' | 'software' | 'hardware';
  /**
   * The gradient kernel of a custom model (`layout.spec.kind === 'custom'`; JobInfo.kernel),
   * required for one and refused otherwise. See docs/custom-wgsl.md.
   */
  readonly customKernel?: { readonly wgsl: string; readonly entryPoint?: string };
  /** How a step merges peer blocks (default `PARZEN_MERGE_RULE`, as `CpuBackend`). */
  readonly merge?: MergeRule;
}

/** A `readBlocksAfterStep` call waiting for the next command buffer. */
interface PendingRead {
  readonly reads: readonly BlockRead[];
  readonly resolve: (blocks: (EncodedBlock | null)[]) => void;
  readonly reject: (err: unknown) => void;
}

/** A copy of loss-ring slots on its way back. */
interface LossChunk {
  readonly staging: GPUBuffer;
  readonly count: number;
  readonly mapped: Promise<void>;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  /** Largest minibatch `step` accepts. */
  readonly maxBatch: number;
  /** Loss ring length in steps. */
  readonly lossRing: number;
  private readonly monitor: DeviceMonitor;
  private readonly staging: StagingPool;
  private readonly stepBytes: DataView<ArrayBuffer> = new DataView(
    new ArrayBuffer(STEP_PARAMS.byteSize),
  );
  private mailboxBlocks: Uint32Array;
  /** Steps taken. */
  private steps = 0;
  /** Steps whose losses were copied out of the ring (to a chunk or a drain). */
  private flushed = 0;
  private chunks: LossChunk[] = [];
  private pendingReads: PendingRead[] = [];
  private destroyed = false;
  /** How the last step fed the first layer (diagnostics and benchmarks); null before any step. */
  lastInputPath: 'sparse' | 'dense' | null = null;
  /** Steps since the last outer-momentum anchor. */
  private sinceAnchor = 0;

  private constructor(
    readonly device: GPUDevice,
    readonly layout: ParameterLayout,
    private plan: BufferPlan,
    private readonly buffers: BufferSet,
    private readonly model: ModelPasses,
    private readonly lossReduce: Pass,
    private update: Pass,
    private readonly codec: GpuBlockCodec,
    readonly label: string,
    readonly merge: MergeRule,
    private readonly momentum: Pass | null,
  ) {
    this.monitor = DeviceMonitor.of(device);
    this.maxBatch = plan.options.maxBatch;
    this.lossRing = plan.options.lossRing;
    this.staging = new StagingPool(device, label);
    this.mailboxBlocks = new Uint32Array(plan.options.mailboxSlots);
  }

  /**
   * Creates the backend on `device` with `params` (length `layout.size`) as the starting point.
   * Compiles every pipeline here (asynchronously), so `step` never waits for a compiler.
   * Throws a RangeError for bad options and a `WebGpuError` when the device fails.
   */
  static async create(
    device: GPUDevice,
    layout: ParameterLayout,
    params: Float32Array,
    options: WebGpuBackendOptions = {},
  ): Promise<WebGpuBackend> {
    const monitor = DeviceMonitor.of(device);
    monitor.check();
    if (params.length !== layout.size) {
      throw new RangeError(
        `params has ${params.length} floats, expected layout.size = ${layout.size}`,
      );
    }
    const maxBatch = positiveInteger('maxBatch', options.maxBatch ?? DEFAULT_MAX_BATCH);
    const mailboxSlots = positiveInteger(
      'mailboxSlots',
      options.mailboxSlots ??
        Math.min(DEFAULT_MAILBOX_SLOTS, MAX_PEERS_PER_BLOCK * layout.blockCount),
    );
    const lossRing = positiveInteger('lossRing', options.lossRing ?? DEFAULT_LOSS_RING);
    const merge = checkMergeRule(options.merge ?? PARZEN_MERGE_RULE);
    const outerMomentum = hasOuterMomentum(merge);
    const limits = device.limits;
    if (layout.blockCount > limits.maxComputeWorkgroupsPerDimension) {
      throw new RangeError(
        `${layout.blockCount} blocks exceed the device's ${limits.maxComputeWorkgroupsPerDimension} workgroups per dispatch; use larger blocks`,
      );
    }
    const debug =
      // Printing is what the debug option is for.
      // eslint-disable-next-line no-console
      options.debug === true ? (text: string) => console.log(text) : options.debug || null;
    const label = options.label ?? 'meshgrad';
    const tuning =
      options.tuning === 'software'
        ? SOFTWARE_TUNING
        : options.tuning === 'hardware'
          ? HARDWARE_TUNING
          : tuningFor(device);
    const kind = modelKindOf(layout.spec);
    if (kind.takesKernel !== (options.customKernel !== undefined)) {
      throw new RangeError(
        kind.takesKernel
          ? `a ${layout.spec.kind} model needs options.customKernel (its WGSL gradient kernel)`
          : `options.customKernel is for custom models, not ${layout.spec.kind}`,
      );
    }
    const prepared = kind.prepare(layout, {
      maxBatch,
      tuning,
      sparseInput: options.sparseInput ?? 'auto',
      ...(options.customKernel && { customKernel: options.customKernel }),
    });
    const plan = new BufferPlan(layout, {
      maxBatch,
      mailboxSlots,
      lossRing,
      alignment: Math.max(
        limits.minStorageBufferOffsetAlignment,
        limits.minUniformBufferOffsetAlignment,
      ),
      sparseEntries: prepared.sparseEntries,
      outerMomentum,
    });
    for (const [name, { size }] of plan.buffers) {
      if (size > limits.maxStorageBufferBindingSize || size > limits.maxBufferSize) {
        throw new RangeError(
          `the ${name} buffer needs ${size} bytes, more than this device allows; lower maxBatch or lossRing`,
        );
      }
    }

    // Compile everything first (in parallel), then allocate.
    const compile = async (kernel: Kernel): Promise<CompiledKernel> => {
      debug?.(`// ${label}\n${programListing(kernel.program)}`);
      return { kernel, compiled: await compileProgram(device, kernel.program) };
    };
    const modelP = prepared.compile(compile);
    const lossReduceP = compile(lossReduceKernel());
    const updateP = compile(
      sgdParzenKernel(
        {
          size: layout.size,
          blockSize: layout.blockSize,
          blockCount: layout.blockCount,
          slots: mailboxSlots,
          slotStride: blockStride(layout),
        },
        merge,
      ),
    );
    const momentumP = outerMomentum
      ? compile(outerMomentumKernel(paddedParameterCount(layout), Math.fround(merge.momentum)))
      : Promise.resolve(null);
    const codecP = GpuBlockCodec.create(device, {
      maxValues: Math.min(layout.blockSize, layout.size),
      label: `${label}:codec`,
    });
    let compiled;
    try {
      compiled = await Promise.all([modelP, lossReduceP, updateP, codecP, momentumP]);
    } catch (err) {
      void codecP.then(
        (codec) => codec.destroy(),
        () => undefined,
      );
      // A compile that failed because the device went away reports the device's failure.
      throw monitor.error ?? err;
    }
    const [model, lossReduceC, updateC, codec, momentumC] = compiled;

    device.pushErrorScope('out-of-memory');
    const buffers = createBuffers(device, plan, label);
    const oom = await device.popErrorScope();
    if (oom) {
      for (const b of buffers.values()) b.destroy();
      codec.destroy();
      throw new WebGpuError(
        'ERR_OUT_OF_MEMORY',
        `cannot allocate the backend's buffers: ${oom.message}`,
      );
    }
    device.queue.writeBuffer(
      regionBuffer(plan, buffers, 'params'),
      0,
      params.buffer,
      params.byteOffset,
      params.byteLength,
    );
    if (outerMomentum) {
      // The anchor starts at the initial state; the displacement buffer is created zeroed.
      device.queue.writeBuffer(
        regionBuffer(plan, buffers, 'anchor'),
        0,
        params.buffer,
        params.byteOffset,
        params.byteLength,
      );
    }

    const bind = (name: string) => bindRegion(plan, buffers, name);
    const lossReduce = bindPass(lossReduceC, {
      step: bind('step'),
      sampleLoss: bind('sampleLoss'),
      lossRing: bind('lossRing'),
    });
    const update = bindPass(updateC, WebGpuBackend.updateResources(plan, buffers));
    const momentum =
      momentumC &&
      bindPass(momentumC, {
        params: bind('params'),
        anchor: bind('anchor'),
        displacement: bind('displacement'),
      });
    return new WebGpuBackend(
      device,
      layout,
      plan,
      buffers,
      model.bind(bind),
      lossReduce,
      update,
      codec,
      label,
      merge,
      momentum,
    );
  }

  private static updateResources(
    plan: BufferPlan,
    buffers: BufferSet,
  ): Record<string, GPUBufferBinding> {
    const bind = (name: string) => bindRegion(plan, buffers, name);
    return {
      step: bind('step'),
      params: bind('params'),
      grad: bind('grad'),
      mailboxValues: bind('mailboxValues'),
      mailboxBlocks: bind('mailboxBlocks'),
      counters: bind('counters'),
    };
  }

  private get paramsBuffer(): GPUBuffer {
    return regionBuffer(this.plan, this.buffers, 'params');
  }

  /** Throws when the backend is destroyed or its device failed. */
  private assertUsable(): void {
    if (this.destroyed)
      throw new WebGpuError('ERR_DESTROYED', `${this.label} backend was destroyed`);
    this.monitor.check();
  }

  /** A readback's promise, reporting device failure or destruction as `WebGpuError`. */
  private guarded<T>(work: Promise<T>, what: string): Promise<T> {
    return this.monitor.guard(work, (err) =>
      this.destroyed
        ? new WebGpuError('ERR_DESTROYED', `${this.label} backend was destroyed during ${what}`, {
            cause: err,
          })
        : new WebGpuError(
            'ERR_DEVICE_LOST',
            `${what} failed: ${err instanceof Error ? err.message : String(err)}`,
            {
              cause: err,
            },
          ),
    );
  }

  /** The update kernel for a mailbox of `slots` blocks. */
  private updateKernel(slots: number): Kernel {
    return sgdParzenKernel(
      {
        size: this.layout.size,
        blockSize: this.layout.blockSize,
        blockCount: this.layout.blockCount,
        slots,
        slotStride: blockStride(this.layout),
      },
      this.merge,
    );
  }

  /** Swaps in a mailbox of `plan`'s size and the update kernel compiled for it. */
  private installMailbox(plan: BufferPlan, kernel: Kernel, compiled: CompiledProgram): void {
    const name = plan.region('mailboxValues').buffer;
    const mailbox = createPlannedBuffer(this.device, name, plan.buffers.get(name)!, this.label);
    // A buffer still used by submitted work is freed only once that work is done.
    this.buffers.get(name)?.destroy();
    this.buffers.set(name, mailbox);
    this.plan = plan;
    this.update = bindPass({ kernel, compiled }, WebGpuBackend.updateResources(plan, this.buffers));
    this.mailboxBlocks = new Uint32Array(plan.options.mailboxSlots);
  }

  private grownPlan(blocks: number): BufferPlan {
    const slots = Math.max(blocks, 2 * this.plan.options.mailboxSlots);
    return new BufferPlan(this.layout, { ...this.plan.options, mailboxSlots: slots });
  }

  /**
   * Makes room for `blocks` received blocks per step ahead of time, compiling asynchronously.
   * Optional: a step that brings more blocks than the mailbox holds grows it itself, but then
   * compiles the update kernel synchronously, which can stall for a moment.
   */
  async reserveMailbox(blocks: number): Promise<void> {
    this.assertUsable();
    if (blocks <= this.mailboxSlots) return;
    const plan = this.grownPlan(blocks);
    const kernel = this.updateKernel(plan.options.mailboxSlots);
    const compiled = await compileProgram(this.device, kernel.program);
    this.assertUsable();
    if (blocks > this.mailboxSlots) this.installMailbox(plan, kernel, compiled);
  }

  /** Mailbox capacity in blocks. */
  get mailboxSlots(): number {
    return this.plan.options.mailboxSlots;
  }

  step(batch: Batch, learningRate: number, received: readonly ReceivedBlock[] = []): void {
    this.assertUsable();
    if (!Number.isFinite(learningRate) || learningRate < 0) {
      throw new RangeError(`learningRate must be finite and non-negative, got ${learningRate}`);
    }
    validateBatch(this.layout, batch);
    if (batch.size > this.maxBatch) {
      throw new RangeError(`batch.size ${batch.size} exceeds maxBatch ${this.maxBatch}`);
    }
    for (let r = 0; r < received.length; r++) {
      const { block, values } = received[r]!;
      const { start, end } = blockRange(this.layout, block);
      if (values.length !== end - start) {
        throw new RangeError(
          `received[${r}] for block ${block} has ${values.length} values, expected ${end - start}`,
        );
      }
    }
    if (received.length > this.mailboxSlots) {
      const plan = this.grownPlan(received.length);
      const kernel = this.updateKernel(plan.options.mailboxSlots);
      this.installMailbox(plan, kernel, compileProgramNow(this.device, kernel.program));
    }

    const { device, plan, buffers } = this;
    const queue = device.queue;
    const rows = batch.size;
    const slot = this.steps % this.lossRing;

    // Uploads: the model's inputs, the mailbox, the step parameters.
    this.lastInputPath = this.model.upload(batch, rows, (region, data) =>
      this.upload(region, data),
    );
    if (received.length > 0) {
      const values = plan.region('mailboxValues');
      const stride = blockStride(this.layout) * 4;
      for (let r = 0; r < received.length; r++) {
        const v = received[r]!.values;
        queue.writeBuffer(
          regionBuffer(plan, buffers, 'mailboxValues'),
          values.offset + r * stride,
          v.buffer,
          v.byteOffset,
          v.byteLength,
        );
        this.mailboxBlocks[r] = received[r]!.block;
      }
      this.upload('mailboxBlocks', this.mailboxBlocks.subarray(0, received.length));
    }
    STEP_PARAMS.write(this.stepBytes, {
      batch: rows,
      lossSlot: slot,
      slotCount: received.length,
      learningRate: Math.fround(learningRate),
    });
    // The ArrayBuffer, not the DataView: dawn.node's writeBuffer rejects DataViews.
    queue.writeBuffer(
      regionBuffer(plan, buffers, 'step'),
      plan.region('step').offset,
      this.stepBytes.buffer,
    );

    // One command buffer, one compute pass: dispatches in a pass see each other's writes.
    const encoder = device.createCommandEncoder({ label: `${this.label}:step` });
    const pass = encoder.beginComputePass({ label: `${this.label}:step` });
    const run = (p: Pass) => {
      const [x, y] = p.kernel.grid(rows);
      p.compiled.dispatch(pass, p.group, x, y);
    };
    this.model.encodeLoss(run);
    run(this.lossReduce);
    this.model.encodeGradient(run);
    run(this.update);
    if (this.momentum && ++this.sinceAnchor >= this.merge.momentumPeriod) {
      this.sinceAnchor = 0;
      run(this.momentum);
    }
    pass.end();
    const mapReads = this.encodeReads(encoder);

    this.steps++;
    // The ring is about to wrap: copy what is not yet out, without waiting for it.
    let chunk: { staging: GPUBuffer; count: number } | null = null;
    if (slot === this.lossRing - 1) {
      const count = this.steps - this.flushed;
      const staging = this.staging.acquire(count * 4);
      const ring = plan.region('lossRing');
      encoder.copyBufferToBuffer(
        regionBuffer(plan, buffers, 'lossRing'),
        ring.offset + (this.flushed % this.lossRing) * 4,
        staging,
        0,
        count * 4,
      );
      chunk = { staging, count };
      this.flushed = this.steps;
    }
    queue.submit([encoder.finish()]);
    mapReads?.();
    if (chunk) {
      const mapped = chunk.staging.mapAsync(GPUMapMode.READ);
      // Awaited in drainStats; until then a rejection must not surface as unhandled.
      mapped.catch(() => undefined);
      this.chunks.push({ ...chunk, mapped });
    }
  }

  private upload(region: string, data: Float32Array | Uint32Array): void {
    const r = this.plan.region(region);
    if (data.byteLength > r.size) {
      throw new RangeError(
        `${region}: ${data.byteLength} bytes do not fit its ${r.size}-byte region`,
      );
    }
    this.device.queue.writeBuffer(
      regionBuffer(this.plan, this.buffers, region),
      r.offset,
      data.buffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  async drainStats(): Promise<BackendStats> {
    this.assertUsable();
    const { device, plan, buffers } = this;
    const count = this.steps - this.flushed;
    const counters = plan.region('counters');
    const ring = plan.region('lossRing');
    const staging = this.staging.acquire(16 + count * 4);
    const encoder = device.createCommandEncoder({ label: `${this.label}:drain` });
    const countersBuffer = regionBuffer(plan, buffers, 'counters');
    encoder.copyBufferToBuffer(countersBuffer, counters.offset, staging, 0, 16);
    if (count > 0) {
      encoder.copyBufferToBuffer(
        regionBuffer(plan, buffers, 'lossRing'),
        ring.offset + (this.flushed % this.lossRing) * 4,
        staging,
        16,
        count * 4,
      );
    }
    encoder.clearBuffer(countersBuffer, counters.offset, 16);
    const mapReads = this.encodeReads(encoder);
    device.queue.submit([encoder.finish()]);
    mapReads?.();
    this.flushed = this.steps;
    const chunks = this.chunks;
    this.chunks = [];
    const mapped = staging.mapAsync(GPUMapMode.READ);
    try {
      await this.guarded(Promise.all([...chunks.map((c) => c.mapped), mapped]), 'drainStats');
      const losses: number[] = [];
      for (const c of chunks) {
        for (const v of new Float32Array(copyMapped(c.staging, c.count * 4))) losses.push(v);
      }
      const bytes = copyMapped(staging, 16 + count * 4);
      const head = new Uint32Array(bytes, 0, 2);
      for (const v of new Float32Array(bytes, 16, count)) losses.push(v);
      return { losses, offered: head[0]!, accepted: head[1]! };
    } finally {
      for (const c of chunks) this.staging.release(c.staging);
      this.staging.release(staging);
    }
  }

  /** Copies `bytes` of the parameter buffer from byte `offset` and returns them. */
  private async readParams(offset: number, bytes: number, what: string): Promise<ArrayBuffer> {
    this.assertUsable();
    const staging = this.staging.acquire(bytes);
    const encoder = this.device.createCommandEncoder({ label: `${this.label}:${what}` });
    encoder.copyBufferToBuffer(this.paramsBuffer, offset, staging, 0, bytes);
    this.device.queue.submit([encoder.finish()]);
    try {
      await this.guarded(staging.mapAsync(GPUMapMode.READ), what);
      return copyMapped(staging, bytes);
    } finally {
      this.staging.release(staging);
    }
  }

  async readParameters(): Promise<Float32Array> {
    return new Float32Array(await this.readParams(0, this.layout.size * 4, 'readParameters'));
  }

  writeParameters(params: Float32Array): void {
    this.assertUsable();
    if (params.length !== this.layout.size) {
      throw new RangeError(
        `params has ${params.length} floats, expected layout.size = ${this.layout.size}`,
      );
    }
    this.device.queue.writeBuffer(
      this.paramsBuffer,
      0,
      params.buffer,
      params.byteOffset,
      params.byteLength,
    );
    if (this.momentum) {
      // Outer momentum restarts from the new state, as in CpuBackend.
      const { plan, buffers } = this;
      this.device.queue.writeBuffer(
        regionBuffer(plan, buffers, 'anchor'),
        0,
        params.buffer,
        params.byteOffset,
        params.byteLength,
      );
      const d = plan.region('displacement');
      this.device.queue.writeBuffer(
        regionBuffer(plan, buffers, 'displacement'),
        d.offset,
        new Float32Array(d.size / 4),
      );
      this.sinceAnchor = 0;
    }
  }

  async readBlock(k: number): Promise<Float32Array> {
    const { start, end } = blockRange(this.layout, k);
    return new Float32Array(await this.readParams(start * 4, (end - start) * 4, 'readBlock'));
  }

  /**
   * Block k encoded on the device (float16, or int8 with its scale; float32 as `readBlock`), so
   * only the encoded bytes come back. Same rules as core's codec/encoding.ts.
   */
  async readBlockEncoded(k: number, encoding: Encoding): Promise<EncodedBlock> {
    this.assertUsable();
    const { start, end } = blockRange(this.layout, k);
    if (encoding === 'f32') return { encoding, values: await this.readBlock(k) };
    return this.codec.encodeBuffer(this.paramsBuffer, start, end - start, encoding);
  }

  readBlocksAfterStep(reads: readonly BlockRead[]): Promise<(EncodedBlock | null)[]> {
    this.assertUsable();
    for (const { block } of reads) blockRange(this.layout, block);
    return new Promise((resolve, reject) => this.pendingReads.push({ reads, resolve, reject }));
  }

  /**
   * Records the waiting block reads into `encoder` (after its compute pass): f32 blocks copied,
   * f16 and int8 encoded on the device, all into one staging buffer. Returns what to call right
   * after the submit: one map for all of them, settling their promises when it resolves.
   */
  private encodeReads(encoder: GPUCommandEncoder): (() => void) | null {
    const pending = this.pendingReads;
    if (pending.length === 0) return null;
    this.pendingReads = [];
    let total = 0;
    for (const { reads } of pending) {
      for (const { block, encoding } of reads) {
        const { start, end } = blockRange(this.layout, block);
        total += encodedByteSize(end - start, encoding);
      }
    }
    const staging = this.staging.acquire(total);
    const params = this.paramsBuffer;
    let at = 0;
    const offsets = pending.map(({ reads }) =>
      reads.map(({ block, encoding }) => {
        const { start, end } = blockRange(this.layout, block);
        const offset = at;
        at +=
          encoding === 'f32'
            ? (encoder.copyBufferToBuffer(params, start * 4, staging, at, (end - start) * 4),
              (end - start) * 4)
            : this.codec.encodeInto(encoder, params, start, end - start, encoding, staging, at);
        return offset;
      }),
    );
    return () => {
      this.guarded(staging.mapAsync(GPUMapMode.READ), 'readBlocksAfterStep').then(
        () => {
          const bytes = copyMapped(staging, total);
          this.staging.release(staging);
          pending.forEach(({ reads, resolve }, p) =>
            resolve(
              reads.map(({ block, encoding }, i) => {
                const { start, end } = blockRange(this.layout, block);
                return encodedBlockAt(bytes, offsets[p]![i]!, end - start, encoding);
              }),
            ),
          );
        },
        (err: unknown) => {
          this.staging.release(staging);
          for (const { reject } of pending) reject(err);
        },
      );
    };
  }

  /** Releases every buffer of the backend (not the device, which its owner destroys). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.buffers.values()) b.destroy();
    this.staging.destroy();
    this.codec.destroy();
    this.chunks = [];
    const destroyed = new WebGpuError('ERR_DESTROYED', `${this.label} backend was destroyed`);
    for (const { reject } of this.pendingReads) reject(destroyed);
    this.pendingReads = [];
  }
}
