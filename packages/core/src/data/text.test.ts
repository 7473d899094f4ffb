import { describe, expect, it } from 'vitest';
import { Rng } from '../util/rng.ts';
import { catchFormatError } from './format-error.testing.ts';
import { bigramCrossEntropy, parseText } from './text.ts';

/** Generated text: words from a small list, seeded, with some non-ASCII letters. */
function generatedText(words: number, seed: number): Uint8Array {
  const list = ['the', 'quick', 'brown', 'fox', 'jumps', 'über', 'lazy', 'dogs', 'naïve', 'café'];
  const rng = new Rng(seed);
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(list[rng.int(list.length)]!);
  return new TextEncoder().encode(out.join(' ') + '.\n');
}

describe('text datasets', () => {
  it('splits deterministically into windows of context + 1 token ids', () => {
    const bytes = generatedText(2_000, 1);
    const a = parseText(bytes, { context: 16, validationFraction: 0.2, name: 'gen' });
    const b = parseText(bytes, { context: 16, validationFraction: 0.2, name: 'gen' });
    expect(a.train.x).toEqual(b.train.x);
    expect(a.train.name).toBe('gen/train');
    expect(a.train.features).toBe(17);
    expect(a.train.labels).toBeNull();
    const cut = Math.floor(bytes.length * 0.8);
    expect(a.train.count).toBe(Math.floor((cut - 1) / 16));
    expect(a.validation.count).toBe(Math.floor((bytes.length - cut - 1) / 16));
    // The vocabulary is the distinct bytes, sorted; ids map back to the text.
    expect(Array.from(a.vocabulary)).toEqual(Array.from(new Set(bytes)).sort((p, q) => p - q));
    const firstWindow = Array.from(a.train.x.subarray(0, 17), (id) => a.vocabulary[id]!);
    expect(firstWindow).toEqual(Array.from(bytes.subarray(0, 17)));
    // Windows start every `context` tokens and overlap by the one target token.
    const second = Array.from(a.train.x.subarray(17, 34), (id) => a.vocabulary[id]!);
    expect(second).toEqual(Array.from(bytes.subarray(16, 33)));
    // Validation starts where training ends.
    const v0 = Array.from(a.validation.x.subarray(0, 17), (id) => a.vocabulary[id]!);
    expect(v0).toEqual(Array.from(bytes.subarray(cut, cut + 17)));
  });

  it('rejects text that is not UTF-8, naming the byte, and text too short for a window', () => {
    const bytes = new TextEncoder().encode('hello wörld, more text here');
    const broken = bytes.slice();
    broken[7] = 0xff;
    const err = catchFormatError(() => parseText(broken, { context: 4 }), 'ERR_TEXT_ENCODING');
    expect(err.message).toBe('text: not valid UTF-8 (at byte 7)');
    const cutChar = bytes.slice(0, 8); // ends inside the two bytes of ö
    expect(
      catchFormatError(() => parseText(cutChar, { context: 2 }), 'ERR_TEXT_ENCODING').where,
    ).toEqual({ byteOffset: 7 });
    catchFormatError(() => parseText(bytes, { context: 40 }), 'ERR_TEXT_LENGTH');
  });

  it('the bigram baseline beats the uniform model on structured text', () => {
    const { train, validation, vocabulary } = parseText(generatedText(4_000, 2), { context: 32 });
    const bigram = bigramCrossEntropy(train, validation, vocabulary.length);
    expect(bigram).toBeGreaterThan(0);
    expect(bigram).toBeLessThan(0.6 * Math.log(vocabulary.length));
  });
});
