/**
 * The safetensors format (https://huggingface.co/docs/safetensors), so PyTorch, JAX and NumPy
 * users can load meshgrad checkpoints (DESIGN §5):
 *
 *   u64 little-endian N | N bytes of UTF-8 JSON header | raw little-endian tensor data
 *
 * The header maps each tensor name to `{dtype, shape, data_offsets: [begin, end]}` (offsets into
 * the data section) and may hold `__metadata__`, a map of strings. The writer pads the header with
 * spaces so the data starts 8-byte aligned, as the reference implementation does. Pure
 * TypeScript: no Node or DOM APIs, so the server, the console and tests share it.
 */
import { decodeUtf8, encodeUtf8 } from '../data/bytes.ts';
import type { ParameterLayout } from '../model/spec.ts';

/** Element types of the format and their sizes in bytes. */
export const SAFETENSORS_DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES;

/**
 * Largest header the reader accepts (bytes), the reference implementation's limit: a header
 * length read from a corrupt or hostile file must not make us decode gigabytes of "JSON".
 */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

/** The header key that holds free-form string metadata rather than a tensor. */
export const SAFETENSORS_METADATA_KEY = '__metadata__';

/** Where the writer aligns the start of the data section. */
const DATA_ALIGNMENT = 8;
const LENGTH_BYTES = 8;

export type SafetensorsErrorCode =
  /** Fewer bytes than the length prefix, the header or the tensors announce. */
  | 'ERR_SAFETENSORS_TRUNCATED'
  /** The header is not UTF-8 JSON of the expected shape. */
  | 'ERR_SAFETENSORS_HEADER'
  /** A dtype the format does not define, or one a conversion does not support. */
  | 'ERR_SAFETENSORS_DTYPE'
  /** Offsets that overlap, leave gaps, or disagree with dtype × shape. */
  | 'ERR_SAFETENSORS_OFFSETS'
  /** Tensors that do not match a model's parameter layout. */
  | 'ERR_SAFETENSORS_LAYOUT'
  /** The writer was handed something it cannot write. */
  | 'ERR_SAFETENSORS_INPUT';

/** Thrown by the reader and writer; `code` is stable, the message may change. */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';

  constructor(
    readonly code: SafetensorsErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** One tensor as described by a header. */
export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Half-open byte range into the data section. */
  readonly dataOffsets: readonly [number, number];
}

/** A parsed file: tensors in data order, metadata, and a view of the whole input. */
export interface SafetensorsFile {
  readonly tensors: readonly SafetensorsTensorInfo[];
  readonly metadata: Readonly<Record<string, string>>;
  /** Byte length of the JSON header (N), padding included. */
  readonly headerBytes: number;
  /** Byte offset of the data section in `bytes` (8 + N). */
  readonly dataStart: number;
  readonly bytes: Uint8Array;
}

/** A float32 tensor to write. `data.length` must equal the product of `shape`. */
export interface Float32Tensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const elementCount = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Writes float32 tensors, in the given order, as one safetensors file.
 * @param metadata string values stored under `__metadata__` (omitted when empty).
 * @throws SafetensorsError ERR_SAFETENSORS_INPUT for a bad name, shape or data length.
 */
export function encodeSafetensors(
  tensors: readonly Float32Tensor[],
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[SAFETENSORS_METADATA_KEY] = { ...metadata };
  let offset = 0;
  for (const t of tensors) {
    if (!t.name || t.name === SAFETENSORS_METADATA_KEY || t.name in header) {
      throw new SafetensorsError(
        'ERR_SAFETENSORS_INPUT',
        `tensor name ${JSON.stringify(t.name)} is empty, reserved or repeated`,
      );
    }
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(
        'ERR_SAFETENSORS_INPUT',
        `${t.name}: shape [${t.shape.join(', ')}] must hold non-negative integers`,
      );
    }
    const count = elementCount(t.shape);
    if (count !== t.data.length) {
      throw new SafetensorsError(
        'ERR_SAFETENSORS_INPUT',
        `${t.name}: shape [${t.shape.join(', ')}] holds ${count} values, data has ${t.data.length}`,
      );
    }
    const end = offset + count * SAFETENSORS_DTYPE_BYTES.F32;
    header[t.name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }
  const json = encodeUtf8(JSON.stringify(header));
  const padded = Math.ceil((LENGTH_BYTES + json.length) / DATA_ALIGNMENT) * DATA_ALIGNMENT;
  const headerBytes = padded - LENGTH_BYTES;
  const out = new Uint8Array(padded + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes, true);
  view.setUint32(4, 0, true);
  out.set(json, LENGTH_BYTES);
  out.fill(0x20, LENGTH_BYTES + json.length, padded);
  let at = padded;
  for (const t of tensors) {
    if (HOST_LITTLE_ENDIAN) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    } else {
      for (let i = 0; i < t.data.length; i++)
        view.setFloat32(at + i * 4, t.data[i] as number, true);
    }
    at += t.data.byteLength;
  }
  return out;
}

function headerError(message: string): SafetensorsError {
  return new SafetensorsError('ERR_SAFETENSORS_HEADER', message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses and checks a safetensors file: the length prefix, the JSON header, every tensor's dtype,
 * shape and offsets (which must tile the data section exactly, without gaps or overlaps, as the
 * reference reader demands). Tensor data stays in `bytes`; read it with `readFloat32Tensor`.
 * JSON objects cannot reveal repeated keys, so a header naming one tensor twice keeps the last.
 * @throws SafetensorsError
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.byteLength < LENGTH_BYTES) {
    throw new SafetensorsError(
      'ERR_SAFETENSORS_TRUNCATED',
      `a safetensors file starts with an 8-byte header length; got ${bytes.byteLength} bytes`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  if (high !== 0 || low > MAX_SAFETENSORS_HEADER_BYTES) {
    throw headerError(
      `header length ${high * 2 ** 32 + low} exceeds the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit`,
    );
  }
  const headerBytes = low;
  const dataStart = LENGTH_BYTES + headerBytes;
  if (dataStart > bytes.byteLength) {
    throw new SafetensorsError(
      'ERR_SAFETENSORS_TRUNCATED',
      `header announces ${headerBytes} bytes but only ${bytes.byteLength - LENGTH_BYTES} follow`,
    );
  }
  let text: string;
  try {
    text = decodeUtf8(bytes.subarray(LENGTH_BYTES, dataStart));
  } catch {
    throw headerError('header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw headerError('header must be a JSON object starting with {');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw headerError(`header is not valid JSON: ${(err as Error).message}`);
  }
  if (!isRecord(parsed)) throw headerError('header must be a JSON object');

  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === SAFETENSORS_METADATA_KEY) {
      if (!isRecord(entry)) throw headerError(`${name} must be an object of strings`);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw headerError(`${name}.${k} must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (!isRecord(entry)) throw headerError(`${name} must be an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_BYTES)) {
      throw new SafetensorsError(
        'ERR_SAFETENSORS_DTYPE',
        `${name}.dtype: ${JSON.stringify(dtype)} is not a safetensors dtype`,
      );
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw headerError(`${name}.shape must be an array of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw headerError(`${name}.data_offsets must be [begin, end] with non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    const size = SAFETENSORS_DTYPE_BYTES[dtype as SafetensorsDtype];
    if (end < begin || end - begin !== elementCount(shape) * size) {
      throw new SafetensorsError(
        'ERR_SAFETENSORS_OFFSETS',
        `${name}: data_offsets [${begin}, ${end}] do not hold ${dtype} of shape [${shape.join(', ')}]`,
      );
    }
    tensors.push({
      name,
      dtype: dtype as SafetensorsDtype,
      shape: shape as number[],
      dataOffsets: [begin, end],
    });
  }
  tensors.sort(
    (a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1],
  );
  let expected = 0;
  for (const t of tensors) {
    if (t.dataOffsets[0] !== expected) {
      throw new SafetensorsError(
        'ERR_SAFETENSORS_OFFSETS',
        `${t.name}: data starts at byte ${t.dataOffsets[0]}, expected ${expected} (gap or overlap)`,
      );
    }
    expected = t.dataOffsets[1];
  }
  const dataBytes = bytes.byteLength - dataStart;
  if (expected !== dataBytes) {
    throw new SafetensorsError(
      expected > dataBytes ? 'ERR_SAFETENSORS_TRUNCATED' : 'ERR_SAFETENSORS_OFFSETS',
      `tensors cover ${expected} bytes of data, the file holds ${dataBytes}`,
    );
  }
  return { tensors, metadata, headerBytes, dataStart, bytes };
}

/** Finds a tensor by name in a parsed file, or throws ERR_SAFETENSORS_LAYOUT. */
export function safetensorsTensor(file: SafetensorsFile, name: string): SafetensorsTensorInfo {
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new SafetensorsError('ERR_SAFETENSORS_LAYOUT', `no tensor named ${name}`);
  return t;
}

/**
 * A copy of an F32 tensor's values, decoded little-endian.
 * @throws SafetensorsError ERR_SAFETENSORS_DTYPE for any other dtype.
 */
export function readFloat32Tensor(
  file: SafetensorsFile,
  tensor: SafetensorsTensorInfo | string,
): Float32Array {
  const t = typeof tensor === 'string' ? safetensorsTensor(file, tensor) : tensor;
  if (t.dtype !== 'F32') {
    throw new SafetensorsError(
      'ERR_SAFETENSORS_DTYPE',
      `${t.name} is ${t.dtype}; only F32 tensors can be read as float32`,
    );
  }
  const start = file.dataStart + t.dataOffsets[0];
  const out = new Float32Array((t.dataOffsets[1] - t.dataOffsets[0]) / 4);
  const view = new DataView(file.bytes.buffer, file.bytes.byteOffset, file.bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(start + i * 4, true);
  return out;
}

/**
 * A model's flat parameter vector as safetensors: one F32 tensor per entry of the layout, with
 * the layout's names and shapes (dense weights `[in, out]`, so `y = x @ W + b`; K-Means centres
 * `[clusters, dims]`). `metadata` is stored as given, plus `meshgrad.model` (the model spec as JSON).
 */
export function exportParameters(
  layout: ParameterLayout,
  params: Float32Array,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  if (params.length !== layout.size) {
    throw new SafetensorsError(
      'ERR_SAFETENSORS_INPUT',
      `the model has ${layout.size} parameters, got ${params.length}`,
    );
  }
  return encodeSafetensors(
    layout.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      data: params.subarray(t.offset, t.offset + t.size),
    })),
    { 'meshgrad.model': JSON.stringify(layout.spec), ...metadata },
  );
}

/**
 * Rebuilds a model's flat parameter vector from a safetensors file, checking that it holds
 * exactly the layout's tensors, as F32, with the layout's shapes.
 * @throws SafetensorsError ERR_SAFETENSORS_LAYOUT (or a decoding code) naming the mismatch.
 */
export function importParameters(
  layout: ParameterLayout,
  input: Uint8Array | SafetensorsFile,
): Float32Array {
  const file = input instanceof Uint8Array ? decodeSafetensors(input) : input;
  const expected = new Set(layout.tensors.map((t) => t.name));
  const extra = file.tensors.filter((t) => !expected.has(t.name)).map((t) => t.name);
  if (extra.length > 0) {
    throw new SafetensorsError(
      'ERR_SAFETENSORS_LAYOUT',
      `tensors not in this model: ${extra.join(', ')}`,
    );
  }
  const params = new Float32Array(layout.size);
  for (const t of layout.tensors) {
    const found = safetensorsTensor(file, t.name);
    if (found.shape.join() !== t.shape.join() || found.shape.length !== t.shape.length) {
      throw new SafetensorsError(
        'ERR_SAFETENSORS_LAYOUT',
        `${t.name}: shape [${found.shape.join(', ')}], the model expects [${t.shape.join(', ')}]`,
      );
    }
    params.set(readFloat32Tensor(file, found), t.offset);
  }
  return params;
}
