/**
 * IDX, the format of the original MNIST distribution: two zero bytes, a type byte, a dimension
 * count, big-endian u32 dimensions, then the values big-endian in row-major order.
 */
import type { Dataset, NdArray } from './dataset.ts';
import { DatasetFormatError } from './errors.ts';
import {
  datasetFromArrays,
  dataViewOf,
  shapeSize,
  toBytes,
  type ArrayFormat,
  type BinaryInput,
} from './bytes.ts';

export type IdxType = 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';

export interface IdxArray extends NdArray {
  /** The element type stored in the file. */
  readonly type: IdxType;
  /** Byte offset of the first value, for error locations. */
  readonly dataOffset: number;
  /** Bytes per value in the file. */
  readonly itemBytes: number;
}

const IDX_TYPES: ReadonlyMap<number, { type: IdxType; bytes: number }> = new Map([
  [0x08, { type: 'u8', bytes: 1 }],
  [0x09, { type: 'i8', bytes: 1 }],
  [0x0b, { type: 'i16', bytes: 2 }],
  [0x0c, { type: 'i32', bytes: 4 }],
  [0x0d, { type: 'f32', bytes: 4 }],
  [0x0e, { type: 'f64', bytes: 8 }],
]);

/**
 * Parses an IDX file. The file must hold exactly the values its header announces.
 * @throws DatasetFormatError: ERR_IDX_MAGIC, ERR_IDX_TYPE, ERR_IDX_DIMS, ERR_TRUNCATED,
 *   ERR_TRAILING_BYTES.
 */
export function parseIdx(input: BinaryInput): IdxArray {
  const bytes = toBytes(input);
  if (bytes.length < 4) {
    throw new DatasetFormatError('ERR_TRUNCATED', `IDX header needs 4 bytes, got ${bytes.length}`, {
      byteOffset: bytes.length,
    });
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const gzip = bytes[0] === 0x1f && bytes[1] === 0x8b;
    throw new DatasetFormatError(
      'ERR_IDX_MAGIC',
      gzip
        ? 'IDX file is gzip-compressed (.gz): decompress it first'
        : `not an IDX file: it must start with two zero bytes, found 0x${hexByte(bytes[0])} 0x${hexByte(bytes[1])}`,
      { byteOffset: 0 },
    );
  }
  const typeByte = bytes[2] as number;
  const kind = IDX_TYPES.get(typeByte);
  if (!kind) {
    throw new DatasetFormatError(
      'ERR_IDX_TYPE',
      `unknown IDX element type 0x${hexByte(typeByte)} (expected 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32 or 0x0E f64)`,
      { byteOffset: 2 },
    );
  }
  const ndims = bytes[3] as number;
  if (ndims === 0) {
    throw new DatasetFormatError('ERR_IDX_DIMS', 'IDX file declares 0 dimensions', {
      byteOffset: 3,
    });
  }
  const dataOffset = 4 + 4 * ndims;
  if (bytes.length < dataOffset) {
    throw new DatasetFormatError(
      'ERR_TRUNCATED',
      `IDX header declares ${ndims} dimensions (${dataOffset} header bytes) but the file has ${bytes.length} bytes`,
      { byteOffset: bytes.length },
    );
  }
  const view = dataViewOf(bytes);
  const shape: number[] = [];
  for (let d = 0; d < ndims; d++) shape.push(view.getUint32(4 + 4 * d, false));
  const size = shapeSize(shape);
  const end = dataOffset + size * kind.bytes;
  if (bytes.length < end) {
    throw new DatasetFormatError(
      'ERR_TRUNCATED',
      `IDX data of shape [${shape.join(', ')}] needs ${end} bytes, the file has ${bytes.length}`,
      { byteOffset: bytes.length },
    );
  }
  if (bytes.length > end) {
    throw new DatasetFormatError(
      'ERR_TRAILING_BYTES',
      `${bytes.length - end} bytes after the IDX data of shape [${shape.join(', ')}]`,
      { byteOffset: end },
    );
  }
  const data = new Float32Array(size);
  const read = readerFor(kind.type, view);
  for (let i = 0, at = dataOffset; i < size; i++, at += kind.bytes) data[i] = read(at);
  return { shape, data, type: kind.type, dataOffset, itemBytes: kind.bytes };
}

function readerFor(type: IdxType, view: DataView): (at: number) => number {
  switch (type) {
    case 'u8':
      return (at) => view.getUint8(at);
    case 'i8':
      return (at) => view.getInt8(at);
    case 'i16':
      return (at) => view.getInt16(at, false);
    case 'i32':
      return (at) => view.getInt32(at, false);
    case 'f32':
      return (at) => view.getFloat32(at, false);
    case 'f64':
      return (at) => view.getFloat64(at, false);
  }
}

function hexByte(value: number | undefined): string {
  return (value ?? 0).toString(16).padStart(2, '0');
}

export interface IdxDatasetOptions {
  /** Dataset name, also used in error messages. */
  readonly name: string;
  /** Multiplies every feature; default 1. Use 1/255 for u8 images such as MNIST's. */
  readonly scale?: number;
}

/**
 * Builds a dataset from an IDX images file (shape [count, ...], each sample flattened) and an
 * optional IDX labels file (shape [count] or [count, 1], non-negative integers). Either may be
 * given as bytes or as an already parsed array.
 * @throws DatasetFormatError: any parseIdx code, ERR_IDX_DIMS, ERR_LABEL_COUNT, ERR_LABEL_VALUE,
 *   or a makeDataset code.
 */
export function datasetFromIdx(
  images: BinaryInput | NdArray,
  labels: BinaryInput | NdArray | null,
  options: IdxDatasetOptions,
): Dataset {
  return datasetFromArrays(options.name, images, labels, options.scale ?? 1, IDX_FORMAT);
}

const IDX_FORMAT: ArrayFormat = {
  parse: parseIdx,
  shapeCode: 'ERR_IDX_DIMS',
  labelShapes: '[count] or [count, 1]',
  shape: (dims) => `[${dims.join(', ')}]`,
  samples: 'images',
  noSamples: 'images have no dimensions',
};
