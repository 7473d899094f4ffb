import { describe, expect, it } from 'vitest';
import { catchFormatError } from './format-error.testing.ts';
import { datasetFromIdx, parseIdx } from './idx.ts';
import { Rng } from '../util/rng.ts';

const TYPES = {
  u8: { code: 0x08, bytes: 1, write: (v: DataView, at: number, x: number) => v.setUint8(at, x) },
  i8: { code: 0x09, bytes: 1, write: (v: DataView, at: number, x: number) => v.setInt8(at, x) },
  i16: { code: 0x0b, bytes: 2, write: (v: DataView, at: number, x: number) => v.setInt16(at, x) },
  i32: { code: 0x0c, bytes: 4, write: (v: DataView, at: number, x: number) => v.setInt32(at, x) },
  f32: { code: 0x0d, bytes: 4, write: (v: DataView, at: number, x: number) => v.setFloat32(at, x) },
  f64: { code: 0x0e, bytes: 8, write: (v: DataView, at: number, x: number) => v.setFloat64(at, x) },
} as const;
type TypeName = keyof typeof TYPES;

/** Writes an IDX file by hand (DataView defaults to big-endian, as IDX is). */
function idx(type: TypeName, shape: number[], values: ArrayLike<number>): Uint8Array {
  const { code, bytes, write } = TYPES[type];
  const header = 4 + 4 * shape.length;
  const out = new Uint8Array(header + values.length * bytes);
  const view = new DataView(out.buffer);
  out[2] = code;
  out[3] = shape.length;
  shape.forEach((dim, d) => view.setUint32(4 + 4 * d, dim));
  for (let i = 0; i < values.length; i++) write(view, header + i * bytes, values[i] as number);
  return out;
}

/** Random values that every type can represent exactly. */
function valuesFor(type: TypeName, count: number, rng: Rng): number[] {
  return Array.from({ length: count }, () => {
    switch (type) {
      case 'u8':
        return rng.int(256);
      case 'i8':
        return rng.int(256) - 128;
      case 'i16':
        return rng.int(65536) - 32768;
      case 'i32':
        return rng.int(1 << 24) - (1 << 23);
      case 'f32':
        return Math.fround(rng.normal() * 1e3);
      case 'f64':
        return Math.fround(rng.normal() * 1e-3);
    }
  });
}

describe('parseIdx', () => {
  it('reads every element type big-endian, in row-major order', () => {
    const rng = new Rng(11);
    for (const type of Object.keys(TYPES) as TypeName[]) {
      const shape = [2, 3, 2];
      const values = valuesFor(type, 12, rng);
      const parsed = parseIdx(idx(type, shape, values));
      expect(parsed.type).toBe(type);
      expect(parsed.shape).toEqual(shape);
      expect(Array.from(parsed.data)).toEqual(values);
    }
  });

  it('accepts an ArrayBuffer and an unaligned view', () => {
    const file = idx('i16', [3], [-1, 2, 300]);
    expect(Array.from(parseIdx(file.slice().buffer).data)).toEqual([-1, 2, 300]);
    const padded = new Uint8Array(file.length + 1);
    padded.set(file, 1);
    expect(Array.from(parseIdx(padded.subarray(1)).data)).toEqual([-1, 2, 300]);
  });

  it('rejects bad magic, gzip input, unknown types and zero dimensions', () => {
    const file = idx('u8', [2], [1, 2]);
    const bad = file.slice();
    bad[1] = 0x01;
    expect(catchFormatError(() => parseIdx(bad), 'ERR_IDX_MAGIC').where).toEqual({ byteOffset: 0 });
    const gz = new Uint8Array([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0]);
    expect(catchFormatError(() => parseIdx(gz), 'ERR_IDX_MAGIC').message).toMatch(/gzip/);
    const unknown = file.slice();
    unknown[2] = 0x0a;
    const typeErr = catchFormatError(() => parseIdx(unknown), 'ERR_IDX_TYPE');
    expect(typeErr.where.byteOffset).toBe(2);
    expect(typeErr.message).toMatch(/0x0a/);
    catchFormatError(() => parseIdx(new Uint8Array([0, 0, 8, 0])), 'ERR_IDX_DIMS');
  });

  it('reports truncation where the file ends and trailing bytes where the data ends', () => {
    const file = idx('i32', [2, 2], [1, 2, 3, 4]);
    for (const length of [0, 3, 7, 11, file.length - 1]) {
      const err = catchFormatError(() => parseIdx(file.subarray(0, length)), 'ERR_TRUNCATED');
      expect(err.where.byteOffset).toBe(length);
    }
    const longer = new Uint8Array(file.length + 2);
    longer.set(file);
    expect(catchFormatError(() => parseIdx(longer), 'ERR_TRAILING_BYTES').where).toEqual({
      byteOffset: file.length,
    });
    // Dimensions that multiply past the file (or past 2^53) are truncation, not an allocation.
    const huge = idx('u8', [0xffffffff, 0xffffffff, 0xffffffff], []);
    catchFormatError(() => parseIdx(huge), 'ERR_TRUNCATED');
  });
});

describe('datasetFromIdx', () => {
  it('builds an MNIST-style dataset: flattened u8 images, scaled, with u8 labels', () => {
    const rng = new Rng(5);
    const pixels = valuesFor('u8', 4 * 3 * 2, rng);
    const labelValues = [3, 0, 9, 3];
    const ds = datasetFromIdx(idx('u8', [4, 3, 2], pixels), idx('u8', [4], labelValues), {
      name: 'tiny',
      scale: 1 / 255,
    });
    expect(ds.name).toBe('tiny');
    expect(ds.count).toBe(4);
    expect(ds.features).toBe(6);
    expect(ds.classes).toBe(10);
    expect(Array.from(ds.labels ?? [])).toEqual(labelValues);
    expect(Array.from(ds.x)).toEqual(pixels.map((p) => Math.fround(p * (1 / 255))));
  });

  it('accepts unlabelled data, parsed arrays and [count, 1] labels', () => {
    const images = parseIdx(idx('f32', [3], [0.5, -1, 2]));
    const unlabelled = datasetFromIdx(images, null, { name: 'u' });
    expect([unlabelled.count, unlabelled.features, unlabelled.classes]).toEqual([3, 1, 0]);
    expect(unlabelled.labels).toBeNull();
    const labelled = datasetFromIdx(images, idx('i32', [3, 1], [1, 0, 1]), { name: 'l' });
    expect(Array.from(labelled.labels ?? [])).toEqual([1, 0, 1]);
  });

  it('rejects mismatched counts, label shapes and invalid labels with their location', () => {
    const images = idx('u8', [3, 2], [1, 2, 3, 4, 5, 6]);
    const countErr = catchFormatError(
      () => datasetFromIdx(images, idx('u8', [2], [0, 1]), { name: 'm' }),
      'ERR_LABEL_COUNT',
    );
    expect(countErr.message).toMatch(/3 images but 2 labels/);
    catchFormatError(
      () => datasetFromIdx(images, idx('u8', [3, 2], [0, 1, 0, 1, 0, 1]), { name: 'm' }),
      'ERR_IDX_DIMS',
    );
    const negative = catchFormatError(
      () => datasetFromIdx(images, idx('i8', [3], [0, -1, 2]), { name: 'm' }),
      'ERR_LABEL_VALUE',
    );
    expect(negative.where).toEqual({ sample: 1, byteOffset: 8 + 1 });
    const fractional = catchFormatError(
      () => datasetFromIdx(images, idx('f64', [3], [0, 1, 2.5]), { name: 'm' }),
      'ERR_LABEL_VALUE',
    );
    expect(fractional.where).toEqual({ sample: 2, byteOffset: 8 + 16 });
    const nan = catchFormatError(
      () => datasetFromIdx(idx('f32', [2, 2], [0, 1, NaN, 3]), null, { name: 'n' }),
      'ERR_NON_FINITE',
    );
    expect(nan.where).toEqual({ sample: 1, feature: 0 });
    catchFormatError(
      () => datasetFromIdx(idx('u8', [0, 4], []), null, { name: 'empty' }),
      'ERR_EMPTY',
    );
  });
});
