/**
 * A parameter block in its wire encoding (DESIGN §3: float32, float16, or int8 with one scale),
 * as a backend reads it for a send. The WebGPU backend encodes on the device, so only these
 * bytes leave it; the CPU backend encodes with encoding.ts. Either way the same rules apply.
 */
import { decodeFloat16, encodeFloat16, encodeInt8, type Encoding } from './encoding.ts';

export type EncodedBlock =
  | { readonly encoding: 'f32'; readonly values: Float32Array }
  | { readonly encoding: 'f16'; readonly values: Uint16Array }
  | { readonly encoding: 'int8'; readonly values: Int8Array; readonly scale: number };

/**
 * `values` in `encoding` (a copy). Null for int8 when a value is NaN or ±Infinity, which has no
 * int8 code; f32 and f16 carry such values and their `encodedNorm` is not finite.
 */
export function encodeBlock(values: Float32Array, encoding: Encoding): EncodedBlock | null {
  if (encoding === 'f32') return { encoding, values: values.slice() };
  if (encoding === 'f16') return { encoding, values: encodeFloat16(values) };
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return null;
  const { scale, values: codes } = encodeInt8(values);
  return { encoding, values: codes, scale };
}

/**
 * Euclidean norm of the block as a receiver decodes it (what the receive-side norm bound
 * compares against); NaN or Infinity when a value is not finite.
 */
export function encodedNorm(block: EncodedBlock): number {
  let s = 0;
  if (block.encoding === 'f32') {
    for (const v of block.values) s += v * v;
    return Math.sqrt(s);
  }
  if (block.encoding === 'f16') {
    for (const v of decodeFloat16(block.values)) s += v * v;
    return Math.sqrt(s);
  }
  // Codes times one scale: the norm of the codes, scaled (exact up to float64 rounding).
  for (const q of block.values) s += q * q;
  return Math.sqrt(s) * block.scale;
}
