// Input gradient of a dense layer that follows a ReLU: dX = (dY·Wᵀ) ⊙ ReLU'(a), where a is the
// layer's input (the previous layer's ReLU output; ReLU'(z) = 1 iff z > 0 iff a > 0, and
// ReLU'(0) = 0). The first layer needs no dX and never runs this.
//
// dY is [batch, N] (rows as V), W is [K, N] at W_OFF, a and dX are [batch, K] f32. One thread
// per (sample, k); the dot product over N runs in 4 independent partial sums.
//
// Prepended by the driver: struct StepParams, alias V and helpers (preamble.ts).

override K: u32;
override NV: u32;
override W_OFF: u32;
override TX: u32 = 32u;
override TY: u32 = 2u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<V>;
@group(0) @binding(3) var<storage, read> params: array<V>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(TX, TY)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let k = wid.x * TX + lid.x;
  let s = wid.y * TY + lid.y;
  if (k >= K || s >= step.batch) { return; }
  let at = s * K + k;
  if (a[at] <= 0.0) {
    dx[at] = 0.0;
    return;
  }
  let d = s * NV;
  let w = W_OFF + k * NV;
  var p0 = V(0.0); var p1 = V(0.0); var p2 = V(0.0); var p3 = V(0.0);
  var j = 0u;
  for (; j + 4u <= NV; j += 4u) {
    p0 += dy[d + j] * params[w + j];
    p1 += dy[d + j + 1u] * params[w + j + 1u];
    p2 += dy[d + j + 2u] * params[w + j + 2u];
    p3 += dy[d + j + 3u] * params[w + j + 3u];
  }
  for (; j < NV; j++) {
    p0 += dy[d + j] * params[w + j];
  }
  dx[at] = hsum((p0 + p1) + (p2 + p3));
}
