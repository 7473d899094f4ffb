import { describe, expect, it } from 'vitest';
import { Rng } from '../util/rng.ts';
import type { Encoding } from './encoding.ts';
import {
  decodeStateMessage,
  encodeStateMessage,
  idHash,
  MAX_MESSAGE_BYTES,
  MESSAGE_HEADER_BYTES,
  MessageError,
} from './message.ts';

function randomValues(rng: Rng, n: number, scale = 1): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal() * scale;
  return v;
}

const base = { job: idHash('job'), sender: idHash('w1'), seq: 7, block: 3, samples: 12_345 };

describe('state message codec', () => {
  it.each<[Encoding, number]>([
    ['f32', 0],
    ['f16', 1e-3],
    ['int8', 1 / 127],
  ])('round-trips %s within its precision', (encoding, relTol) => {
    const rng = new Rng(Math.floor(Math.random() * 2 ** 31));
    const values = randomValues(rng, 1000);
    const m = decodeStateMessage(encodeStateMessage({ ...base, encoding, values }));
    expect(m).toMatchObject({ ...base, encoding });
    let maxAbs = 0;
    for (const v of values) maxAbs = Math.max(maxAbs, Math.abs(v));
    for (let i = 0; i < values.length; i++) {
      const err = Math.abs(m.values[i]! - values[i]!);
      // f16: relative to the value; int8: relative to the block's largest value (one step).
      const bound = encoding === 'int8' ? relTol * maxAbs * 0.5001 : relTol * Math.abs(values[i]!);
      expect(err).toBeLessThanOrEqual(bound + 1e-7);
    }
  });

  it('detects every single-byte corruption', () => {
    const rng = new Rng(Math.floor(Math.random() * 2 ** 31));
    for (const encoding of ['f32', 'f16', 'int8'] as const) {
      const bytes = encodeStateMessage({ ...base, encoding, values: randomValues(rng, 64) });
      for (let i = 0; i < bytes.length; i++) {
        const corrupt = bytes.slice();
        corrupt[i] = (corrupt[i]! + 1 + rng.int(255)) & 0xff;
        expect(() => decodeStateMessage(corrupt), `byte ${i} of ${encoding}`).toThrow(MessageError);
      }
    }
  });

  it('detects every single-byte corruption, exhaustively: each byte, each of its 255 other values', () => {
    const rng = new Rng(Math.floor(Math.random() * 2 ** 31));
    for (const encoding of ['f32', 'f16', 'int8'] as const) {
      const bytes = encodeStateMessage({ ...base, encoding, values: randomValues(rng, 12) });
      const corrupt = bytes.slice();
      let missed = 0;
      for (let i = 0; i < bytes.length; i++) {
        for (let d = 1; d < 256; d++) {
          corrupt[i] = (bytes[i]! + d) & 0xff;
          try {
            decodeStateMessage(corrupt);
            missed++;
          } catch (err) {
            if (!(err instanceof MessageError)) throw err;
          }
        }
        corrupt[i] = bytes[i]!;
      }
      expect(missed, encoding).toBe(0);
    }
  });

  it('refuses non-finite values', () => {
    const values = new Float32Array([1, Number.NaN, 2]);
    const bytes = encodeStateMessage({ ...base, encoding: 'f32', values });
    expect(() => decodeStateMessage(bytes)).toThrow(/not finite/);
  });

  it('refuses a block that would not fit one data-channel message', () => {
    const n = Math.ceil((MAX_MESSAGE_BYTES - MESSAGE_HEADER_BYTES) / 4) + 1;
    expect(() =>
      encodeStateMessage({ ...base, encoding: 'f32', values: new Float32Array(n) }),
    ).toThrow(RangeError);
  });

  it('fuzz: random, truncated and oversized frames only ever raise MessageError', () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const rng = new Rng(seed);
    const valid = encodeStateMessage({ ...base, encoding: 'f16', values: randomValues(rng, 200) });
    const frames: Uint8Array[] = [new Uint8Array(0), new Uint8Array(MAX_MESSAGE_BYTES + 1)];
    // Oversized: a valid message with bytes appended, and a header claiming more values than fit.
    for (const extra of [1, 7, MAX_MESSAGE_BYTES]) {
      const f = new Uint8Array(valid.length + extra);
      f.set(valid);
      frames.push(f);
    }
    const claims = valid.slice();
    new DataView(claims.buffer).setUint32(24, 0xffffffff, true);
    frames.push(claims);
    for (let t = 0; t < 2000; t++) {
      const kind = t % 3;
      if (kind === 0) {
        const f = new Uint8Array(rng.int(400));
        for (let i = 0; i < f.length; i++) f[i] = rng.int(256);
        frames.push(f);
      } else if (kind === 1) {
        frames.push(valid.slice(0, rng.int(valid.length)));
      } else {
        const f = valid.slice();
        for (let k = 0; k < 1 + rng.int(8); k++) f[rng.int(f.length)] = rng.int(256);
        frames.push(f);
      }
    }
    for (const f of frames) {
      try {
        decodeStateMessage(f);
      } catch (err) {
        expect(err, `seed ${seed}`).toBeInstanceOf(MessageError);
      }
    }
  });
});
