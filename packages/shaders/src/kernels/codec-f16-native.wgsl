// float16 decode with native f16 (only compiled where the device has `shader-f16`; the bitwise
// decode in codec-f16.wgsl is the path everywhere else). f16 → f32 widening is exact, so this
// must agree bit for bit with the bitwise decode; the kernel checks compare both to core's
// reference on every device that runs them.
//
// Prepended by the driver: `enable f16;` and struct CodecParams.

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> codec: CodecParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn decode(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= codec.count) { return; }
  let at = codec.offset + i;
  let halves = bitcast<vec2<f16>>(src[at / 2u]);
  dst[i] = f32(select(halves.x, halves.y, (at & 1u) == 1u));
}
