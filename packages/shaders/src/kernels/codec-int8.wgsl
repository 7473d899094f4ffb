// int8 codec of one block with a per-block scale (core codec/encoding.ts is the reference):
//   scale = max_i |v_i| / 127 (0 when every v_i is ±0);
//   q_i = clamp(roundHalfAwayFromZero(v_i / scale), −127, 127), 0 when scale is 0.
// Rounding is trunc-then-correct, because v − trunc(v) is exact in f32 whereas trunc(v ± 0.5)
// rounds wrongly just below a half; WGSL's round() breaks ties to even and does not fit. WGSL
// allows f32 division a few ulp off, so q may differ from the reference by one at a near-tie.
//
// encode runs as ONE workgroup per block: the max |v| is reduced in workgroup memory (on the
// bits: for non-negative floats the u32 order is the float order, and any NaN or ±∞ shows as
// bits ≥ 0x7f800000, reported in dst[1] instead of a scale, since int8 cannot encode them).
// dst[0] = bits of the scale, dst[1] = 1 if a value was not finite, dst[2..] = the codes, four
// per u32, the lower index in the low byte, two's complement.
// decode: v_i = q_i · scale (one rounding), from the same layout.
//
// Prepended by the driver: struct CodecParams.

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> codec: CodecParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

var<workgroup> largest: array<u32, WG>;

fn quantize(v: f32, scale: f32) -> u32 {
  let x = v / scale;
  let t = trunc(x);
  let f = x - t;
  var q = t + select(0.0, 1.0, f >= 0.5) - select(0.0, 1.0, f <= -0.5);
  q = clamp(q, -127.0, 127.0);
  return u32(i32(q)) & 0xffu;
}

@compute @workgroup_size(WG)
fn encode(@builtin(local_invocation_index) t: u32) {
  let count = codec.count;
  let base = codec.offset;
  var m = 0u;
  for (var i = t; i < count; i += WG) { m = max(m, src[base + i] & 0x7fffffffu); }
  largest[t] = m;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (t < stride) { largest[t] = max(largest[t], largest[t + stride]); }
    workgroupBarrier();
  }
  let maxBits = largest[0];
  let broken = maxBits >= 0x7f800000u;
  let scale = select(bitcast<f32>(maxBits) / 127.0, 0.0, broken);
  if (t == 0u) {
    dst[0] = bitcast<u32>(scale);
    dst[1] = select(0u, 1u, broken);
  }
  let words = (count + 3u) / 4u;
  for (var w = t; w < words; w += WG) {
    var packed = 0u;
    if (scale > 0.0) {
      for (var j = 0u; j < 4u; j++) {
        let i = 4u * w + j;
        if (i < count) { packed |= quantize(bitcast<f32>(src[base + i]), scale) << (8u * j); }
      }
    }
    dst[2u + w] = packed;
  }
}

@compute @workgroup_size(WG)
fn decode(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= codec.count) { return; }
  let scale = bitcast<f32>(src[0]);
  let byte = (src[2u + i / 4u] >> (8u * (i & 3u))) & 0xffu;
  // Sign-extend the byte.
  let q = (i32(byte) << 24u) >> 24u;
  dst[i] = bitcast<u32>(f32(q) * scale);
}
