/**
 * What every kernel check shares: the result type, the relative-error measure, random inputs and
 * the harness that poisons outputs, runs one program and reads buffers back. No Node or DOM APIs
 * beyond WebGPU (the checks also run in browsers).
 */
import type { ParameterLayout, ReceivedBlock, Rng } from '@meshgrad/core';
import { STEP_PARAMS } from '../backend/uniforms.ts';
import type { ComputeProgram } from '../gpu/program.ts';
import { compileProgram } from '../gpu/program.ts';

/** Outcome of one check. */
export interface KernelCheckResult {
  readonly name: string;
  /** Largest error found, relative to the check's scale (see its `detail`). */
  readonly maxRelError: number;
  /** The bound `maxRelError` must not exceed. */
  readonly bound: number;
  readonly passed: boolean;
  /** What was compared and anything else that failed (counts, integer outputs). */
  readonly detail?: string;
}

export interface KernelCheckOptions {
  /** Seed of the random inputs (default: a random one, reported in every detail). */
  readonly seed?: number;
  /** Run only checks whose id starts with one of these, e.g. `dense-forward`, `codec` (default all). */
  readonly only?: readonly string[];
  /** Progress lines (default none). */
  readonly log?: (line: string) => void;
}

/** Bits of a quiet NaN: what poisoned float outputs hold until a kernel writes them. */
export const NAN_BITS = 0x7fc00000;
export const POISON_U32 = 0xdeadbeef;

/** Relative errors: |gpu − ref| / scale per element (scale 0 → exact match required). */
export function maxRelative(
  gpu: ArrayLike<number>,
  ref: ArrayLike<number>,
  scale: ArrayLike<number> | number,
): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const s = typeof scale === 'number' ? scale : scale[i]!;
    const d = Math.abs(gpu[i]! - ref[i]!);
    const e = Number.isNaN(d) ? Infinity : d === 0 ? 0 : s > 0 ? d / s : Infinity;
    if (e > worst) worst = e;
  }
  return worst;
}

export function result(
  name: string,
  maxRelError: number,
  bound: number,
  detail: string,
  extraOk = true,
): KernelCheckResult {
  return { name, maxRelError, bound, passed: extraOk && maxRelError <= bound, detail };
}

/** Buffers and runs for the checks of one device; everything is destroyed at the end. */
export class Harness {
  private readonly owned: GPUBuffer[] = [];

  constructor(readonly device: GPUDevice) {}

  /** A storage buffer holding `data`, or `bytes` bytes of `poison` words. */
  buffer(data: ArrayBufferView | null, bytes = 0, poison = NAN_BITS): GPUBuffer {
    const size = Math.max(16, Math.ceil((data ? data.byteLength : bytes) / 16) * 16);
    const buffer = this.device.createBuffer({
      label: 'kernel-check',
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.owned.push(buffer);
    const init = new Uint32Array(size / 4).fill(poison);
    if (data)
      new Uint8Array(init.buffer).set(
        new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      );
    this.device.queue.writeBuffer(buffer, 0, init);
    return buffer;
  }

  /** A step-parameter uniform buffer. */
  step(values: {
    batch: number;
    lossSlot?: number;
    slotCount?: number;
    learningRate?: number;
  }): GPUBuffer {
    const buffer = this.device.createBuffer({
      label: 'kernel-check:step',
      size: STEP_PARAMS.byteSize,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.owned.push(buffer);
    const view = new DataView(new ArrayBuffer(STEP_PARAMS.byteSize));
    STEP_PARAMS.write(view, {
      batch: values.batch,
      lossSlot: values.lossSlot ?? 0,
      slotCount: values.slotCount ?? 0,
      learningRate: values.learningRate ?? 0,
    });
    // DataView is not accepted by dawn.node's writeBuffer; its ArrayBuffer is.
    this.device.queue.writeBuffer(buffer, 0, view.buffer);
    return buffer;
  }

  async run(
    program: ComputeProgram,
    resources: Record<string, GPUBuffer>,
    grid: readonly [number, number],
  ): Promise<void> {
    const compiled = await compileProgram(this.device, program);
    const encoder = this.device.createCommandEncoder({ label: program.label });
    const pass = encoder.beginComputePass({ label: program.label });
    compiled.dispatch(pass, compiled.bindGroup(resources), grid[0], grid[1]);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
  }

  async read(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const staging = this.device.createBuffer({
      label: 'kernel-check:read',
      size: Math.max(16, Math.ceil(bytes / 4) * 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, Math.ceil(bytes / 4) * 4);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0, bytes);
    staging.destroy();
    return out;
  }

  async readF32(buffer: GPUBuffer, count: number): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, count * 4));
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
  }
}

export function randomArray(rng: Rng, n: number, scale = 1, zeroFraction = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.next() < zeroFraction ? 0 : (2 * rng.next() - 1) * scale;
  return a;
}

export function randomLabels(rng: Rng, n: number, classes: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(classes);
  return a;
}

export interface CheckContext {
  readonly h: Harness;
  readonly rng: Rng;
  readonly device: GPUDevice;
}

export type Check = (c: CheckContext) => Promise<KernelCheckResult>;

/**
 * Peers for block k built from a backend's current w and gradient g, one per entry a of
 * `factors`: v = w − a·η·g accepts iff a > ½ (2⟨g, a·η·g⟩ > η‖g‖²), so the verdicts are far from
 * ties. The kernel checks and the backend tests both build their mailboxes with it.
 */
export function peerBlocks(
  layout: ParameterLayout,
  w: ArrayLike<number>,
  g: ArrayLike<number>,
  eta: number,
  k: number,
  factors: readonly number[],
): ReceivedBlock[] {
  const start = k * layout.blockSize;
  const end = Math.min(start + layout.blockSize, layout.size);
  return factors.map((a) => ({
    block: k,
    values: Float32Array.from(
      { length: end - start },
      (_, t) => w[start + t]! - a * eta * g[start + t]!,
    ),
  }));
}
