/**
 * Reference encodings for the values of one parameter block on the wire (DESIGN §3, §4): the
 * balancer picks float32, float16, or int8 with a per-block scale. A WGSL kernel implements the
 * same encodings and is tested against these functions, so every rounding rule is spelled out.
 */

/**
 * Every value encoding of a block, in order of decreasing precision: float32 as is, IEEE
 * binary16, or int8 with a per-block scale. The one list; schemas and forms derive from it.
 */
export const ENCODINGS = ['f32', 'f16', 'int8'] as const;

/** Value encoding of a block (one of ENCODINGS). */
export type Encoding = (typeof ENCODINGS)[number];

/** Bytes per encoded value (the int8 scale travels in the message header). */
export function bytesPerValue(encoding: Encoding): number {
  return encoding === 'f32' ? 4 : encoding === 'f16' ? 2 : 1;
}

// One shared 4-byte buffer to read a float32's bits without allocating.
const f32Cell = new Float32Array(1);
const u32Cell = new Uint32Array(f32Cell.buffer);

/**
 * IEEE 754 binary16 bits of `value`, after rounding `value` to float32 first (these encode
 * float32 parameters; a float64 argument is thus rounded twice).
 *
 * Rounding is round-to-nearest, ties-to-even, on the exact float32 value, for normal and
 * subnormal results alike. Magnitudes that round to 2^16 or above (from 65520 = 65504 + half an
 * ulp, the tie, upwards) give ±Infinity; magnitudes up to 2^-25 (half the smallest subnormal,
 * the tie rounding to even zero) give ±0 with the sign kept. ±Infinity maps to ±Infinity; every
 * NaN maps to the quiet NaN 0x7e00 with its sign bit kept (payloads are not preserved).
 */
export function float32ToFloat16Bits(value: number): number {
  f32Cell[0] = value;
  const bits = u32Cell[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;

  if (exponent === 0xff) return sign | (mantissa === 0 ? 0x7c00 : 0x7e00);
  // Unbiased exponent rebiased for binary16 (bias 15 instead of 127).
  const e = exponent - 112;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero) result: value = m · 2^-24 with m = significand >> (14 − e). Below
    // e = −10 the value is under 2^-25 and rounds to zero. float32 subnormals (exponent 0)
    // land here too and round to zero.
    if (e < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - e;
    let q = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && (q & 1) === 1)) q++;
    // A carry to q = 0x400 is exactly the smallest normal's encoding.
    return sign | q;
  }
  let q = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (q & 1) === 1)) q++;
  // A mantissa carry bumps the exponent; reaching 0x7c00 is the correct overflow to Infinity.
  return sign | q;
}

/** The float32 (exactly representable) value of binary16 `bits` (only the low 16 bits count). */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** Decoding table, built on first use: 65,536 floats (256 KiB). */
let decodeTable: Float32Array | null = null;

function table(): Float32Array {
  if (decodeTable === null) {
    decodeTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) decodeTable[h] = float16BitsToFloat32(h);
  }
  return decodeTable;
}

/** Encodes `values` as binary16 bits (see `float32ToFloat16Bits`) into `out` (default: new). */
export function encodeFloat16(
  values: Float32Array,
  out: Uint16Array = new Uint16Array(values.length),
): Uint16Array {
  if (out.length < values.length) {
    throw new RangeError(`out holds ${out.length} values, fewer than ${values.length}`);
  }
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]!);
  return out;
}

/** Decodes binary16 bits to float32 into `out` (default: new). Exact: every half is a float. */
export function decodeFloat16(
  bits: Uint16Array,
  out: Float32Array = new Float32Array(bits.length),
): Float32Array {
  if (out.length < bits.length) {
    throw new RangeError(`out holds ${out.length} values, fewer than ${bits.length}`);
  }
  const t = table();
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}

/** A block in int8: value i decodes to `values[i] · scale`. */
export interface Int8Block {
  /** max |v| / 127 rounded to float32; 0 for an all-zero block. */
  readonly scale: number;
  readonly values: Int8Array;
}

/**
 * x rounded to the nearest integer, halves away from zero, for a float32 x. Written as
 * truncate-then-correct because x − trunc(x) is exact in float32, whereas trunc(x ± 0.5) rounds
 * wrongly in float32 arithmetic just below a half (0.49999997 + 0.5 rounds to 1). A WGSL port
 * should use the same form; WGSL's `round` breaks ties to even and does not fit.
 */
function roundHalfAwayFromZero(x: number): number {
  const t = Math.trunc(x);
  const fraction = x - t;
  if (fraction >= 0.5) return t + 1;
  if (fraction <= -0.5) return t - 1;
  return t;
}

/**
 * Int8 with one scale per block. Exactly:
 *   scale = fround(max_i |v_i| / 127), or 0 when every v_i is ±0;
 *   q_i = clamp(roundHalfAwayFromZero(fround(v_i / scale)), −127, 127), or 0 when scale is 0.
 * `fround(a / b)` is the correctly rounded float32 quotient, what an IEEE float32 divide gives
 * (WGSL allows division a few ulp off, so a kernel may differ by one step at a near-tie).
 * −128 is never produced, so the code is symmetric. Values must be finite: a NaN or ±Infinity
 * has no int8 code and throws a RangeError (send such a block as f16 or f32, or not at all).
 * Writes into `out` when given.
 */
export function encodeInt8(
  values: Float32Array,
  out: Int8Array = new Int8Array(values.length),
): Int8Block {
  if (out.length < values.length) {
    throw new RangeError(`out holds ${out.length} values, fewer than ${values.length}`);
  }
  let maxAbs = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]!);
    if (!(a <= Number.MAX_VALUE)) {
      throw new RangeError(`cannot encode non-finite value ${values[i]} at index ${i} as int8`);
    }
    if (a > maxAbs) maxAbs = a;
  }
  const scale = Math.fround(maxAbs / 127);
  if (scale === 0) {
    // An all-zero block; a block whose largest value is so small that max/127 underflows float32
    // also lands here and decodes to zeros, its nearest representation at this scale.
    out.fill(0, 0, values.length);
    return { scale: 0, values: out };
  }
  for (let i = 0; i < values.length; i++) {
    const q = roundHalfAwayFromZero(Math.fround(values[i]! / scale));
    out[i] = q > 127 ? 127 : q < -127 ? -127 : q;
  }
  return { scale, values: out };
}

/** Decodes int8 codes: value i = fround(values[i] · scale) (exact product, rounded once). */
export function decodeInt8(
  values: Int8Array,
  scale: number,
  out: Float32Array = new Float32Array(values.length),
): Float32Array {
  if (!Number.isFinite(scale) || scale < 0) {
    throw new RangeError(`int8 scale must be finite and non-negative, got ${scale}`);
  }
  if (out.length < values.length) {
    throw new RangeError(`out holds ${out.length} values, fewer than ${values.length}`);
  }
  for (let i = 0; i < values.length; i++) out[i] = values[i]! * scale;
  return out;
}
