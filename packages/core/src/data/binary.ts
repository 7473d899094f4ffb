/**
 * meshgrad's binary dataset format, used to ship datasets and shards over HTTP (cacheable, one
 * fetch, no parsing beyond a header) and into browser tests.
 *
 * Layout, version 1, all integers little-endian:
 *
 * | offset | size | field                                                              |
 * | ------ | ---- | ------------------------------------------------------------------ |
 * | 0      | 4    | magic, ASCII `MGDS`                                                |
 * | 4      | 2    | u16 version = 1                                                    |
 * | 6      | 2    | u16 flags: bit 0 set when labelled; other bits must be 0           |
 * | 8      | 4    | u32 count (samples, ≥ 1)                                           |
 * | 12     | 4    | u32 features per sample (≥ 1)                                      |
 * | 16     | 4    | u32 classes (≥ 1 when labelled, 0 otherwise)                       |
 * | 20     | 4    | u32 name length in bytes (≤ MAX_DATASET_NAME_BYTES)                |
 * | 24     | 4    | u32 CRC-32 of every byte from offset 28 to the end                 |
 * | 28     | n    | name, UTF-8, then zero bytes up to a multiple of 4                 |
 * | …      | 4·c·f| features, f32, row-major                                           |
 * | …      | 4·c  | labels, u32, present only when labelled                            |
 *
 * The file ends right after the last section. The CRC is there because shards sit in browser
 * caches for a long time: a damaged one should fail loudly, not train on garbage.
 */
import { makeDataset, type Dataset } from './dataset.ts';
import { DatasetFormatError } from './errors.ts';
import {
  crc32,
  dataViewOf,
  decodeUtf8,
  encodeUtf8,
  HOST_IS_LITTLE_ENDIAN,
  toBytes,
  type BinaryInput,
} from './bytes.ts';

/** `MGDS` read as a little-endian u32. */
export const DATASET_MAGIC = 0x5344474d;
export const DATASET_FORMAT_VERSION = 1;
/** Media type to serve encoded datasets with. */
export const DATASET_MEDIA_TYPE = 'application/vnd.meshgrad.dataset';
/** Longest accepted name, so a corrupt header cannot ask for a huge string. */
export const MAX_DATASET_NAME_BYTES = 1_024;

const HEADER_BYTES = 28;
const FLAG_LABELLED = 1;
const CHECKSUM_OFFSET = 24;

/** Size in bytes of every section, from the header counts. */
function layout(count: number, features: number, labelled: boolean, nameBytes: number) {
  const nameEnd = HEADER_BYTES + nameBytes;
  const xStart = nameEnd + ((4 - (nameEnd % 4)) % 4);
  const labelsStart = xStart + 4 * count * features;
  const end = labelsStart + (labelled ? 4 * count : 0);
  return { xStart, labelsStart, end };
}

/**
 * Encodes a dataset in the format above.
 * @throws RangeError when the dataset is inconsistent or its name is too long.
 */
export function encodeDataset(ds: Dataset): Uint8Array {
  const name = encodeUtf8(ds.name);
  if (name.length > MAX_DATASET_NAME_BYTES) {
    throw new RangeError(
      `dataset name is ${name.length} bytes; the limit is ${MAX_DATASET_NAME_BYTES}`,
    );
  }
  if (ds.x.length !== ds.count * ds.features || (ds.labels && ds.labels.length !== ds.count)) {
    throw new RangeError(`dataset ${ds.name}: array lengths do not match count and features`);
  }
  const labelled = ds.labels !== null;
  const { xStart, labelsStart, end } = layout(ds.count, ds.features, labelled, name.length);
  const out = new Uint8Array(end);
  const view = dataViewOf(out);
  view.setUint32(0, DATASET_MAGIC, true);
  view.setUint16(4, DATASET_FORMAT_VERSION, true);
  view.setUint16(6, labelled ? FLAG_LABELLED : 0, true);
  view.setUint32(8, ds.count, true);
  view.setUint32(12, ds.features, true);
  view.setUint32(16, labelled ? ds.classes : 0, true);
  view.setUint32(20, name.length, true);
  out.set(name, HEADER_BYTES);
  writeWords(out, xStart, ds.x);
  if (ds.labels) writeWords(out, labelsStart, ds.labels);
  view.setUint32(CHECKSUM_OFFSET, crc32(out.subarray(HEADER_BYTES)), true);
  return out;
}

/**
 * Decodes and validates an encoded dataset; the result owns fresh arrays (it never aliases
 * `input`).
 * @throws DatasetFormatError: ERR_DATASET_MAGIC, ERR_DATASET_VERSION, ERR_DATASET_HEADER,
 *   ERR_TRUNCATED, ERR_TRAILING_BYTES, ERR_DATASET_CHECKSUM, or a makeDataset code.
 */
export function decodeDataset(input: BinaryInput): Dataset {
  const bytes = toBytes(input);
  if (bytes.length < 4) truncated(4, bytes.length, 'magic');
  const view = dataViewOf(bytes);
  if (view.getUint32(0, true) !== DATASET_MAGIC) {
    throw new DatasetFormatError(
      'ERR_DATASET_MAGIC',
      'not a meshgrad dataset (magic is not MGDS)',
      {
        byteOffset: 0,
      },
    );
  }
  if (bytes.length < HEADER_BYTES) truncated(HEADER_BYTES, bytes.length, 'header');
  const version = view.getUint16(4, true);
  if (version !== DATASET_FORMAT_VERSION) {
    throw new DatasetFormatError(
      'ERR_DATASET_VERSION',
      `dataset format version ${version} is not supported (this build reads ${DATASET_FORMAT_VERSION})`,
      { byteOffset: 4, field: 'version' },
    );
  }
  const flags = view.getUint16(6, true);
  const count = view.getUint32(8, true);
  const features = view.getUint32(12, true);
  const classes = view.getUint32(16, true);
  const nameBytes = view.getUint32(20, true);
  const headerError = (field: string, byteOffset: number, detail: string): never => {
    throw new DatasetFormatError('ERR_DATASET_HEADER', detail, { byteOffset, field });
  };
  if ((flags & ~FLAG_LABELLED) !== 0)
    headerError('flags', 6, `unknown flags 0x${flags.toString(16)}`);
  const labelled = (flags & FLAG_LABELLED) !== 0;
  if (count === 0) headerError('count', 8, 'dataset has no samples');
  if (features === 0) headerError('features', 12, 'samples have no features');
  if (labelled && classes === 0) headerError('classes', 16, 'labelled dataset with 0 classes');
  if (!labelled && classes !== 0)
    headerError('classes', 16, `unlabelled dataset with ${classes} classes`);
  if (nameBytes > MAX_DATASET_NAME_BYTES) {
    headerError('nameBytes', 20, `name of ${nameBytes} bytes exceeds ${MAX_DATASET_NAME_BYTES}`);
  }

  const { xStart, labelsStart, end } = layout(count, features, labelled, nameBytes);
  if (bytes.length < end)
    truncated(end, bytes.length, labelled ? 'features and labels' : 'features');
  if (bytes.length > end) {
    throw new DatasetFormatError(
      'ERR_TRAILING_BYTES',
      `${bytes.length - end} bytes after the end of the dataset (expected ${end} bytes in all)`,
      { byteOffset: end },
    );
  }
  const expectedCrc = view.getUint32(CHECKSUM_OFFSET, true);
  const actualCrc = crc32(bytes.subarray(HEADER_BYTES));
  if (expectedCrc !== actualCrc) {
    throw new DatasetFormatError(
      'ERR_DATASET_CHECKSUM',
      `checksum mismatch (header says ${hex(expectedCrc)}, content is ${hex(actualCrc)}): the data is corrupt`,
      { byteOffset: CHECKSUM_OFFSET, field: 'crc32' },
    );
  }
  let name: string;
  try {
    name = decodeUtf8(bytes.subarray(HEADER_BYTES, HEADER_BYTES + nameBytes));
  } catch {
    return headerError('name', HEADER_BYTES, 'name is not valid UTF-8');
  }
  const x = new Float32Array(count * features);
  readWords(bytes, xStart, x);
  let labels: Uint32Array | null = null;
  if (labelled) {
    labels = new Uint32Array(count);
    readWords(bytes, labelsStart, labels);
  }
  return makeDataset({ name, x, features, labels, classes });
}

function truncated(needed: number, got: number, section: string): never {
  throw new DatasetFormatError(
    'ERR_TRUNCATED',
    `input ends inside the ${section}: ${needed} bytes needed, ${got} present`,
    { byteOffset: got },
  );
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** Copies 32-bit words out little-endian, with one memcpy on little-endian hosts. */
function writeWords(out: Uint8Array, offset: number, words: Float32Array | Uint32Array): void {
  if (HOST_IS_LITTLE_ENDIAN) {
    out.set(new Uint8Array(words.buffer, words.byteOffset, words.byteLength), offset);
    return;
  }
  const view = dataViewOf(out);
  const isFloat = words instanceof Float32Array;
  for (let i = 0; i < words.length; i++) {
    if (isFloat) view.setFloat32(offset + 4 * i, words[i] as number, true);
    else view.setUint32(offset + 4 * i, words[i] as number, true);
  }
}

/** Fills `words` from little-endian bytes at `offset`; the target's buffer is always aligned. */
function readWords(bytes: Uint8Array, offset: number, words: Float32Array | Uint32Array): void {
  if (HOST_IS_LITTLE_ENDIAN) {
    new Uint8Array(words.buffer, words.byteOffset, words.byteLength).set(
      bytes.subarray(offset, offset + words.byteLength),
    );
    return;
  }
  const view = dataViewOf(bytes);
  const isFloat = words instanceof Float32Array;
  for (let i = 0; i < words.length; i++) {
    words[i] = isFloat
      ? view.getFloat32(offset + 4 * i, true)
      : view.getUint32(offset + 4 * i, true);
  }
}
