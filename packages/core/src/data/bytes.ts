/** Internal helpers shared by the binary readers and writers; not re-exported. */
import { makeDataset, type Dataset, type NdArray } from './dataset.ts';
import { DatasetFormatError, type DatasetErrorCode } from './errors.ts';

/** Bytes as accepted by every parser: a view or a whole buffer. */
export type BinaryInput = Uint8Array | ArrayBuffer;

export function toBytes(input: BinaryInput): Uint8Array {
  return input instanceof Uint8Array ? input : new Uint8Array(input);
}

export function dataViewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Typed arrays use the host's byte order; formats here are fixed-endian, so we need to know. */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// TextEncoder/TextDecoder exist in every runtime core targets (browsers, workers, Node ≥ 11), but
// core's tsconfig deliberately has neither DOM nor Node types, so describe the little we use.
interface Utf8Decoder {
  decode(bytes: Uint8Array): string;
}
interface Utf8Encoder {
  encode(text: string): Uint8Array;
}
const textGlobals = globalThis as unknown as {
  TextDecoder: new (label: string, options: { fatal: boolean }) => Utf8Decoder;
  TextEncoder: new () => Utf8Encoder;
};
let decoder: Utf8Decoder | undefined;
let encoder: Utf8Encoder | undefined;

/** Strict UTF-8 decoding: invalid bytes throw a TypeError rather than becoming U+FFFD. */
export function decodeUtf8(bytes: Uint8Array): string {
  decoder ??= new textGlobals.TextDecoder('utf-8', { fatal: true });
  return decoder.decode(bytes);
}

export function encodeUtf8(text: string): Uint8Array {
  encoder ??= new textGlobals.TextEncoder();
  return encoder.encode(text);
}

/**
 * Class labels from numeric values (IDX and NPY store them as numbers of any dtype): each must
 * be a non-negative integer. `byteOffsetOf` maps a label index to its byte offset in the file.
 */
export function labelsFromValues(
  values: Float32Array,
  source: string,
  byteOffsetOf?: (index: number) => number,
): Uint32Array {
  const labels = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as number;
    if (!Number.isInteger(value) || value < 0) {
      throw new DatasetFormatError(
        'ERR_LABEL_VALUE',
        `${source}: label ${value} is not a non-negative integer`,
        byteOffsetOf ? { sample: i, byteOffset: byteOffsetOf(i) } : { sample: i },
      );
    }
    labels[i] = value;
  }
  return labels;
}

/** Product of a shape's dimensions (1 for a scalar's empty shape). */
export function shapeSize(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) size *= dim;
  return size;
}

/** Returns `data` itself when the scale is 1, a scaled copy otherwise. */
export function scaled(data: Float32Array, scale: number, name: string): Float32Array {
  if (!Number.isFinite(scale) || scale === 0) {
    throw new RangeError(`${name}: scale must be finite and non-zero, got ${scale}`);
  }
  return scale === 1 ? data : data.map((v) => v * scale);
}

/** How a file format names shapes and samples in its error messages. */
export interface ShapeWording {
  /** Error code of a labels array of the wrong shape. */
  readonly shapeCode: DatasetErrorCode;
  /** The label shapes allowed, as the format's users write them, e.g. `[count] or [count, 1]`. */
  readonly labelShapes: string;
  /** A shape as the format's users write it, e.g. `[3, 1]` or `(3, 1)`. */
  readonly shape: (dims: readonly number[]) => string;
  /** What the feature rows are called, e.g. `images`. */
  readonly samples: string;
}

/** An array file format as `datasetFromArrays` reads it: its parser and its wording. */
export interface ArrayFormat extends ShapeWording {
  readonly parse: (input: BinaryInput) => NdArray;
  /** Error message (after the dataset name) for features with no sample dimension. */
  readonly noSamples: string;
}

/**
 * A dataset from a features array (the first dimension counts the samples, the rest is
 * flattened) scaled by `scale`, and labels as for `labelledDataset`; each given as bytes in
 * `format` or as an already parsed array.
 * @throws DatasetFormatError: any `format.parse` code, `format.shapeCode`, ERR_LABEL_COUNT,
 *   ERR_LABEL_VALUE, or a makeDataset code.
 */
export function datasetFromArrays(
  name: string,
  features: BinaryInput | NdArray,
  labels: BinaryInput | NdArray | null,
  scale: number,
  format: ArrayFormat,
): Dataset {
  const asArray = (input: BinaryInput | NdArray): NdArray =>
    input instanceof Uint8Array || input instanceof ArrayBuffer ? format.parse(input) : input;
  const featureArray = asArray(features);
  const [count, ...sampleShape] = featureArray.shape;
  if (count === undefined) {
    throw new DatasetFormatError(format.shapeCode, `${name}: ${format.noSamples}`);
  }
  const x = scaled(featureArray.data, scale, name);
  const labelArray = labels === null ? null : asArray(labels);
  return labelledDataset(name, x, shapeSize(sampleShape), count, labelArray, format);
}

/**
 * A dataset from `count` flattened samples of `features` values in `x`, labelled by `labels`
 * (shape [count] or [count, 1], non-negative integers) unless null. A labels array that
 * carries `dataOffset` and `itemBytes` (where its values start in the file) gets byte offsets
 * in its errors.
 * @throws DatasetFormatError: `wording.shapeCode`, ERR_LABEL_COUNT, ERR_LABEL_VALUE, or a
 *   makeDataset code.
 */
export function labelledDataset(
  name: string,
  x: Float32Array,
  features: number,
  count: number,
  labels: NdArray | null,
  wording: ShapeWording,
): Dataset {
  if (labels === null) return makeDataset({ name, x, features });
  const [labelCount, ...rest] = labels.shape;
  if (labelCount === undefined || shapeSize(rest) !== 1) {
    throw new DatasetFormatError(
      wording.shapeCode,
      `${name}: labels must have shape ${wording.labelShapes}, got ${wording.shape(labels.shape)}`,
    );
  }
  if (labelCount !== count) {
    throw new DatasetFormatError(
      'ERR_LABEL_COUNT',
      `${name}: ${count} ${wording.samples} but ${labelCount} labels`,
    );
  }
  const located = labels as Partial<{ dataOffset: number; itemBytes: number }>;
  const { dataOffset, itemBytes } = located;
  const values = labelsFromValues(
    labels.data,
    `${name} labels`,
    dataOffset !== undefined && itemBytes !== undefined
      ? (i) => dataOffset + i * itemBytes
      : undefined,
  );
  return makeDataset({ name, x, features, labels: values });
}

export { crc32 } from '../util/crc32.ts';
