/**
 * NumPy's .npy format, versions 1.0, 2.0 and 3.0: the magic `\x93NUMPY`, a version, a header
 * length (u16 in v1, u32 after), a header holding a Python dict literal with `descr`,
 * `fortran_order` and `shape`, then the raw values. The header is parsed as a literal, never
 * evaluated.
 */
import type { Dataset, NdArray } from './dataset.ts';
import { DatasetFormatError } from './errors.ts';
import {
  datasetFromArrays,
  dataViewOf,
  decodeUtf8,
  encodeUtf8,
  shapeSize,
  toBytes,
  type ArrayFormat,
  type BinaryInput,
} from './bytes.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy pads the preamble and header so the data starts on this boundary. */
const HEADER_ALIGNMENT = 64;

export interface NpyArray extends NdArray {
  /** The file's dtype descriptor, e.g. `<f4`. */
  readonly descr: string;
  /** Whether the file stored the values column-major; `data` is row-major regardless. */
  readonly fortranOrder: boolean;
  /** Byte offset of the first value, for error locations. */
  readonly dataOffset: number;
  /** Bytes per value in the file. */
  readonly itemBytes: number;
}

/**
 * Parses a .npy file into float32, row-major. Supported dtypes: f2 f4 f8, i1 i2 i4 i8, u1 u2 u4
 * u8 and b1, little- or big-endian; f8 and 64-bit integers are rounded to float32.
 * @throws DatasetFormatError: ERR_NPY_MAGIC, ERR_NPY_VERSION, ERR_NPY_HEADER, ERR_NPY_DTYPE,
 *   ERR_TRUNCATED, ERR_TRAILING_BYTES.
 */
export function parseNpy(input: BinaryInput): NpyArray {
  const bytes = toBytes(input);
  for (let i = 0; i < MAGIC.length; i++) {
    if (i >= bytes.length) truncated(MAGIC.length, bytes.length, 'magic');
    if (bytes[i] !== MAGIC[i]) {
      throw new DatasetFormatError(
        'ERR_NPY_MAGIC',
        'not a .npy file: it must start with \\x93NUMPY',
        {
          byteOffset: i,
        },
      );
    }
  }
  if (bytes.length < 8) truncated(8, bytes.length, 'version');
  const major = bytes[6] as number;
  const minor = bytes[7] as number;
  if (major < 1 || major > 3 || minor !== 0) {
    throw new DatasetFormatError(
      'ERR_NPY_VERSION',
      `.npy format version ${major}.${minor} is not supported (1.0, 2.0 and 3.0 are)`,
      { byteOffset: 6 },
    );
  }
  const view = dataViewOf(bytes);
  const lengthBytes = major === 1 ? 2 : 4;
  const headerStart = 8 + lengthBytes;
  if (bytes.length < headerStart) truncated(headerStart, bytes.length, 'header length');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataOffset = headerStart + headerLength;
  if (bytes.length < dataOffset) truncated(dataOffset, bytes.length, 'header');

  const headerBytes = bytes.subarray(headerStart, dataOffset);
  let headerText: string;
  if (major === 3) {
    try {
      headerText = decodeUtf8(headerBytes);
    } catch {
      throw new DatasetFormatError('ERR_NPY_HEADER', '.npy v3 header is not valid UTF-8', {
        byteOffset: headerStart,
      });
    }
  } else {
    headerText = latin1(headerBytes);
  }
  const header = parseHeader(headerText, headerStart);
  const dtype = parseDescr(header.descr, header.descrOffset);
  const { shape } = header;

  const size = shapeSize(shape);
  const end = dataOffset + size * dtype.bytes;
  if (bytes.length < end) {
    truncated(end, bytes.length, `data of shape (${shape.join(', ')}) and dtype ${header.descr}`);
  }
  if (bytes.length > end) {
    throw new DatasetFormatError(
      'ERR_TRAILING_BYTES',
      `${bytes.length - end} bytes after the .npy data of shape (${shape.join(', ')})`,
      { byteOffset: end },
    );
  }
  const data = new Float32Array(size);
  const read = dtype.reader(view);
  if (!header.fortranOrder || shape.length < 2) {
    for (let i = 0, at = dataOffset; i < size; i++, at += dtype.bytes) data[i] = read(at);
  } else {
    fortranToC(shape, (c, f) => (data[c] = read(dataOffset + f * dtype.bytes)));
  }
  return {
    shape,
    data,
    descr: header.descr,
    fortranOrder: header.fortranOrder,
    dataOffset,
    itemBytes: dtype.bytes,
  };
}

/**
 * Calls `visit(cIndex, fortranIndex)` for every element, walking C (row-major) order and
 * tracking where the same element sits in Fortran (column-major) order.
 */
function fortranToC(shape: readonly number[], visit: (c: number, f: number) => void): void {
  const size = shapeSize(shape);
  const rank = shape.length;
  const fortranStrides: number[] = [];
  for (let d = 0, stride = 1; d < rank; stride *= shape[d] as number, d++)
    fortranStrides.push(stride);
  const index = new Array<number>(rank).fill(0);
  let f = 0;
  for (let c = 0; c < size; c++) {
    visit(c, f);
    for (let d = rank - 1; d >= 0; d--) {
      index[d] = (index[d] as number) + 1;
      f += fortranStrides[d] as number;
      if ((index[d] as number) < (shape[d] as number)) break;
      f -= (fortranStrides[d] as number) * (shape[d] as number);
      index[d] = 0;
    }
  }
}

function truncated(needed: number, got: number, section: string): never {
  throw new DatasetFormatError(
    'ERR_TRUNCATED',
    `.npy file ends inside the ${section}: ${needed} bytes needed, ${got} present`,
    { byteOffset: got },
  );
}

function latin1(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Header: a Python literal. We parse the small subset numpy writes (dicts, tuples, lists,
// strings, integers, booleans, None) and then check the three keys we need.

type PyValue = string | number | boolean | null | PyValue[] | PyDict;
interface PyDict {
  readonly kind: 'dict';
  readonly entries: Map<string, { value: PyValue; offset: number }>;
}
interface PyTuple extends Array<PyValue> {
  tuple?: true;
}

interface NpyHeader {
  readonly descr: string;
  readonly descrOffset: number;
  readonly fortranOrder: boolean;
  readonly shape: number[];
}

function parseHeader(text: string, baseOffset: number): NpyHeader {
  const parser = new LiteralParser(text, baseOffset);
  const root = parser.parseDocument();
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    throw new DatasetFormatError('ERR_NPY_HEADER', '.npy header is not a dict', {
      byteOffset: baseOffset,
    });
  }
  const field = (key: string) => {
    const entry = root.entries.get(key);
    if (!entry) {
      throw new DatasetFormatError('ERR_NPY_HEADER', `.npy header has no '${key}' key`, {
        byteOffset: baseOffset,
        field: key,
      });
    }
    return entry;
  };
  const wrong = (key: string, offset: number, expected: string): never => {
    throw new DatasetFormatError('ERR_NPY_HEADER', `.npy header '${key}' must be ${expected}`, {
      byteOffset: offset,
      field: key,
    });
  };

  const descr = field('descr');
  if (Array.isArray(descr.value)) {
    throw new DatasetFormatError(
      'ERR_NPY_DTYPE',
      '.npy structured (record) dtypes are not supported: save a plain numeric array',
      { byteOffset: descr.offset, field: 'descr' },
    );
  }
  if (typeof descr.value !== 'string') return wrong('descr', descr.offset, 'a dtype string');
  const fortran = field('fortran_order');
  if (typeof fortran.value !== 'boolean')
    return wrong('fortran_order', fortran.offset, 'True or False');
  const shapeEntry = field('shape');
  const shapeValue = shapeEntry.value;
  if (!Array.isArray(shapeValue) || !(shapeValue as PyTuple).tuple) {
    return wrong('shape', shapeEntry.offset, 'a tuple of non-negative integers');
  }
  const shape = shapeValue.map((dim) =>
    typeof dim === 'number' && Number.isSafeInteger(dim) && dim >= 0
      ? dim
      : wrong('shape', shapeEntry.offset, 'a tuple of non-negative integers'),
  );
  return { descr: descr.value, descrOffset: descr.offset, fortranOrder: fortran.value, shape };
}

class LiteralParser {
  private at = 0;

  constructor(
    private readonly text: string,
    private readonly baseOffset: number,
  ) {}

  parseDocument(): PyValue {
    const value = this.value();
    this.skipSpace();
    if (this.at < this.text.length) this.fail(`unexpected '${this.text[this.at]}' after the dict`);
    return value;
  }

  private fail(detail: string): never {
    throw new DatasetFormatError('ERR_NPY_HEADER', `.npy header: ${detail}`, {
      byteOffset: this.baseOffset + this.at,
    });
  }

  private skipSpace(): void {
    while (this.at < this.text.length && /\s/.test(this.text[this.at] as string)) this.at++;
  }

  private value(): PyValue {
    this.skipSpace();
    const ch = this.text[this.at];
    if (ch === undefined) return this.fail('unexpected end of header');
    if (ch === '{') return this.dict();
    if (ch === '(') return this.sequence(')', true);
    if (ch === '[') return this.sequence(']', false);
    if (ch === "'" || ch === '"') return this.string();
    const word = /^(True|False|None|[+-]?\d+L?)/.exec(this.text.slice(this.at, this.at + 32));
    if (!word) return this.fail(`unexpected '${ch}'`);
    this.at += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    return Number.parseInt(word[0], 10); // Python 2 headers may write `3L`; parseInt stops at L.
  }

  private string(): string {
    const quote = this.text[this.at];
    let out = '';
    for (this.at++; this.at < this.text.length; this.at++) {
      const ch = this.text[this.at] as string;
      if (ch === quote) {
        this.at++;
        return out;
      }
      if (ch === '\\') {
        this.at++;
        out += this.text[this.at] ?? '';
      } else {
        out += ch;
      }
    }
    return this.fail('unterminated string');
  }

  private sequence(close: string, tuple: boolean): PyValue[] {
    this.at++;
    const items: PyTuple = [];
    if (tuple) items.tuple = true;
    for (;;) {
      this.skipSpace();
      if (this.text[this.at] === close) {
        this.at++;
        return items;
      }
      items.push(this.value());
      this.skipSpace();
      if (this.text[this.at] === ',') this.at++;
      else if (this.text[this.at] !== close) this.fail(`expected ',' or '${close}'`);
    }
  }

  private dict(): PyDict {
    this.at++;
    const entries = new Map<string, { value: PyValue; offset: number }>();
    for (;;) {
      this.skipSpace();
      if (this.text[this.at] === '}') {
        this.at++;
        return { kind: 'dict', entries };
      }
      const quote = this.text[this.at];
      if (quote !== "'" && quote !== '"') this.fail('dict keys must be strings');
      const key = this.string();
      this.skipSpace();
      if (this.text[this.at] !== ':') this.fail(`expected ':' after '${key}'`);
      this.at++;
      this.skipSpace();
      const offset = this.baseOffset + this.at;
      entries.set(key, { value: this.value(), offset });
      this.skipSpace();
      if (this.text[this.at] === ',') this.at++;
      else if (this.text[this.at] !== '}') this.fail("expected ',' or '}'");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// dtypes

interface Dtype {
  readonly bytes: number;
  readonly reader: (view: DataView) => (at: number) => number;
}

function parseDescr(descr: string, byteOffset: number): Dtype {
  const match = /^([<>|=])([fiub])(\d+)$/.exec(descr);
  const unsupported = (why: string): never => {
    throw new DatasetFormatError(
      'ERR_NPY_DTYPE',
      `.npy dtype '${descr}' is not supported (${why}); use float32 (<f4), float64, integers or bool`,
      { byteOffset, field: 'descr' },
    );
  };
  if (!match) return unsupported('not a numeric dtype');
  const [, order, kind, width] = match as unknown as [string, string, string, string];
  const bytes = Number(width);
  // '|' means "byte order does not apply", numpy's marker for one-byte types.
  if (order === '|' && bytes !== 1) return unsupported("'|' byte order on a multi-byte type");
  // '=' means the writer's native order, which the file does not record.
  if (order === '=' && bytes !== 1) return unsupported("native '=' byte order is ambiguous");
  const little = order !== '>';
  const reader = readerFor(kind, bytes, little);
  return reader ? { bytes, reader } : unsupported(`no ${bytes}-byte '${kind}' type`);
}

function readerFor(
  kind: string,
  bytes: number,
  little: boolean,
): ((view: DataView) => (at: number) => number) | null {
  switch (`${kind}${bytes}`) {
    case 'f2':
      return (v) => (at) => halfToFloat(v.getUint16(at, little));
    case 'f4':
      return (v) => (at) => v.getFloat32(at, little);
    case 'f8':
      return (v) => (at) => v.getFloat64(at, little);
    case 'i1':
      return (v) => (at) => v.getInt8(at);
    case 'i2':
      return (v) => (at) => v.getInt16(at, little);
    case 'i4':
      return (v) => (at) => v.getInt32(at, little);
    case 'i8':
      return (v) => (at) => Number(v.getBigInt64(at, little));
    case 'u1':
    case 'b1':
      return (v) => (at) => v.getUint8(at);
    case 'u2':
      return (v) => (at) => v.getUint16(at, little);
    case 'u4':
      return (v) => (at) => v.getUint32(at, little);
    case 'u8':
      return (v) => (at) => Number(v.getBigUint64(at, little));
    default:
      return null;
  }
}

/** IEEE 754 binary16 to a number. */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

// ---------------------------------------------------------------------------------------------
// Writing and datasets

/**
 * Encodes a float32 array as .npy (`<f4`, C order): version 1.0, or 2.0 when the header would
 * not fit v1's 16-bit length. The data starts on a 64-byte boundary as numpy expects.
 * @throws RangeError when the shape does not match the data length.
 */
export function encodeNpy(shape: readonly number[], data: Float32Array): Uint8Array {
  if (!shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) {
    throw new RangeError(
      `encodeNpy: shape must be non-negative integers, got [${shape.join(', ')}]`,
    );
  }
  if (shapeSize(shape) !== data.length) {
    throw new RangeError(
      `encodeNpy: shape [${shape.join(', ')}] does not hold ${data.length} values`,
    );
  }
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${tuple}, }`;
  // v1 stores the header length in 16 bits; the header is the dict plus at most 64 padding bytes.
  const major = dict.length + HEADER_ALIGNMENT > 0xffff ? 2 : 1;
  const preamble = major === 1 ? 10 : 12;
  const padding =
    (HEADER_ALIGNMENT - ((preamble + dict.length + 1) % HEADER_ALIGNMENT)) % HEADER_ALIGNMENT;
  const header = encodeUtf8(`${dict}${' '.repeat(padding)}\n`);
  const dataOffset = preamble + header.length;
  const out = new Uint8Array(dataOffset + 4 * data.length);
  const view = dataViewOf(out);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(header, preamble);
  for (let i = 0; i < data.length; i++)
    view.setFloat32(dataOffset + 4 * i, data[i] as number, true);
  return out;
}

export interface NpyDatasetOptions {
  /** Dataset name, also used in error messages. */
  readonly name: string;
  /** Multiplies every feature; default 1. */
  readonly scale?: number;
}

/**
 * Builds a dataset from a features array (shape [count] or [count, ...], each sample
 * flattened) and labels (shape [count] or [count, 1], non-negative integers; null for
 * unlabelled data), each as .npy bytes or an already parsed array.
 * @throws DatasetFormatError: any parseNpy code, ERR_SHAPE, ERR_LABEL_COUNT, ERR_LABEL_VALUE, or
 *   a makeDataset code.
 */
export function datasetFromNpy(
  features: BinaryInput | NdArray,
  labels: BinaryInput | NdArray | null,
  options: NpyDatasetOptions,
): Dataset {
  return datasetFromArrays(options.name, features, labels, options.scale ?? 1, NPY_FORMAT);
}

const NPY_FORMAT: ArrayFormat = {
  parse: parseNpy,
  shapeCode: 'ERR_SHAPE',
  labelShapes: '(count,) or (count, 1)',
  shape: (dims) => `(${dims.join(', ')})`,
  samples: 'samples',
  noSamples: 'features are a scalar, not an array of samples',
};
