// Weight and bias gradient of a dense layer on a dense input:
// [dW; db] = [x | 1]ᵀ·dY, i.e. dW[k, :] = Σ_s x[s, k]·dY[s, :] and db = Σ_s dY[s, :].
//
// The bias gradient is row K of a [K + 1, N] matrix at G_OFF, because the bias follows the
// weight in the parameter (and gradient) vector. dY is ∂(mean loss)/∂z of this layer's outputs,
// [batch, N]; it already carries the 1/B of the mean. Sums run over samples in order.
//
// Each thread accumulates 4 consecutive rows k × 4 V-columns (TX apart) in registers, so each
// dY vector loaded serves 4 rows and each x value 4 columns; TY row-groups per workgroup.
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
  let k = (wid.y * TY + lid.y) * 4u;
  if (k > K) { return; }
  let c = wid.x * TX * 4u + lid.x;
  let c0 = min(c, NV - 1u);
  let c1 = min(c + TX, NV - 1u);
  let c2 = min(c + 2u * TX, NV - 1u);
  let c3 = min(c + 3u * TX, NV - 1u);
  // Input columns of the 4 rows, clamped for loading; row K is the bias (input 1).
  let k0 = min(k, K - 1u);
  let k1 = min(k + 1u, K - 1u);
  let k2 = min(k + 2u, K - 1u);
  let k3 = min(k + 3u, K - 1u);

  var a00 = V(0.0); var a01 = V(0.0); var a02 = V(0.0); var a03 = V(0.0);
  var a10 = V(0.0); var a11 = V(0.0); var a12 = V(0.0); var a13 = V(0.0);
  var a20 = V(0.0); var a21 = V(0.0); var a22 = V(0.0); var a23 = V(0.0);
  var a30 = V(0.0); var a31 = V(0.0); var a32 = V(0.0); var a33 = V(0.0);
  let batch = step.batch;
  for (var s = 0u; s < batch; s++) {
    let xr = s * K;
    let v0 = select(x[xr + k0], 1.0, k == K);
    let v1 = select(x[xr + k1], 1.0, k + 1u == K);
    let v2 = select(x[xr + k2], 1.0, k + 2u == K);
    let v3 = select(x[xr + k3], 1.0, k + 3u == K);
    let dr = s * NV;
    let d0 = dy[dr + c0];
    let d1 = dy[dr + c1];
    let d2 = dy[dr + c2];
    let d3 = dy[dr + c3];
    a00 += v0 * d0; a01 += v0 * d1; a02 += v0 * d2; a03 += v0 * d3;
    a10 += v1 * d0; a11 += v1 * d1; a12 += v1 * d2; a13 += v1 * d3;
    a20 += v2 * d0; a21 += v2 * d1; a22 += v2 * d2; a23 += v2 * d3;
    a30 += v3 * d0; a31 += v3 * d1; a32 += v3 * d2; a33 += v3 * d3;
  }
  store(k, c, a00, a01, a02, a03);
  store(k + 1u, c, a10, a11, a12, a13);
  store(k + 2u, c, a20, a21, a22, a23);
  store(k + 3u, c, a30, a31, a32, a33);
}

// Writes row k's 4 columns (TX apart) that exist.
fn store(k: u32, c: u32, v0: V, v1: V, v2: V, v3: V) {
  if (k > K) { return; }
  let out = G_OFF + k * NV;
  if (c < NV) { grad[out + c] = v0; }
  if (c + TX < NV) { grad[out + c + TX] = v1; }
  if (c + 2u * TX < NV) { grad[out + c + 2u * TX] = v2; }
  if (c + 3u * TX < NV) { grad[out + c + 3u * TX] = v3; }
}
