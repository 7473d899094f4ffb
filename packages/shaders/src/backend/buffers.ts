/**
 * The one schema of the WebGPU backend's buffers: which buffers exist, which named regions they
 * hold at which byte offsets (the model kind adds its own regions, model-kind.ts). Bind groups,
 * uploads and readbacks are all derived from it; no offset is written by hand anywhere else.
 */
import type { ParameterLayout } from '@meshgrad/core';
import { inputSize } from '@meshgrad/core';
import { modelKindOf } from './models/registry.ts';
import { STEP_PARAMS } from './uniforms.ts';

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
  /** The merge rule keeps outer momentum: an anchor and a displacement per parameter. */
  readonly outerMomentum?: boolean;
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
    const { maxBatch, mailboxSlots, lossRing } = options;
    const p = paddedParameterCount(layout) * f32;
    this.add('params', 'params', 'params', p);
    this.add('grad', 'grad', 'grad', p);
    if (options.outerMomentum) {
      this.add('anchor', 'anchor', 'params', p);
      this.add('displacement', 'displacement', 'params', p);
    }

    const work = (name: string, bytes: number) => this.add(name, name, 'work', bytes);
    work('input', maxBatch * inputSize(layout.spec) * f32);
    work('sampleLoss', maxBatch * f32);
    modelKindOf(layout.spec).regions(layout, options, {
      work,
      uniform: (name, bytes) => this.add(name, 'uniforms', 'uniforms', bytes),
    });

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
