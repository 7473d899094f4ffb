import { describe, expect, it } from 'vitest';
import { crc32, dataViewOf, encodeUtf8 } from './bytes.ts';
import { decodeDataset, encodeDataset, MAX_DATASET_NAME_BYTES } from './binary.ts';
import { makeDataset, type Dataset } from './dataset.ts';
import { catchFormatError } from './format-error.testing.ts';
import { Rng } from '../util/rng.ts';

function randomDataset(seed: number, labelled: boolean, name = `random-${seed}`): Dataset {
  const rng = new Rng(seed);
  const count = 2 + rng.int(40);
  const features = 1 + rng.int(9);
  const x = new Float32Array(count * features).map(() => rng.normal() * 100);
  const classes = 1 + rng.int(12);
  const labels = labelled ? new Uint32Array(count).map(() => rng.int(classes)) : null;
  return makeDataset(labelled ? { name, x, features, labels, classes } : { name, x, features });
}

function expectSameDataset(actual: Dataset, expected: Dataset): void {
  expect(actual.name).toBe(expected.name);
  expect(actual.count).toBe(expected.count);
  expect(actual.features).toBe(expected.features);
  expect(actual.classes).toBe(expected.classes);
  expect(Array.from(actual.x)).toEqual(Array.from(expected.x));
  expect(actual.labels === null ? null : Array.from(actual.labels)).toEqual(
    expected.labels === null ? null : Array.from(expected.labels),
  );
}

/** Rewrites the CRC after a deliberate edit, to reach the checks behind it. */
function resign(bytes: Uint8Array): Uint8Array {
  dataViewOf(bytes).setUint32(24, crc32(bytes.subarray(28)), true);
  return bytes;
}

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(encodeUtf8('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe('encodeDataset / decodeDataset', () => {
  it('round-trips labelled and unlabelled datasets, including every name padding', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const name = 'n'.repeat(seed % 5) + (seed % 3 === 0 ? '/ünï→' : '');
      const ds = randomDataset(seed, seed % 2 === 0, name);
      const bytes = encodeDataset(ds);
      const back = decodeDataset(bytes);
      expectSameDataset(back, ds);
      // The decoded arrays are fresh copies, not views of the input.
      expect(back.x.buffer).not.toBe(bytes.buffer);
    }
  });

  it('keeps special float values bit for bit and a class count above the largest label', () => {
    const x = new Float32Array([-0, 3.4028234663852886e38, 1.401298464324817e-45, -1.5]);
    const ds = makeDataset({
      name: 'edge',
      x,
      features: 2,
      labels: new Uint32Array([0, 0]),
      classes: 7,
    });
    const back = decodeDataset(encodeDataset(ds));
    expect(Object.is(back.x[0], -0)).toBe(true);
    expect(Array.from(back.x)).toEqual(Array.from(x));
    expect(back.classes).toBe(7);
  });

  it('decodes from an unaligned view and from an ArrayBuffer', () => {
    const ds = randomDataset(5, true);
    const encoded = encodeDataset(ds);
    const padded = new Uint8Array(encoded.length + 3);
    padded.set(encoded, 1);
    expectSameDataset(decodeDataset(padded.subarray(1, 1 + encoded.length)), ds);
    expectSameDataset(decodeDataset(encoded.slice().buffer), ds);
  });

  it('rejects a wrong magic and an unknown version', () => {
    const bytes = encodeDataset(randomDataset(1, true));
    const wrongMagic = bytes.slice();
    wrongMagic[0] = 0x4e;
    expect(catchFormatError(() => decodeDataset(wrongMagic), 'ERR_DATASET_MAGIC').where).toEqual({
      byteOffset: 0,
    });
    const v2 = bytes.slice();
    dataViewOf(v2).setUint16(4, 2, true);
    const err = catchFormatError(() => decodeDataset(v2), 'ERR_DATASET_VERSION');
    expect(err.message).toMatch(/version 2/);
    expect(err.where.field).toBe('version');
  });

  it('reports every truncation as ERR_TRUNCATED with the length it got', () => {
    const bytes = encodeDataset(randomDataset(2, true, 'abc'));
    for (let length = 0; length < bytes.length; length++) {
      const err = catchFormatError(() => decodeDataset(bytes.subarray(0, length)), 'ERR_TRUNCATED');
      expect(err.where.byteOffset).toBe(length);
    }
  });

  it('rejects trailing bytes, corrupt content and inconsistent headers', () => {
    const ds = randomDataset(3, true);
    const bytes = encodeDataset(ds);
    const longer = new Uint8Array(bytes.length + 4);
    longer.set(bytes);
    expect(catchFormatError(() => decodeDataset(longer), 'ERR_TRAILING_BYTES').where).toEqual({
      byteOffset: bytes.length,
    });

    for (const offset of [28, 40, bytes.length - 1]) {
      const flipped = bytes.slice();
      flipped[offset] = (flipped[offset] as number) ^ 0x10;
      catchFormatError(() => decodeDataset(flipped), 'ERR_DATASET_CHECKSUM');
    }

    const flags = bytes.slice();
    dataViewOf(flags).setUint16(6, 0x3, true);
    expect(catchFormatError(() => decodeDataset(flags), 'ERR_DATASET_HEADER').where.field).toBe(
      'flags',
    );
    // A huge announced count must fail on length, before any allocation.
    const huge = bytes.slice();
    dataViewOf(huge).setUint32(8, 0xffffffff, true);
    catchFormatError(() => decodeDataset(huge), 'ERR_TRUNCATED');
    const longName = bytes.slice();
    dataViewOf(longName).setUint32(20, MAX_DATASET_NAME_BYTES + 1, true);
    expect(catchFormatError(() => decodeDataset(longName), 'ERR_DATASET_HEADER').where.field).toBe(
      'nameBytes',
    );
    const noClasses = bytes.slice();
    dataViewOf(noClasses).setUint32(16, 0, true);
    catchFormatError(() => decodeDataset(noClasses), 'ERR_DATASET_HEADER');
  });

  it('validates the content behind a valid checksum', () => {
    const ds = randomDataset(4, true);
    const bytes = encodeDataset(ds);
    const xStart = 28 + ((ds.name.length + 3) & ~3);
    const labelsStart = xStart + 4 * ds.count * ds.features;

    const badLabel = bytes.slice();
    dataViewOf(badLabel).setUint32(labelsStart + 4 * (ds.count - 1), ds.classes, true);
    const labelErr = catchFormatError(() => decodeDataset(resign(badLabel)), 'ERR_LABEL_VALUE');
    expect(labelErr.where.sample).toBe(ds.count - 1);

    const nan = bytes.slice();
    dataViewOf(nan).setFloat32(xStart + 4 * ds.features, NaN, true);
    const nanErr = catchFormatError(() => decodeDataset(resign(nan)), 'ERR_NON_FINITE');
    expect(nanErr.where).toEqual({ sample: 1, feature: 0 });

    const badName = encodeDataset(
      makeDataset({ name: 'ab', x: new Float32Array([1]), features: 1 }),
    );
    badName[28] = 0xff;
    expect(
      catchFormatError(() => decodeDataset(resign(badName)), 'ERR_DATASET_HEADER').where.field,
    ).toBe('name');
  });

  it('refuses to encode a name over the limit', () => {
    const ds = makeDataset({
      name: 'x'.repeat(MAX_DATASET_NAME_BYTES + 1),
      x: new Float32Array(1),
      features: 1,
    });
    expect(() => encodeDataset(ds)).toThrow(RangeError);
  });
});
