// float16 codec of one block (DESIGN §3 encodings; core codec/encoding.ts is the reference).
//
// encode: IEEE binary16 bits of each float32, round-to-nearest ties-to-even on the exact value,
//   for normal and subnormal results; |v| from 65520 up gives ±Infinity, |v| up to 2^-25 gives
//   ±0 (sign kept); NaN gives the quiet NaN 0x7e00 with its sign. Done on the bits by hand:
//   WGSL leaves the rounding of f32 → f16 conversions (and pack2x16float out of range) to the
//   implementation. Two halves per u32, the lower index in the low 16 bits (little-endian, as a
//   Uint16Array over the same bytes reads them).
// decode: the exact float32 of each half, written as bits so that no flush-to-zero of
//   subnormals can touch them.
//
// Values are read as u32 bits for the same reason. params.offset and params.count select the
// block within src.
//
// Prepended by the driver: struct CodecParams.

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> codec: CodecParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn toHalf(bits: u32) -> u32 {
  let sign = (bits >> 16u) & 0x8000u;
  let exponent = (bits >> 23u) & 0xffu;
  let mantissa = bits & 0x7fffffu;
  if (exponent == 0xffu) {
    return sign | select(0x7e00u, 0x7c00u, mantissa == 0u);
  }
  // Rebiased exponent (bias 15 instead of 127), kept signed.
  let e = i32(exponent) - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    // Subnormal or zero: m·2^-24 with m = significand >> (14 − e); below e = −10 it rounds to 0.
    if (e < -10) { return sign; }
    let significand = mantissa | 0x800000u;
    let shift = u32(14 - e);
    var q = significand >> shift;
    let rest = significand & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (q & 1u) == 1u)) { q += 1u; }
    return sign | q;
  }
  var q = (u32(e) << 10u) | (mantissa >> 13u);
  let rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (q & 1u) == 1u)) { q += 1u; }
  // A carry out of the mantissa bumps the exponent; reaching 0x7c00 is the overflow to ∞.
  return sign | q;
}

fn fromHalf(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let exponent = (h >> 10u) & 0x1fu;
  let mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) {
    return sign | 0x7f800000u | (mantissa << 13u);
  }
  if (exponent == 0u) {
    if (mantissa == 0u) { return sign; }
    // Subnormal half: normalise. m·2^-24 with the leading bit of m at position p.
    let p = firstLeadingBit(mantissa);
    let m = (mantissa << (23u - p)) & 0x7fffffu;
    return sign | ((p + 103u) << 23u) | m;
  }
  return sign | ((exponent + 112u) << 23u) | (mantissa << 13u);
}

@compute @workgroup_size(WG)
fn encode(@builtin(global_invocation_id) gid: vec3<u32>) {
  let word = gid.x;
  let count = codec.count;
  let i = 2u * word;
  if (i >= count) { return; }
  let lo = toHalf(src[codec.offset + i]);
  var hi = 0u;
  if (i + 1u < count) { hi = toHalf(src[codec.offset + i + 1u]); }
  dst[word] = lo | (hi << 16u);
}

@compute @workgroup_size(WG)
fn decode(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= codec.count) { return; }
  let word = src[(codec.offset + i) / 2u];
  let h = select(word & 0xffffu, word >> 16u, ((codec.offset + i) & 1u) == 1u);
  dst[i] = fromHalf(h);
}
