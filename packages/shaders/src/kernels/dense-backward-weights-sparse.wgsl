// Weight and bias gradient of a dense layer on a sparse input: [dW; db] = [x | 1]ᵀ·dY, visiting
// only the nonzero inputs.
//
// The input comes as CSC columns of [x | 1]: column k (one row of dW) holds entries
// colStart[k] .. colStart[k + 1] - 1, each (sample s, bits of x[s, k]), samples ascending;
// column K is the bias column, every sample with 1.0. A row of dW with no entries is written as
// zeros. G_OFF is where [dW; db], a [K + 1, N] matrix, starts in the gradient vector.
//
// Each thread owns one row k and 4 V-columns, TX apart; TY rows per workgroup.
//
// Prepended by the driver: alias V and helpers (preamble.ts).

override K: u32;
override NV: u32;
override G_OFF: u32;
override TX: u32 = 8u;
override TY: u32 = 8u;

@group(0) @binding(0) var<storage, read> colStart: array<u32>;
@group(0) @binding(1) var<storage, read> entries: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> dy: array<V>;
@group(0) @binding(3) var<storage, read_write> grad: array<V>;

@compute @workgroup_size(TX, TY)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let k = wid.y * TY + lid.y;
  if (k > K) { return; }
  let c = wid.x * TX * 4u + lid.x;
  let c0 = min(c, NV - 1u);
  let c1 = min(c + TX, NV - 1u);
  let c2 = min(c + 2u * TX, NV - 1u);
  let c3 = min(c + 3u * TX, NV - 1u);
  var a0 = V(0.0); var a1 = V(0.0); var a2 = V(0.0); var a3 = V(0.0);
  let end = colStart[k + 1u];
  for (var e = colStart[k]; e < end; e++) {
    let entry = entries[e];
    let v = bitcast<f32>(entry.y);
    let row = entry.x * NV;
    a0 += v * dy[row + c0];
    a1 += v * dy[row + c1];
    a2 += v * dy[row + c2];
    a3 += v * dy[row + c3];
  }
  let out = G_OFF + k * NV;
  if (c < NV) { grad[out + c] = a0; }
  if (c + TX < NV) { grad[out + c + TX] = a1; }
  if (c + 2u * TX < NV) { grad[out + c + 2u * TX] = a2; }
  if (c + 3u * TX < NV) { grad[out + c + 3u * TX] = a3; }
}
