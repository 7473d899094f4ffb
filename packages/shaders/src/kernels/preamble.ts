/**
 * Generated WGSL preambles: the structural variations of the kernels. Everything numeric is an
 * `override` constant instead.
 */

/** Width of the vector type `V` a kernel streams its rows in: vec4<f32> or plain f32. */
export type VectorWidth = 1 | 4;

/**
 * `alias V` and helpers that let one kernel text serve both widths. vec4 is used where a row's
 * length and offset are multiples of 4: one load moves four floats, which pays on GPUs (wider
 * transactions) and far more on SwiftShader, where each load instruction costs about the same
 * whatever its width.
 */
export function vectorPreamble(width: VectorWidth): string {
  return width === 4
    ? `alias V = vec4<f32>;
const VW: u32 = 4u;
fn hsum(v: V) -> f32 { return v.x + v.y + v.z + v.w; }
// Lanes of the vector starting at float index first that lie below limit keep v; others are 0.
fn keepBelow(v: V, first: u32, limit: u32) -> V {
  return select(V(0.0), v, vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(limit));
}
// Bitwise, so no compiler may assume it away (WGSL lets implementations assume finite floats).
fn nonFinite(v: V) -> bool {
  let e = vec4<u32>(0x7f800000u);
  return any((bitcast<vec4<u32>>(v) & e) == e);
}
`
    : `alias V = f32;
const VW: u32 = 1u;
fn hsum(v: V) -> f32 { return v; }
fn keepBelow(v: V, first: u32, limit: u32) -> V { return select(0.0, v, first < limit); }
fn nonFinite(v: V) -> bool { return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u; }
`;
}
