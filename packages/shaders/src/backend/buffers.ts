/**
 * The one schema of the WebGPU backend's buffers: which buffers exist, which named regions they
 * hold at which byte offsets, and the layout of the uniform structs. Bind groups, uploads,
 * readbacks and the WGSL struct declarations are all derived from it; no offset is written by
 * hand anywhere else.
 */
import type { ParameterLayout } from '@meshgrad/core';
import { CUSTOM_KERNEL_BATCH_BYTES, denseWidths, inputSize } from '@meshgrad/core';

// ---------------------------------------------------------------------------------------------
// Uniform structs

type ScalarType = 'u32' | 'f32';

/** A uniform struct of 4-byte scalars: its WGSL declaration and a writer share one field list. */
export class UniformStruct<Name extends string> {
  /** Size in bytes, a multiple of 16 as uniform buffers require. */
  readonly byteSize: number;

  constructor(
    readonly wgslName: string,
    readonly fields: readonly { readonly name: Name; readonly type: ScalarType }[],
  ) {
    this.byteSize = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  }

  /** `struct Name { field: type, ... }` for a WGSL preamble. */
  wgsl(): string {
    const body = this.fields.map((f) => `  ${f.name}: ${f.type},`).join('\n');
    return `struct ${this.wgslName} {\n${body}\n}\n`;
  }

  /** Writes `values` into `view` at `byteOffset` in the struct's layout. */
  write(view: DataView, values: Readonly<Record<Name, number>>, byteOffset = 0): void {
    this.fields.forEach((f, i) => {
      const at = byteOffset + 4 * i;
      if (f.type === 'u32') view.setUint32(at, values[f.name], true);
      else view.setFloat32(at, values[f.name], true);
    });
  }
}

/** Per-step parameters, written once per step before its command buffer. */
export const STEP_PARAMS = new UniformStruct('StepParams', [
  /** Samples in this step's minibatch. */
  { name: 'batch', type: 'u32' },
  /** Loss ring slot this step's mean loss goes to. */
  { name: 'lossSlot', type: 'u32' },
  /** Mailbox slots in use this step. */
  { name: 'slotCount', type: 'u32' },
  /** η, as float32. */
  { name: 'learningRate', type: 'f32' },
] as const);

/** Parameters of one codec call. */
export const CODEC_PARAMS = new UniformStruct('CodecParams', [
  /** First value of the block in the source buffer (in values, not bytes). */
  { name: 'offset', type: 'u32' },
  /** Values in the block. */
  { name: 'count', type: 'u32' },
] as const);

// ---------------------------------------------------------------------------------------------
// Buffers and regions

/**
 * What a buffer is for; sets its usage flags. A kernel may not bind one buffer both writable and
 * read-only in the same dispatch, even at disjoint ranges, so every activation-like region (read
 * by one kernel, written by another in the same pass) gets a `work` buffer of its own.
 */
export type BufferRole = 'params' | 'grad' | 'work' | 'stats' | 'mailbox' | 'uniforms';

/** Usage flags of each role (read at call time: the GPUBufferUsage global exists only then). */
export function bufferUsage(role: BufferRole): number {
  const u = GPUBufferUsage;
  switch (role) {
    case 'params':
    case 'grad':
    case 'work':
      return u.STORAGE | u.COPY_SRC | u.COPY_DST;
    case 'stats':
      // COPY_DST: drainStats clears the counters with clearBuffer.
      return u.STORAGE | u.COPY_SRC | u.COPY_DST;
    case 'mailbox':
      return u.STORAGE | u.COPY_DST;
    case 'uniforms':
      return u.UNIFORM | u.COPY_DST;
  }
}

export interface Region {
  /** Name of the buffer holding the region. */
  readonly buffer: string;
  /** Byte offset in its buffer, a multiple of the device's buffer offset alignment. */
  readonly offset: number;
  /** Bytes, a multiple of 16 (the widest element type bound, vec4<f32>). */
  readonly size: number;
}

/** One buffer of the plan. */
export interface BufferSpec {
  readonly role: BufferRole;
  /** Bytes. */
  size: number;
}

/** Options that size the buffers. */
export interface BufferPlanOptions {
  readonly maxBatch: number;
  readonly mailboxSlots: number;
  readonly lossRing: number;
  /** `minStorageBufferOffsetAlignment` (and `minUniformBufferOffsetAlignment`) of the device. */
  readonly alignment: number;
  /** Entries the sparse (CSR/CSC) input of the first layer can hold; 0 disables it. */
  readonly sparseEntries: number;
}

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

/** Floats of a block slot in the mailbox: the block size rounded up to a whole vec4. */
export function blockStride(layout: ParameterLayout): number {
  return roundUp(layout.blockSize, 4);
}

/** Floats of the parameter and gradient buffers: `layout.size` rounded up to a whole vec4. */
export function paddedParameterCount(layout: ParameterLayout): number {
  return roundUp(layout.size, 4);
}

/** Every buffer's size and every named region, for one model and set of options. */
export class BufferPlan {
  readonly buffers = new Map<string, BufferSpec>();
  private readonly regions = new Map<string, Region>();

  constructor(
    readonly layout: ParameterLayout,
    readonly options: BufferPlanOptions,
  ) {
    const f32 = 4;
    const { maxBatch, mailboxSlots, lossRing, sparseEntries } = options;
    const p = paddedParameterCount(layout) * f32;
    this.add('params', 'params', 'params', p);
    this.add('grad', 'grad', 'grad', p);

    const spec = layout.spec;
    const inputs = inputSize(spec);
    const work = (name: string, bytes: number) => this.add(name, name, 'work', bytes);
    work('input', maxBatch * inputs * f32);
    work('sampleLoss', maxBatch * f32);
    if (spec.kind === 'kmeans') {
      work('nearest', maxBatch * 4);
    } else if (spec.kind === 'custom') {
      // A host's kernel (docs/custom-wgsl.md): labels, and its Batch uniform beside `step`.
      work('labels', maxBatch * 4);
      this.add('batchInfo', 'uniforms', 'uniforms', CUSTOM_KERNEL_BATCH_BYTES);
    } else {
      work('labels', maxBatch * 4);
      if (sparseEntries > 0) {
        // CSR rows of [x | 1] per sample, CSC columns per input (plus the bias column).
        work('csrRows', (maxBatch + 1) * 4);
        work('csrEntries', sparseEntries * 8);
        work('cscCols', (inputs + 2) * 4);
        work('cscEntries', sparseEntries * 8);
      }
      const widths = denseWidths(spec);
      for (let l = 1; l < widths.length; l++) {
        work(`act${l - 1}`, maxBatch * widths[l]! * f32);
        work(`delta${l - 1}`, maxBatch * widths[l]! * f32);
      }
    }

    this.add('counters', 'stats', 'stats', 4 * 4);
    this.add('lossRing', 'stats', 'stats', lossRing * f32);
    this.add('mailboxValues', 'mailbox', 'mailbox', mailboxSlots * blockStride(layout) * f32);
    this.add('mailboxBlocks', 'mailbox', 'mailbox', mailboxSlots * 4);
    this.add('step', 'uniforms', 'uniforms', STEP_PARAMS.byteSize);
  }

  private add(name: string, buffer: string, role: BufferRole, bytes: number): void {
    let spec = this.buffers.get(buffer);
    if (!spec) {
      spec = { role, size: 0 };
      this.buffers.set(buffer, spec);
    }
    const offset = roundUp(spec.size, this.options.alignment);
    const size = Math.max(16, roundUp(bytes, 16));
    this.regions.set(name, { buffer, offset, size });
    spec.size = offset + size;
  }

  /** The region called `name`; throws for an unknown name (a bug, not an input error). */
  region(name: string): Region {
    const r = this.regions.get(name);
    if (!r) throw new RangeError(`no buffer region '${name}' for a ${this.layout.spec.kind} model`);
    return r;
  }

  has(name: string): boolean {
    return this.regions.has(name);
  }

  /** All regions, for checks (no two in one buffer overlap). */
  entries(): [string, Region][] {
    return [...this.regions.entries()];
  }
}

/** The GPU buffers of a plan, by buffer name, labelled `${label}:${name}`. */
export type BufferSet = Map<string, GPUBuffer>;

export function createBuffers(device: GPUDevice, plan: BufferPlan, label: string): BufferSet {
  const set: BufferSet = new Map();
  for (const [name, spec] of plan.buffers)
    set.set(name, createPlannedBuffer(device, name, spec, label));
  return set;
}

/** One buffer of a plan. */
export function createPlannedBuffer(
  device: GPUDevice,
  name: string,
  spec: BufferSpec,
  label: string,
): GPUBuffer {
  return device.createBuffer({
    label: `${label}:${name}`,
    size: Math.max(16, spec.size),
    usage: bufferUsage(spec.role),
  });
}

/** The buffer holding region `name`. */
export function regionBuffer(plan: BufferPlan, buffers: BufferSet, name: string): GPUBuffer {
  const b = buffers.get(plan.region(name).buffer);
  if (!b) throw new RangeError(`buffer for region '${name}' was not created`);
  return b;
}

/** The binding of region `name` of `plan` in `buffers`. */
export function bindRegion(plan: BufferPlan, buffers: BufferSet, name: string): GPUBufferBinding {
  const r = plan.region(name);
  return { buffer: regionBuffer(plan, buffers, name), offset: r.offset, size: r.size };
}
