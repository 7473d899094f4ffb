// Weight and bias gradient of a dense layer on a dense input:
// [dW; db] = [x | 1]ᵀ·dY, i.e. dW[k, :] = Σ_s x[s, k]·dY[s, :] and db = Σ_s dY[s, :].
//
// The bias gradient is row K of a [K + 1, N] matrix at G_OFF, because the bias follows the
// weight in the parameter (and gradient) vector. dY is ∂(mean loss)/∂z of this layer's outputs,
// [batch, N]; it already carries the 1/B of the mean. Sums run over samples in order.
//
// Each thread owns one row k and 4 V-columns, TX apart; TY rows per workgroup.
//
// Prepended by the driver: struct StepParams, alias V and helpers (preamble.ts).

override K: u32;
override NV: u32;
override G_OFF: u32;
override TX: u32 = 8u;
override TY: u32 = 8u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
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
  let isBias = k == K;
  var a0 = V(0.0); var a1 = V(0.0); var a2 = V(0.0); var a3 = V(0.0);
  let batch = step.batch;
  for (var s = 0u; s < batch; s++) {
    let v = select(x[select(s * K + k, 0u, isBias)], 1.0, isBias);
    let row = s * NV;
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
