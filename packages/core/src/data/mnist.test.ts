import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Dataset } from './dataset.ts';
import { DatasetFormatError } from './errors.ts';
import { loadMnist, mnistFromDigitArrays, MNIST_FEATURES, type MnistSplit } from './mnist.ts';
import { Rng } from '../util/rng.ts';

const require = createRequire(import.meta.url);

/** The package's raw digit arrays, read independently of the loader under test. */
function readDigitArrays(): number[][] {
  return Array.from({ length: 10 }, (_, digit) => {
    const path = require.resolve(`mnist/src/digits/${digit}.json`);
    return (JSON.parse(readFileSync(path, 'utf8')) as { data: number[] }).data;
  });
}

/**
 * A content key for one image (two FNV-1a hashes of its float32 bits), so samples can be matched
 * to their source without trusting any index the loader reports.
 */
const keyBits = new Uint32Array(new Float32Array(MNIST_FEATURES).buffer);
const keyFloats = new Float32Array(keyBits.buffer);
function imageKey(pixels: ArrayLike<number>, offset: number): string {
  for (let p = 0; p < MNIST_FEATURES; p++) keyFloats[p] = pixels[offset + p] as number;
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const bits of keyBits) {
    h1 = Math.imul(h1 ^ bits, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ bits ^ (h1 >>> 7), 0x5bd1e995) >>> 0;
  }
  return `${h1.toString(16)}.${h2.toString(16)}`;
}

/** Exact equality of two typed arrays; faster than a deep toEqual on millions of elements. */
function sameValues(a: ArrayLike<number> | null, b: ArrayLike<number> | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

function countKeys(keys: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

function* datasetKeys(ds: Dataset): Generator<string> {
  for (let i = 0; i < ds.count; i++) yield `${ds.labels?.[i]}:${imageKey(ds.x, i * ds.features)}`;
}

/** Small fake digits: image j of digit d holds d, j and noise, so every image is unique. */
function fakeDigits(seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: 10 }, (_, digit) => {
    const images = 5 + rng.int(12);
    const data = new Float32Array(images * MNIST_FEATURES);
    for (let i = 0; i < data.length; i++) data[i] = rng.next();
    for (let j = 0; j < images; j++) {
      data[j * MNIST_FEATURES] = digit / 10;
      data[j * MNIST_FEATURES + 1] = j / 100;
    }
    return data;
  });
}

describe('loadMnist (the real package data)', () => {
  let split: MnistSplit;
  let source: number[][];
  beforeAll(async () => {
    [split, source] = await Promise.all([loadMnist(), Promise.resolve(readDigitArrays())]);
  });

  it('yields every one of the package images once, 784 features in [0, 1], 8,000 / 2,000', () => {
    const { train, test } = split;
    const sourceCount = source.reduce((sum, data) => sum + data.length / MNIST_FEATURES, 0);
    expect(sourceCount).toBe(10_000);
    expect(train.count + test.count).toBe(sourceCount);
    expect([train.count, test.count]).toEqual([8_000, 2_000]);
    for (const ds of [train, test]) {
      expect(ds.features).toBe(784);
      expect(ds.classes).toBe(10);
      expect(ds.x.length).toBe(ds.count * 784);
      expect(ds.labels?.length).toBe(ds.count);
      let min = Infinity;
      let max = -Infinity;
      for (const v of ds.x) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      expect(min).toBe(0);
      expect(max).toBe(1);
    }
    // Train ∪ test is exactly the source multiset, and every label names its source digit.
    const expected = countKeys(
      source.flatMap((data, digit) =>
        Array.from(
          { length: data.length / MNIST_FEATURES },
          (_, i) => `${digit}:${imageKey(data, i * MNIST_FEATURES)}`,
        ),
      ),
    );
    const actual = countKeys([...datasetKeys(train), ...datasetKeys(test)]);
    expect(actual).toEqual(expected);
  });

  it('is stratified: each digit is held out in proportion to its frequency', () => {
    const { train, test } = split;
    for (let digit = 0; digit < 10; digit++) {
      const inSource = (source[digit] as number[]).length / MNIST_FEATURES;
      const inTest = test.labels?.filter((l) => l === digit).length ?? -1;
      const inTrain = train.labels?.filter((l) => l === digit).length ?? -1;
      expect(inTest + inTrain).toBe(inSource);
      expect(Math.abs(inTest - inSource * 0.2)).toBeLessThan(1);
    }
  });

  it('interleaves digits instead of sorting them', () => {
    const firstHundred = new Set(split.train.labels?.subarray(0, 100));
    expect(firstHundred.size).toBe(10);
  });

  it('gives the same split on every call', async () => {
    const again = await loadMnist();
    // A fresh copy, not a cached object (a deep `not.toBe` here would compare 6M floats).
    expect(again.train.x === split.train.x).toBe(false);
    expect(sameValues(again.test.labels, split.test.labels)).toBe(true);
    expect(sameValues(again.train.labels, split.train.labels)).toBe(true);
    expect(sameValues(again.test.x, split.test.x)).toBe(true);
    expect(sameValues(again.train.x, split.train.x)).toBe(true);
  });
});

describe('mnistFromDigitArrays', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const digits = fakeDigits(1);
    const a = mnistFromDigitArrays(digits, { testCount: 20, seed: 7 });
    const b = mnistFromDigitArrays(digits, { testCount: 20, seed: 7 });
    const c = mnistFromDigitArrays(digits, { testCount: 20, seed: 8 });
    expect(sameValues(b.train.x, a.train.x)).toBe(true);
    expect(sameValues(b.test.labels, a.test.labels)).toBe(true);
    expect(sameValues(c.test.x, a.test.x)).toBe(false);
  });

  it('splits into disjoint sets that cover every image, with exactly testCount held out', () => {
    const digits = fakeDigits(2);
    const total = digits.reduce((sum, d) => sum + d.length / MNIST_FEATURES, 0);
    for (const testCount of [1, 10, 33, total - 1]) {
      const { train, test } = mnistFromDigitArrays(digits, { testCount });
      expect(test.count).toBe(testCount);
      expect(train.count).toBe(total - testCount);
      const trainKeys = new Set(datasetKeys(train));
      for (const key of datasetKeys(test)) expect(trainKeys.has(key)).toBe(false);
      const expected = countKeys(
        digits.flatMap((data, digit) =>
          Array.from(
            { length: data.length / MNIST_FEATURES },
            (_, i) => `${digit}:${imageKey(data, i * MNIST_FEATURES)}`,
          ),
        ),
      );
      expect(countKeys([...trainKeys, ...datasetKeys(test)])).toEqual(expected);
    }
  });

  it('rejects malformed digit arrays with ERR_MNIST_DATA and where the bad pixel is', () => {
    const digits = fakeDigits(3);
    const expectCode = (run: () => unknown): DatasetFormatError => {
      try {
        run();
      } catch (err) {
        expect(err).toBeInstanceOf(DatasetFormatError);
        expect((err as DatasetFormatError).code).toBe('ERR_MNIST_DATA');
        return err as DatasetFormatError;
      }
      throw new Error('expected a DatasetFormatError');
    };
    expectCode(() => mnistFromDigitArrays(digits.slice(0, 9)));
    expectCode(() => mnistFromDigitArrays([...digits.slice(0, 9), new Float32Array(100)]));
    const bad = digits.map((d) => d.slice());
    (bad[4] as Float32Array)[2 * MNIST_FEATURES + 5] = 1.5;
    const err = expectCode(() => mnistFromDigitArrays(bad));
    expect(err.where).toEqual({ sample: 2, feature: 5 });
    expect(err.message).toMatch(/digit 4.*1\.5/);
    expect(() => mnistFromDigitArrays(digits, { testCount: 0 })).toThrow(RangeError);
  });
});
