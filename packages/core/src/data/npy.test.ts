import { describe, expect, it } from 'vitest';
import { catchFormatError } from './format-error.testing.ts';
import { datasetFromNpy, encodeNpy, parseNpy } from './npy.ts';
import { Rng } from '../util/rng.ts';

type Writer = (view: DataView, at: number, value: number, little: boolean) => void;
const WRITERS: Record<string, { bytes: number; write: Writer }> = {
  f4: { bytes: 4, write: (v, at, x, le) => v.setFloat32(at, x, le) },
  f8: { bytes: 8, write: (v, at, x, le) => v.setFloat64(at, x, le) },
  i1: { bytes: 1, write: (v, at, x) => v.setInt8(at, x) },
  u1: { bytes: 1, write: (v, at, x) => v.setUint8(at, x) },
  b1: { bytes: 1, write: (v, at, x) => v.setUint8(at, x) },
  i2: { bytes: 2, write: (v, at, x, le) => v.setInt16(at, x, le) },
  u2: { bytes: 2, write: (v, at, x, le) => v.setUint16(at, x, le) },
  i4: { bytes: 4, write: (v, at, x, le) => v.setInt32(at, x, le) },
  u4: { bytes: 4, write: (v, at, x, le) => v.setUint32(at, x, le) },
  i8: { bytes: 8, write: (v, at, x, le) => v.setBigInt64(at, BigInt(x), le) },
  u8: { bytes: 8, write: (v, at, x, le) => v.setBigUint64(at, BigInt(x), le) },
};

/** Packs values in file order for a descr such as `<i2` or `|u1`. */
function pack(descr: string, values: readonly number[]): Uint8Array {
  const spec = WRITERS[descr.slice(1)];
  if (!spec) throw new Error(`test has no writer for ${descr}`);
  const out = new Uint8Array(values.length * spec.bytes);
  const view = new DataView(out.buffer);
  values.forEach((value, i) => spec.write(view, i * spec.bytes, value, descr[0] !== '>'));
  return out;
}

/** A .npy file written by hand: preamble, header text padded to 64 bytes, then `data`. */
function npyFile(header: string, data: Uint8Array, major = 1, pad = true): Uint8Array {
  const lengthBytes = major === 1 ? 2 : 4;
  const preamble = 8 + lengthBytes;
  const padding = pad ? (64 - ((preamble + header.length + 1) % 64)) % 64 : 0;
  const text = `${header}${' '.repeat(padding)}\n`;
  const headerBytes = new TextEncoder().encode(text);
  const out = new Uint8Array(preamble + headerBytes.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, headerBytes.length, true);
  else view.setUint32(8, headerBytes.length, true);
  out.set(headerBytes, preamble);
  out.set(data, preamble + headerBytes.length);
  return out;
}

function headerFor(descr: string, shape: readonly number[], fortran = false): string {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  return `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${tuple}, }`;
}

/** Row-major values → column-major storage, by explicit index arithmetic. */
function toFortran(shape: readonly [number, number, number], values: readonly number[]): number[] {
  const [a, b, c] = shape;
  const out = new Array<number>(values.length);
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      for (let k = 0; k < c; k++) out[i + a * (j + b * k)] = values[(i * b + j) * c + k] as number;
    }
  }
  return out;
}

function sample(descr: string, count: number, rng: Rng): number[] {
  const kind = descr.slice(1);
  return Array.from({ length: count }, () => {
    switch (kind) {
      case 'f4':
      case 'f8':
        return Math.fround(rng.normal() * 50);
      case 'i1':
        return rng.int(256) - 128;
      case 'u1':
        return rng.int(256);
      case 'b1':
        return rng.int(2);
      case 'i2':
        return rng.int(65536) - 32768;
      case 'u2':
        return rng.int(65536);
      case 'u4':
      case 'u8':
        return rng.int(1 << 24);
      default:
        return rng.int(1 << 24) - (1 << 23);
    }
  });
}

describe('parseNpy', () => {
  const descrs = ['<f4', '<f8', '|u1', '|i1', '|b1', '<i2', '<u2', '<i4', '<u4', '<i8', '<u8'];
  const bigEndian = ['>f4', '>f8', '>i2', '>i4', '>i8', '>u2'];

  it('reads every supported dtype, little- and big-endian, in C order', () => {
    const rng = new Rng(1);
    for (const descr of [...descrs, ...bigEndian]) {
      const values = sample(descr, 12, rng);
      const parsed = parseNpy(npyFile(headerFor(descr, [3, 4]), pack(descr, values)));
      expect(parsed.descr).toBe(descr);
      expect(parsed.shape).toEqual([3, 4]);
      expect(parsed.fortranOrder).toBe(false);
      expect(Array.from(parsed.data), descr).toEqual(values);
    }
  });

  it('reorders Fortran-order arrays to row-major', () => {
    const rng = new Rng(2);
    const shape = [2, 3, 4] as const;
    for (const descr of ['<f4', '>i2', '|u1']) {
      const values = sample(descr, 24, rng);
      const file = npyFile(headerFor(descr, shape, true), pack(descr, toFortran(shape, values)));
      const parsed = parseNpy(file);
      expect(parsed.fortranOrder).toBe(true);
      expect(parsed.shape).toEqual([...shape]);
      expect(Array.from(parsed.data), descr).toEqual(values);
    }
    // 2-D, the common case: [[1, 2, 3], [4, 5, 6]] is stored 1 4 2 5 3 6.
    const matrix = parseNpy(
      npyFile(headerFor('<i4', [2, 3], true), pack('<i4', [1, 4, 2, 5, 3, 6])),
    );
    expect(Array.from(matrix.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads half floats, scalars, versions 2 and 3 and loosely formatted headers', () => {
    const half = parseNpy(
      npyFile(
        headerFor('<f2', [4]),
        new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x35, 0x01, 0x00]),
      ),
    );
    expect(Array.from(half.data)).toEqual([1, -2, 0.3125, 2 ** -24]);
    const scalar = parseNpy(npyFile(headerFor('<f8', []), pack('<f8', [2.5])));
    expect(scalar.shape).toEqual([]);
    expect(Array.from(scalar.data)).toEqual([2.5]);
    for (const major of [2, 3]) {
      const parsed = parseNpy(npyFile(headerFor('<i2', [2]), pack('<i2', [-7, 7]), major));
      expect(Array.from(parsed.data)).toEqual([-7, 7]);
    }
    const loose = `{"shape":(2L,),"fortran_order":False,"descr":"<u2","extra":[1,None]}`;
    expect(Array.from(parseNpy(npyFile(loose, pack('<u2', [5, 6]), 1, false)).data)).toEqual([
      5, 6,
    ]);
  });

  it('rejects bad magic, unknown versions and truncated preambles', () => {
    const good = npyFile(headerFor('<f4', [2]), pack('<f4', [1, 2]));
    const bad = good.slice();
    bad[1] = 0x4f;
    expect(catchFormatError(() => parseNpy(bad), 'ERR_NPY_MAGIC').where).toEqual({ byteOffset: 1 });
    const v4 = good.slice();
    v4[6] = 4;
    expect(catchFormatError(() => parseNpy(v4), 'ERR_NPY_VERSION').message).toMatch(/4\.0/);
    for (const length of [0, 3, 6, 9, 20, good.length - 1]) {
      const err = catchFormatError(() => parseNpy(good.subarray(0, length)), 'ERR_TRUNCATED');
      expect(err.where.byteOffset).toBe(length);
    }
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    catchFormatError(() => parseNpy(longer), 'ERR_TRAILING_BYTES');
  });

  it('rejects malformed headers, naming the field and where it is', () => {
    const data = pack('<f4', [1, 2]);
    const missing = catchFormatError(
      () => parseNpy(npyFile(`{'descr': '<f4', 'shape': (2,), }`, data)),
      'ERR_NPY_HEADER',
    );
    expect(missing.where.field).toBe('fortran_order');
    const header = `{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }`;
    const badBool = catchFormatError(() => parseNpy(npyFile(header, data)), 'ERR_NPY_HEADER');
    expect(badBool.where).toEqual({
      field: 'fortran_order',
      byteOffset: 10 + header.indexOf('0,'),
    });
    const badShape = catchFormatError(
      () => parseNpy(npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }`, data)),
      'ERR_NPY_HEADER',
    );
    expect(badShape.where.field).toBe('shape');
    catchFormatError(
      () => parseNpy(npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': [2], }`, data)),
      'ERR_NPY_HEADER',
    );
    const syntax = `{'descr': '<f4' 'fortran_order': False}`;
    const syntaxErr = catchFormatError(() => parseNpy(npyFile(syntax, data)), 'ERR_NPY_HEADER');
    expect(syntaxErr.where.byteOffset).toBe(10 + syntax.indexOf(" 'fortran") + 1);
    catchFormatError(() => parseNpy(npyFile(`[1, 2]`, data)), 'ERR_NPY_HEADER');
    catchFormatError(() => parseNpy(npyFile(`{'descr': '<f4`, data)), 'ERR_NPY_HEADER');
  });

  it('rejects unsupported dtypes, saying which', () => {
    const data = new Uint8Array(16);
    for (const descr of ['<c8', '|O', '<U4', '<M8', '<f16', '|f4', '=i4']) {
      const err = catchFormatError(
        () => parseNpy(npyFile(headerFor(descr, [2]), data)),
        'ERR_NPY_DTYPE',
      );
      expect(err.message).toContain(`'${descr}'`);
      expect(err.where.field).toBe('descr');
    }
    const structured = `{'descr': [('x', '<f4'), ('y', '<f4')], 'fortran_order': False, 'shape': (2,), }`;
    expect(
      catchFormatError(() => parseNpy(npyFile(structured, data)), 'ERR_NPY_DTYPE').message,
    ).toMatch(/structured/);
  });
});

describe('encodeNpy', () => {
  it('writes a <f4 C-order v1 file aligned to 64 bytes that parseNpy reads back', () => {
    const rng = new Rng(3);
    for (const shape of [[5], [2, 3], [2, 2, 2], []]) {
      const size = shape.reduce((a, b) => a * b, 1);
      const values = Float32Array.from({ length: size }, () => rng.normal());
      const bytes = encodeNpy(shape, values);
      expect(bytes[6]).toBe(1);
      const headerLength = new DataView(bytes.buffer).getUint16(8, true);
      expect((10 + headerLength) % 64).toBe(0);
      const text = new TextDecoder().decode(bytes.subarray(10, 10 + headerLength));
      expect(text.endsWith('\n')).toBe(true);
      expect(text).toContain(`'descr': '<f4'`);
      const parsed = parseNpy(bytes);
      expect(parsed.shape).toEqual(shape);
      expect(Array.from(parsed.data)).toEqual(Array.from(values));
    }
    expect(() => encodeNpy([2, 2], new Float32Array(3))).toThrow(RangeError);
  });
});

describe('datasetFromNpy', () => {
  it('flattens samples, scales features and reads integer labels of any dtype', () => {
    const x = Float32Array.from({ length: 3 * 2 * 2 }, (_, i) => i);
    const features = encodeNpy([3, 2, 2], x);
    const labels = npyFile(headerFor('<i8', [3, 1]), pack('<i8', [2, 0, 1]));
    const ds = datasetFromNpy(features, labels, { name: 'npy', scale: 0.5 });
    expect([ds.count, ds.features, ds.classes]).toEqual([3, 4, 3]);
    expect(Array.from(ds.x)).toEqual(Array.from(x, (v) => v * 0.5));
    expect(Array.from(ds.labels ?? [])).toEqual([2, 0, 1]);
    const unlabelled = datasetFromNpy(encodeNpy([4], new Float32Array(4)), null, { name: 'u' });
    expect([unlabelled.count, unlabelled.features]).toEqual([4, 1]);
  });

  it('rejects label count mismatches, bad label shapes and invalid labels', () => {
    const features = encodeNpy([3, 2], new Float32Array(6));
    const twoLabels = npyFile(headerFor('|u1', [2]), pack('|u1', [0, 1]));
    expect(
      catchFormatError(() => datasetFromNpy(features, twoLabels, { name: 'm' }), 'ERR_LABEL_COUNT')
        .message,
    ).toMatch(/3 samples but 2 labels/);
    const matrix = npyFile(headerFor('|u1', [3, 2]), pack('|u1', [0, 1, 0, 1, 0, 1]));
    catchFormatError(() => datasetFromNpy(features, matrix, { name: 'm' }), 'ERR_SHAPE');
    const negative = npyFile(headerFor('<i4', [3]), pack('<i4', [0, 1, -3]));
    const err = catchFormatError(
      () => datasetFromNpy(features, negative, { name: 'm' }),
      'ERR_LABEL_VALUE',
    );
    const dataStart = 10 + new DataView(negative.buffer).getUint16(8, true);
    expect(err.where).toEqual({ sample: 2, byteOffset: dataStart + 2 * 4 });
    const scalar = encodeNpy([], new Float32Array([1]));
    catchFormatError(() => datasetFromNpy(scalar, null, { name: 's' }), 'ERR_SHAPE');
    const inf = encodeNpy([2, 1], new Float32Array([1, Infinity]));
    expect(
      catchFormatError(() => datasetFromNpy(inf, null, { name: 'i' }), 'ERR_NON_FINITE').where,
    ).toEqual({ sample: 1, feature: 0 });
  });
});
