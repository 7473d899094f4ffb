/**
 * Block encodings on the GPU (DESIGN §3: float32, float16, or int8 with a per-block scale), the
 * same rules as core's codec/encoding.ts. Encoding where the parameters live means a block
 * leaves the device already 2× or 4× smaller.
 */
import type { EncodedBlock, Encoding } from '@meshgrad/core';
import { MAX_BLOCK_SIZE } from '@meshgrad/core';
import { DeviceMonitor, WebGpuError } from '../gpu/errors.ts';
import type { CompiledProgram } from '../gpu/program.ts';
import { compileProgram } from '../gpu/program.ts';
import {
  f16DecodeKernel,
  f16EncodeKernel,
  int8DecodeKernel,
  int8EncodeKernel,
} from '../kernels/programs.ts';
import { CODEC_PARAMS } from './uniforms.ts';
import { copyMapped, StagingPool } from './staging.ts';

/** Words before the int8 codes in the encode output: the scale's bits and a non-finite flag. */
const INT8_HEADER_WORDS = 2;

/** Bytes the device writes for `count` values in `encoding` (whole u32 words). */
export function encodedByteSize(count: number, encoding: Encoding): number {
  if (encoding === 'f32') return 4 * count;
  if (encoding === 'f16') return 4 * Math.ceil(count / 2);
  return 4 * (INT8_HEADER_WORDS + Math.ceil(count / 4));
}

/**
 * The block at `byteOffset` of a readback holding `encodedByteSize(count, encoding)` bytes as
 * the device wrote them; null for int8 whose encoder flagged a NaN or ±Infinity.
 */
export function encodedBlockAt(
  bytes: ArrayBuffer,
  byteOffset: number,
  count: number,
  encoding: Encoding,
): EncodedBlock | null {
  if (encoding === 'f32') return { encoding, values: new Float32Array(bytes, byteOffset, count) };
  if (encoding === 'f16') return { encoding, values: new Uint16Array(bytes, byteOffset, count) };
  const header = new DataView(bytes, byteOffset, 4 * INT8_HEADER_WORDS);
  if (header.getUint32(4, true) !== 0) return null;
  return {
    encoding,
    scale: header.getFloat32(0, true),
    values: new Int8Array(bytes, byteOffset + 4 * INT8_HEADER_WORDS, count),
  };
}

export interface GpuBlockCodecOptions {
  /** Most values per block (default core's MAX_BLOCK_SIZE). */
  readonly maxValues?: number;
  /** Label prefix of GPU objects (default `meshgrad-codec`). */
  readonly label?: string;
}

interface CodecPrograms {
  readonly f16Encode: CompiledProgram;
  readonly f16Decode: CompiledProgram;
  readonly int8Encode: CompiledProgram;
  readonly int8Decode: CompiledProgram;
}

/**
 * Encodes and decodes blocks on one device. Calls may overlap: each one's kernel and copy go
 * in one submission, ordered on the queue.
 */
export class GpuBlockCodec {
  /** True when float16 decoding uses WGSL's native f16 (the device has `shader-f16`). */
  readonly nativeF16: boolean;
  private readonly monitor: DeviceMonitor;
  private readonly input: GPUBuffer;
  private readonly output: GPUBuffer;
  private readonly uniform: GPUBuffer;
  private readonly staging: StagingPool;
  private readonly sourceGroups = new WeakMap<
    GPUBuffer,
    Map<GPUBuffer, Map<string, GPUBindGroup>>
  >();
  /** Codec parameters of each (offset, count) that `encodeInto` has encoded. */
  private readonly rangeUniforms = new Map<string, GPUBuffer>();
  private readonly f16Grid = f16EncodeKernel().grid;
  private readonly uniformBytes: DataView<ArrayBuffer> = new DataView(
    new ArrayBuffer(CODEC_PARAMS.byteSize),
  );
  private destroyed = false;

  private constructor(
    readonly device: GPUDevice,
    private readonly programs: CodecPrograms,
    readonly maxValues: number,
    readonly label: string,
  ) {
    this.monitor = DeviceMonitor.of(device);
    this.nativeF16 = programs.f16Decode.program.name === 'codec-f16-native';
    const words = INT8_HEADER_WORDS + maxValues;
    this.input = device.createBuffer({
      label: `${label}:input`,
      size: Math.ceil((4 * words) / 16) * 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.output = device.createBuffer({
      label: `${label}:output`,
      size: Math.ceil((4 * words) / 16) * 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    this.uniform = device.createBuffer({
      label: `${label}:params`,
      size: CODEC_PARAMS.byteSize,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.staging = new StagingPool(device, label);
  }

  /** Compiles the codec kernels on `device` (native f16 decode where `shader-f16` exists). */
  static async create(
    device: GPUDevice,
    options: GpuBlockCodecOptions = {},
  ): Promise<GpuBlockCodec> {
    const maxValues = options.maxValues ?? MAX_BLOCK_SIZE;
    if (!Number.isInteger(maxValues) || maxValues < 1) {
      throw new RangeError(`maxValues must be a positive integer, got ${maxValues}`);
    }
    const native = device.features.has('shader-f16');
    const [f16Encode, f16Decode, int8Encode, int8Decode] = await Promise.all([
      compileProgram(device, f16EncodeKernel().program),
      compileProgram(device, f16DecodeKernel(native).program),
      compileProgram(device, int8EncodeKernel().program),
      compileProgram(device, int8DecodeKernel().program),
    ]);
    return new GpuBlockCodec(
      device,
      { f16Encode, f16Decode, int8Encode, int8Decode },
      maxValues,
      options.label ?? 'meshgrad-codec',
    );
  }

  private check(count: number): void {
    if (this.destroyed) throw new WebGpuError('ERR_DESTROYED', `${this.label} was destroyed`);
    this.monitor.check();
    if (!Number.isInteger(count) || count < 0 || count > this.maxValues) {
      throw new RangeError(`a block holds 0 to ${this.maxValues} values, got ${count}`);
    }
  }

  private group(
    program: CompiledProgram,
    source: GPUBuffer,
    uniform: GPUBuffer = this.uniform,
  ): GPUBindGroup {
    let byUniform = this.sourceGroups.get(source);
    if (!byUniform) {
      byUniform = new Map();
      this.sourceGroups.set(source, byUniform);
    }
    let groups = byUniform.get(uniform);
    if (!groups) {
      groups = new Map();
      byUniform.set(uniform, groups);
    }
    let group = groups.get(program.program.key);
    if (!group) {
      group = program.bindGroup({ codec: uniform, src: source, dst: this.output });
      groups.set(program.program.key, group);
    }
    return group;
  }

  /** A uniform buffer holding (offset, count), made once per pair: blocks repeat. */
  private rangeUniform(offset: number, count: number): GPUBuffer {
    const key = `${offset}:${count}`;
    let buffer = this.rangeUniforms.get(key);
    if (!buffer) {
      buffer = this.device.createBuffer({
        label: `${this.label}:params ${key}`,
        size: CODEC_PARAMS.byteSize,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      const bytes = new DataView(new ArrayBuffer(CODEC_PARAMS.byteSize));
      CODEC_PARAMS.write(bytes, { offset, count });
      this.device.queue.writeBuffer(buffer, 0, bytes.buffer);
      this.rangeUniforms.set(key, buffer);
    }
    return buffer;
  }

  /**
   * Records the encoding of `count` values of `source` from value `offset` into `encoder`, and
   * a copy of the result to `dst` at `dstOffset` (a multiple of 4); nothing is submitted or
   * awaited. Returns the bytes copied (`encodedByteSize`); read them with `encodedBlockAt`.
   * Several calls may go into one encoder: each copies its result out before the next encodes.
   */
  encodeInto(
    encoder: GPUCommandEncoder,
    source: GPUBuffer,
    offset: number,
    count: number,
    encoding: 'f16' | 'int8',
    dst: GPUBuffer,
    dstOffset: number,
  ): number {
    this.check(count);
    const program = encoding === 'f16' ? this.programs.f16Encode : this.programs.int8Encode;
    const pass = encoder.beginComputePass({ label: program.program.label });
    program.dispatch(
      pass,
      this.group(program, source, this.rangeUniform(offset, count)),
      encoding === 'f16' ? this.f16Grid(count) : 1,
    );
    pass.end();
    const bytes = encodedByteSize(count, encoding);
    encoder.copyBufferToBuffer(this.output, 0, dst, dstOffset, bytes);
    return bytes;
  }

  /** Runs `program` over `source` and reads back `bytes` of the output. */
  private async run(
    program: CompiledProgram,
    source: GPUBuffer,
    offset: number,
    count: number,
    workgroups: number,
    bytes: number,
  ): Promise<ArrayBuffer> {
    CODEC_PARAMS.write(this.uniformBytes, { offset, count });
    this.device.queue.writeBuffer(this.uniform, 0, this.uniformBytes.buffer);
    const encoder = this.device.createCommandEncoder({ label: program.program.label });
    const pass = encoder.beginComputePass({ label: program.program.label });
    program.dispatch(pass, this.group(program, source), workgroups);
    pass.end();
    const staging = this.staging.acquire(bytes);
    encoder.copyBufferToBuffer(this.output, 0, staging, 0, Math.ceil(bytes / 4) * 4);
    this.device.queue.submit([encoder.finish()]);
    try {
      await this.monitor.guard(staging.mapAsync(GPUMapMode.READ), (err) =>
        this.destroyed
          ? new WebGpuError('ERR_DESTROYED', `${this.label} was destroyed`, { cause: err })
          : new WebGpuError('ERR_DEVICE_LOST', `codec readback failed: ${String(err)}`, {
              cause: err,
            }),
      );
      return copyMapped(staging, bytes);
    } finally {
      this.staging.release(staging);
    }
  }

  /**
   * Encodes `count` float32 values of `source` (a STORAGE buffer) from value index `offset`.
   * int8 throws a RangeError when a value is NaN or ±Infinity, as core's encoder does.
   */
  async encodeBuffer(
    source: GPUBuffer,
    offset: number,
    count: number,
    encoding: Encoding,
  ): Promise<EncodedBlock> {
    this.check(count);
    if (encoding === 'f32') {
      throw new RangeError('encodeBuffer encodes f16 or int8; read f32 values directly');
    }
    if (encoding === 'f16') {
      const k = f16EncodeKernel();
      const words = Math.ceil(count / 2);
      const bytes = await this.run(
        this.programs.f16Encode,
        source,
        offset,
        count,
        k.grid(count),
        4 * words,
      );
      return { encoding: 'f16', values: new Uint16Array(bytes, 0, count) };
    }
    const words = Math.ceil(count / 4);
    const bytes = await this.run(
      this.programs.int8Encode,
      source,
      offset,
      count,
      1,
      4 * (INT8_HEADER_WORDS + words),
    );
    const header = new DataView(bytes, 0, 8);
    if (header.getUint32(4, true) !== 0) {
      throw new RangeError('cannot encode a block holding NaN or ±Infinity as int8');
    }
    return {
      encoding: 'int8',
      scale: header.getFloat32(0, true),
      values: new Int8Array(bytes, 4 * INT8_HEADER_WORDS, count),
    };
  }

  /** Encodes host values (uploads them first). f32 returns a copy. */
  async encode(values: Float32Array, encoding: Encoding): Promise<EncodedBlock> {
    this.check(values.length);
    if (encoding === 'f32') return { encoding: 'f32', values: values.slice() };
    this.device.queue.writeBuffer(
      this.input,
      0,
      values.buffer,
      values.byteOffset,
      values.byteLength,
    );
    return this.encodeBuffer(this.input, 0, values.length, encoding);
  }

  /** Decodes a block back to float32 on the GPU. */
  async decode(block: EncodedBlock): Promise<Float32Array> {
    this.check(block.values.length);
    const count = block.values.length;
    if (block.encoding === 'f32') return block.values.slice();
    if (block.encoding === 'f16') {
      // Whole u32 words: pad an odd count with a zero half.
      const words = new Uint16Array(2 * Math.ceil(count / 2));
      words.set(block.values);
      this.device.queue.writeBuffer(this.input, 0, words);
      const k = f16DecodeKernel(this.nativeF16);
      const bytes = await this.run(
        this.programs.f16Decode,
        this.input,
        0,
        count,
        k.grid(count),
        4 * count,
      );
      return new Float32Array(bytes);
    }
    if (!Number.isFinite(block.scale) || block.scale < 0) {
      throw new RangeError(`int8 scale must be finite and non-negative, got ${block.scale}`);
    }
    const packed = new Int8Array(4 * (INT8_HEADER_WORDS + Math.ceil(count / 4)));
    new DataView(packed.buffer).setFloat32(0, block.scale, true);
    packed.set(block.values, 4 * INT8_HEADER_WORDS);
    this.device.queue.writeBuffer(this.input, 0, packed);
    const k = int8DecodeKernel();
    const bytes = await this.run(
      this.programs.int8Decode,
      this.input,
      0,
      count,
      k.grid(count),
      4 * count,
    );
    return new Float32Array(bytes);
  }

  /** Releases the codec's buffers. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.input.destroy();
    this.output.destroy();
    this.uniform.destroy();
    for (const b of this.rangeUniforms.values()) b.destroy();
    this.rangeUniforms.clear();
    this.staging.destroy();
  }
}
