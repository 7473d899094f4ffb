/**
 * The `text` dataset format: any UTF-8 file, read as bytes, for next-token language models.
 *
 * - Vocabulary: the distinct byte values of the whole file, in increasing order; token id i is
 *   the i-th of them. A model's `classes` must be at least the vocabulary size.
 * - Split: deterministic and contiguous — the first (1 − validationFraction) of the bytes train,
 *   the rest validate — so no window of the validation text is also seen in training.
 * - Samples: windows of `context + 1` token ids (stored as floats), one every `context` tokens;
 *   a next-token model reads the first `context` and is scored on each following token, so
 *   every token of a split but the first is a target exactly once.
 */
import type { Dataset } from './dataset.ts';
import { makeDataset } from './dataset.ts';
import { DatasetFormatError } from './errors.ts';

export interface TextDatasetOptions {
  /** Positions the model reads per sample. */
  readonly context: number;
  /** Share of the bytes (the end of the file) held out for validation; default 0.1. */
  readonly validationFraction?: number;
  /** Name prefix, e.g. the file name; default `text`. */
  readonly name?: string;
}

export interface TextDataset {
  readonly train: Dataset;
  readonly validation: Dataset;
  /** Byte value of each token id. */
  readonly vocabulary: Uint8Array;
}

/** Windows of `context + 1` token ids, starting every `context` tokens. */
function windows(ids: Uint8Array, context: number, name: string): Dataset {
  const count = Math.floor((ids.length - 1) / context);
  if (count < 1) {
    throw new DatasetFormatError(
      'ERR_TEXT_LENGTH',
      `${name}: ${ids.length} bytes is too short for one window of ${context + 1}`,
    );
  }
  const width = context + 1;
  const x = new Float32Array(count * width);
  for (let s = 0; s < count; s++) {
    for (let t = 0; t < width; t++) x[s * width + t] = ids[s * context + t]!;
  }
  return makeDataset({ name, x, features: width });
}

/** Reads UTF-8 `bytes` into training and validation windows; see the module comment. */
export function parseText(bytes: Uint8Array, options: TextDatasetOptions): TextDataset {
  const name = options.name ?? 'text';
  const { context } = options;
  const fraction = options.validationFraction ?? 0.1;
  if (!Number.isInteger(context) || context < 1) {
    throw new RangeError(`context must be a positive integer, got ${context}`);
  }
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(`validationFraction must be in (0, 1), got ${fraction}`);
  }
  const invalidAt = firstInvalidUtf8(bytes);
  if (invalidAt < bytes.length) {
    throw new DatasetFormatError('ERR_TEXT_ENCODING', `${name}: not valid UTF-8`, {
      byteOffset: invalidAt,
    });
  }
  const present = new Uint8Array(256);
  for (let i = 0; i < bytes.length; i++) present[bytes[i]!] = 1;
  const vocabulary = Uint8Array.from(
    Array.from({ length: 256 }, (_, b) => b).filter((b) => present[b] === 1),
  );
  const idOf = new Uint8Array(256);
  vocabulary.forEach((b, i) => (idOf[b] = i));
  const ids = bytes.map((b) => idOf[b]!);
  const cut = Math.floor(bytes.length * (1 - fraction));
  return {
    train: windows(ids.subarray(0, cut), context, `${name}/train`),
    validation: windows(ids.subarray(cut), context, `${name}/validation`),
    vocabulary,
  };
}

/** Offset of the first character that breaks UTF-8 (RFC 3629's byte ranges); length if none. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let length: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k < length; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += length;
  }
  return bytes.length;
}

/**
 * Cross-entropy (nats per token) on `validation` of the bigram model counted on `train` with
 * add-one smoothing over `vocab` tokens: the baseline a language model must beat. Windows
 * overlap by one token, so each split's bigrams are read from consecutive positions.
 */
export function bigramCrossEntropy(train: Dataset, validation: Dataset, vocab: number): number {
  const counts = new Float64Array(vocab * vocab);
  const totals = new Float64Array(vocab);
  const each = (ds: Dataset, visit: (prev: number, next: number) => void) => {
    const w = ds.features;
    for (let s = 0; s < ds.count; s++) {
      for (let t = 0; t + 1 < w; t++) visit(ds.x[s * w + t]!, ds.x[s * w + t + 1]!);
    }
  };
  each(train, (a, b) => {
    counts[a * vocab + b]!++;
    totals[a]!++;
  });
  let sum = 0;
  let n = 0;
  each(validation, (a, b) => {
    sum -= Math.log((counts[a * vocab + b]! + 1) / (totals[a]! + vocab));
    n++;
  });
  return sum / n;
}
