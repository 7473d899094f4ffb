import { describe, expect, it } from 'vitest';
import { Rng } from './rng.ts';
import { crc32 } from './crc32.ts';

/** The textbook bit-at-a-time CRC-32, as the reference for the table-driven one. */
function reference(bytes: Uint8Array, previous = 0): number {
  let crc = (previous ^ 0xffffffff) >>> 0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('matches the bitwise reference at every length and alignment, and continues', () => {
    const rng = new Rng(Math.floor(Math.random() * 2 ** 31));
    const data = new Uint8Array(300);
    for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
    for (let start = 0; start < 9; start++) {
      for (let len = 0; start + len <= data.length; len += 1 + (len >> 3)) {
        const part = data.subarray(start, start + len);
        expect(crc32(part)).toBe(reference(part));
      }
    }
    const a = data.subarray(0, 123);
    const b = data.subarray(123);
    expect(crc32(b, crc32(a))).toBe(reference(data));
  });
});
