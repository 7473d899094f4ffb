/**
 * The binary state message (DESIGN §4): one encoded parameter block with a versioned header.
 * The same bytes travel over WebRTC data channels and through the server relay.
 *
 * Layout, little-endian, 48-byte header then the payload:
 *   0  u32  magic 'MGB1'          24 u32  value count n
 *   4  u8   version (1)           28 f32  int8 scale (0 for f32/f16)
 *   5  u8   encoding 0 f32, 1 f16, 2 int8
 *   6  u16  reserved, 0           32 f64  samples the sender had processed
 *   8  u32  job id hash           40 u32  CRC-32 of bytes [0, 40) and the payload
 *   12 u32  sender id hash        44 u32  reserved, 0
 *   16 u32  sequence number       48 ...  payload: n × 4, 2 or 1 bytes
 *   20 u32  block index
 * CRC-32 catches every single-byte corruption (and every burst up to 32 bits).
 */
import { crc32 } from '../util/crc32.ts';
import type { EncodedBlock } from './encoded-block.ts';
import { decodeFloat16, decodeInt8, encodeFloat16, encodeInt8, type Encoding } from './encoding.ts';

export const MESSAGE_MAGIC = 0x3142474d; // 'MGB1' read as little-endian u32
export const MESSAGE_VERSION = 1;
export const MESSAGE_HEADER_BYTES = 48;
/** Chromium refuses data-channel messages over 262,144 bytes (docs/recipes.md). */
export const MAX_MESSAGE_BYTES = 262_144;

const ENCODING_CODES: Record<Encoding, number> = { f32: 0, f16: 1, int8: 2 };
const CODE_ENCODINGS: readonly Encoding[] = ['f32', 'f16', 'int8'];

export type MessageErrorCode =
  | 'ERR_MESSAGE_SIZE'
  | 'ERR_MESSAGE_MAGIC'
  | 'ERR_MESSAGE_VERSION'
  | 'ERR_MESSAGE_HEADER'
  | 'ERR_MESSAGE_CHECKSUM'
  | 'ERR_MESSAGE_VALUES';

/** A state message that failed a check; the receive path counts and drops it. */
export class MessageError extends Error {
  constructor(
    readonly code: MessageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MessageError';
  }
}

export interface StateMessage {
  readonly job: number;
  readonly sender: number;
  readonly seq: number;
  readonly block: number;
  readonly encoding: Encoding;
  readonly samples: number;
  /** Decoded float32 values. */
  readonly values: Float32Array;
  /** Euclidean norm of `values`; the decoder sets it (it gets it from the finiteness check). */
  readonly norm?: number;
}

/** FNV-1a hash of an id, used to name the job and sender in 4 bytes. */
export function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Whether this host stores numbers little-endian, like the wire: then float32 and float16
 * payloads are plain copies instead of per-value DataView calls (every browser engine and
 * Node on x86 and ARM are little-endian; the DataView paths stay for any other).
 */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checksum(bytes: Uint8Array): number {
  return crc32(bytes.subarray(MESSAGE_HEADER_BYTES), crc32(bytes.subarray(0, 40)));
}

/** Encodes one block. Throws RangeError when it would not fit one data-channel message. */
export function encodeStateMessage(m: StateMessage): Uint8Array {
  const n = m.values.length;
  const bytes = allocateMessage(n, m.encoding);
  let scale = 0;
  const payload = bytes.subarray(MESSAGE_HEADER_BYTES);
  if (m.encoding === 'f32' && LITTLE_ENDIAN) {
    payload.set(new Uint8Array(m.values.buffer, m.values.byteOffset, n * 4));
  } else if (m.encoding === 'f32') {
    const out = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    for (let i = 0; i < n; i++) out.setFloat32(i * 4, m.values[i]!, true);
  } else if (m.encoding === 'f16' && LITTLE_ENDIAN) {
    // The payload starts 48 bytes into a fresh buffer: aligned for 16-bit access.
    encodeFloat16(m.values, new Uint16Array(payload.buffer, payload.byteOffset, n));
  } else if (m.encoding === 'f16') {
    const bits = encodeFloat16(m.values);
    const out = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    for (let i = 0; i < n; i++) out.setUint16(i * 2, bits[i]!, true);
  } else {
    const q = encodeInt8(m.values, new Int8Array(payload.buffer, payload.byteOffset, n));
    scale = q.scale;
  }
  writeHeader(bytes, m, n, scale);
  return bytes;
}

/** The header of a state message, without its values. */
export type StateMessageHeader = Omit<StateMessage, 'encoding' | 'values' | 'norm'>;

/**
 * A state message from a block already in its wire encoding (a backend's `readBlocksAfterStep`):
 * the same bytes `encodeStateMessage` makes from the float32 values.
 */
export function encodeEncodedStateMessage(
  header: StateMessageHeader,
  block: EncodedBlock,
): Uint8Array {
  const n = block.values.length;
  const bytes = allocateMessage(n, block.encoding);
  const payload = bytes.subarray(MESSAGE_HEADER_BYTES);
  const src = block.values;
  if (LITTLE_ENDIAN || block.encoding === 'int8') {
    payload.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  } else if (block.encoding === 'f32') {
    const out = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    for (let i = 0; i < n; i++) out.setFloat32(i * 4, block.values[i]!, true);
  } else {
    const out = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    for (let i = 0; i < n; i++) out.setUint16(i * 2, block.values[i]!, true);
  }
  const scale = block.encoding === 'int8' ? block.scale : 0;
  writeHeader(bytes, { ...header, encoding: block.encoding }, n, scale);
  return bytes;
}

/** A zeroed message of `n` values in `encoding`; throws when it would exceed the size limit. */
function allocateMessage(n: number, encoding: Encoding): Uint8Array {
  const width = encoding === 'f32' ? 4 : encoding === 'f16' ? 2 : 1;
  const total = MESSAGE_HEADER_BYTES + n * width;
  if (total > MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `a block of ${n} values as ${encoding} is ${total} bytes, over ${MAX_MESSAGE_BYTES}`,
    );
  }
  return new Uint8Array(total);
}

/** Writes the header over a message whose payload is in place, checksum last. */
function writeHeader(
  bytes: Uint8Array,
  m: StateMessageHeader & { readonly encoding: Encoding },
  n: number,
  scale: number,
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(0, MESSAGE_MAGIC, true);
  view.setUint8(4, MESSAGE_VERSION);
  view.setUint8(5, ENCODING_CODES[m.encoding]);
  view.setUint32(8, m.job >>> 0, true);
  view.setUint32(12, m.sender >>> 0, true);
  view.setUint32(16, m.seq >>> 0, true);
  view.setUint32(20, m.block >>> 0, true);
  view.setUint32(24, n, true);
  view.setFloat32(28, scale, true);
  view.setFloat64(32, m.samples, true);
  view.setUint32(40, checksum(bytes), true);
}

/**
 * Decodes and checks a message: size, magic, version, header fields, checksum, and that every
 * value is finite. Never throws anything but MessageError, whatever the bytes.
 */
export function decodeStateMessage(input: Uint8Array | ArrayBuffer): StateMessage {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (bytes.length < MESSAGE_HEADER_BYTES || bytes.length > MAX_MESSAGE_BYTES) {
    throw new MessageError(
      'ERR_MESSAGE_SIZE',
      `message of ${bytes.length} bytes is outside [${MESSAGE_HEADER_BYTES}, ${MAX_MESSAGE_BYTES}]`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MESSAGE_MAGIC)
    throw new MessageError('ERR_MESSAGE_MAGIC', 'not a meshgrad state message');
  const version = view.getUint8(4);
  if (version !== MESSAGE_VERSION)
    throw new MessageError('ERR_MESSAGE_VERSION', `unsupported message version ${version}`);
  const encoding = CODE_ENCODINGS[view.getUint8(5)];
  if (!encoding || view.getUint16(6, true) !== 0 || view.getUint32(44, true) !== 0) {
    throw new MessageError('ERR_MESSAGE_HEADER', 'bad encoding or reserved field');
  }
  const n = view.getUint32(24, true);
  const width = encoding === 'f32' ? 4 : encoding === 'f16' ? 2 : 1;
  if (bytes.length !== MESSAGE_HEADER_BYTES + n * width) {
    throw new MessageError(
      'ERR_MESSAGE_SIZE',
      `header says ${n} ${encoding} values, payload has ${bytes.length - MESSAGE_HEADER_BYTES} bytes`,
    );
  }
  // Compare on a copy-free view: the checksum field itself is outside the summed ranges.
  if (checksum(bytes) !== view.getUint32(40, true))
    throw new MessageError('ERR_MESSAGE_CHECKSUM', 'checksum mismatch');
  const scale = view.getFloat32(28, true);
  const samples = view.getFloat64(32, true);
  if (!Number.isFinite(scale) || scale < 0 || !(samples >= 0) || !Number.isFinite(samples)) {
    throw new MessageError('ERR_MESSAGE_HEADER', 'bad scale or sample count');
  }
  let values: Float32Array;
  const p = bytes.byteOffset + MESSAGE_HEADER_BYTES;
  const payload = new DataView(bytes.buffer, p, n * width);
  if (encoding === 'f32' && LITTLE_ENDIAN) {
    // A copy (aligned, and independent of the message buffer, which the caller may reuse).
    values = new Float32Array(bytes.slice(MESSAGE_HEADER_BYTES).buffer);
  } else if (encoding === 'f32') {
    values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = payload.getFloat32(i * 4, true);
  } else if (encoding === 'f16') {
    values = new Float32Array(n);
    const bits =
      LITTLE_ENDIAN && p % 2 === 0
        ? new Uint16Array(bytes.buffer, p, n)
        : Uint16Array.from({ length: n }, (_, i) => payload.getUint16(i * 2, true));
    decodeFloat16(bits, values);
  } else {
    values = new Float32Array(n);
    decodeInt8(new Int8Array(bytes.buffer, p, n), scale, values);
  }
  // One pass for both: the sum of squares of float32 values is finite exactly when every value
  // is (the largest float32 squared, 65,000 times, is still far below the float64 maximum).
  let sumSquares = 0;
  for (let i = 0; i < n; i++) sumSquares += values[i]! * values[i]!;
  if (!Number.isFinite(sumSquares)) {
    const i = values.findIndex((v) => !Number.isFinite(v));
    throw new MessageError('ERR_MESSAGE_VALUES', `value ${i} is not finite`);
  }
  return {
    job: view.getUint32(8, true),
    sender: view.getUint32(12, true),
    seq: view.getUint32(16, true),
    block: view.getUint32(20, true),
    encoding,
    samples,
    values,
    norm: Math.sqrt(sumSquares),
  };
}
