import { describe, expect, it } from 'vitest';
import { Rng } from '../util/rng.ts';
import {
  decodeFloat16,
  decodeInt8,
  encodeFloat16,
  encodeInt8,
  float16BitsToFloat32,
  float32ToFloat16Bits,
} from './encoding.ts';

const f16 = float32ToFloat16Bits;
const half = float16BitsToFloat32;

/** The float32 whose bits are `bits`. */
function fromBits(bits: number): number {
  return new Float32Array(Uint32Array.from([bits]).buffer)[0]!;
}

describe('float16', () => {
  it('handles the edge cases exactly', () => {
    expect(f16(65504)).toBe(0x7bff); // largest finite half
    expect(f16(65519.99)).toBe(0x7bff); // below the tie
    expect(f16(65520)).toBe(0x7c00); // the tie rounds to even: Infinity
    expect(f16(1e6)).toBe(0x7c00);
    expect(f16(-1e6)).toBe(0xfc00);
    expect(f16(Infinity)).toBe(0x7c00);
    expect(f16(-Infinity)).toBe(0xfc00);
    expect(half(0x7c00)).toBe(Infinity);
    expect(half(0xfc00)).toBe(-Infinity);
    expect(Number.isNaN(half(f16(NaN)))).toBe(true);
    expect(f16(NaN) & 0x7fff).toBe(0x7e00);
    expect(f16(-0)).toBe(0x8000);
    expect(Object.is(half(0x8000), -0)).toBe(true);
    expect(f16(0)).toBe(0);
    expect(f16(1)).toBe(0x3c00);
    expect(f16(-2)).toBe(0xc000);
    expect(f16(1 / 3)).toBe(0x3555);
    // 1e-8 is subnormal in half: 1e-8 / 2^-24 = 0.168 → rounds to 0 (+0).
    expect(f16(1e-8)).toBe(0);
    // 1e-7 / 2^-24 = 1.68 → subnormal 2.
    expect(f16(1e-7)).toBe(2);
    expect(half(2)).toBe(2 * 2 ** -24);
    expect(f16(2 ** -24)).toBe(1); // smallest subnormal
    expect(f16(2 ** -25)).toBe(0); // exactly half of it: tie to even → 0
    expect(f16(-(2 ** -25) * 1.000001)).toBe(0x8001); // just above the tie → smallest, sign kept
    expect(f16(3 * 2 ** -25)).toBe(2); // 1.5 ulp: tie to even → 2
    expect(f16(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f16(2 ** -14 - 2 ** -25)).toBe(0x0400); // tie between largest subnormal and it → even
    expect(f16(fromBits(1))).toBe(0); // float32 subnormal
    expect(f16(1 + 2 ** -11)).toBe(0x3c00); // tie at 1: to even (down)
    expect(f16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: to even (up)
  });

  it('round-trips every half-precision value', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = half(h);
      if (Number.isNaN(v)) {
        expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
        continue;
      }
      expect(f16(v)).toBe(h);
    }
  });

  it('rounds random float32 values to the nearest half, ties to even', () => {
    const rng = new Rng(11);
    for (let n = 0; n < 20000; n++) {
      // Random bit patterns cover every exponent, including subnormals and overflow.
      const v = fromBits(((rng.next() * 2 ** 32) >>> 0) & 0x7fffffff);
      if (!Number.isFinite(v)) continue;
      const h = f16(v);
      const q = half(h);
      if (v >= 65520) {
        expect(h).toBe(0x7c00);
        continue;
      }
      expect(h & 0x8000).toBe(0);
      const err = Math.abs(q - v);
      // Neither neighbour of h is closer; on a tie the chosen one is even.
      for (const other of [h - 1, h + 1]) {
        if (other < 0 || other > 0x7bff) continue;
        const otherErr = Math.abs(half(other) - v);
        expect(err).toBeLessThanOrEqual(otherErr);
        if (err === otherErr) expect(h & 1).toBe(0);
      }
      // Negative values mirror positive ones.
      expect(f16(-v)).toBe(h | 0x8000);
    }
  });

  it('encodes and decodes arrays', () => {
    const values = Float32Array.from([0, -1.5, 65504, 1e-8, 3.14159, -70000]);
    const bits = encodeFloat16(values);
    expect(bits).toBeInstanceOf(Uint16Array);
    const back = decodeFloat16(bits);
    expect(Array.from(back)).toEqual([0, -1.5, 65504, 0, half(f16(3.14159)), -Infinity]);
    expect(Math.abs(back[4]! - 3.14159)).toBeLessThan(2 ** -10 * 2);
    const out = new Uint16Array(10);
    expect(encodeFloat16(values, out)).toBe(out);
    expect(() => encodeFloat16(values, new Uint16Array(2))).toThrow(RangeError);
    expect(() => decodeFloat16(bits, new Float32Array(2))).toThrow(RangeError);
  });
});

describe('int8', () => {
  it('scales by max |v| / 127 and rounds half away from zero', () => {
    const values = Float32Array.from([127, 2.5, -2.5, 0.49999997, -0.5, -127, 1.5, -0]);
    const { scale, values: q } = encodeInt8(values);
    expect(scale).toBe(1);
    expect(Array.from(q)).toEqual([127, 3, -3, 0, -1, -127, 2, 0]);
    expect(Array.from(decodeInt8(q, scale))).toEqual([127, 3, -3, 0, -1, -127, 2, 0]);
  });

  it('encodes an all-zero block with scale 0', () => {
    const { scale, values } = encodeInt8(new Float32Array(5));
    expect(scale).toBe(0);
    expect(Array.from(values)).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(decodeInt8(values, scale))).toEqual([0, 0, 0, 0, 0]);
  });

  it('keeps one huge value and flushes the small ones', () => {
    const values = Float32Array.from([0.5, -1e30, 3, 1e25]);
    const { scale, values: q } = encodeInt8(values);
    expect(scale).toBe(Math.fround(Math.fround(1e30) / 127));
    expect(Array.from(q)).toEqual([0, -127, 0, 0]);
    const back = decodeInt8(q, scale);
    expect(Math.abs(back[1]! + 1e30) / 1e30).toBeLessThan(1e-6);
  });

  it('stays within half a step on random blocks', () => {
    const rng = new Rng(12);
    for (let trial = 0; trial < 50; trial++) {
      const magnitude = 10 ** (rng.next() * 12 - 6);
      const values = Float32Array.from({ length: 257 }, () => magnitude * rng.normal());
      const { scale, values: q } = encodeInt8(values);
      const maxAbs = Math.max(...values.map(Math.abs));
      expect(scale).toBe(Math.fround(maxAbs / 127));
      expect(Math.max(...q.map(Math.abs))).toBe(127);
      expect(q.includes(-128)).toBe(false);
      const back = decodeInt8(q, scale);
      for (let i = 0; i < values.length; i++) {
        // Half a step plus float32 rounding of the quotient and product.
        expect(Math.abs(back[i]! - values[i]!)).toBeLessThanOrEqual(scale * (0.5 + 1e-5));
      }
    }
  });

  it('refuses non-finite values and bad arguments', () => {
    expect(() => encodeInt8(Float32Array.from([1, NaN]))).toThrow(RangeError);
    expect(() => encodeInt8(Float32Array.from([Infinity]))).toThrow(RangeError);
    expect(() => encodeInt8(Float32Array.from([1, 2]), new Int8Array(1))).toThrow(RangeError);
    expect(() => decodeInt8(new Int8Array(2), NaN)).toThrow(RangeError);
    expect(() => decodeInt8(new Int8Array(2), -1)).toThrow(RangeError);
  });
});
