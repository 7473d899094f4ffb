// Dense layer forward on a sparse input (the first layer on data such as MNIST, ~80% zeros):
// y = x·W + b, then ReLU when RELU, visiting only the nonzero inputs.
//
// The input comes as CSR rows of [x | 1]: row s holds entries rowStart[s] .. rowStart[s + 1] - 1,
// each (input index k, bits of x[s, k]), and ends with (K, 1.0), which picks the bias row of
// [W; b] (the bias follows W in the parameter vector). Skipping zeros is exact: a zero input
// contributes nothing (the CPU reference skips them too).
//
// A sample's TX threads each own 4 V-columns, TX apart, so the W row loads of neighbouring
// threads are contiguous. TS samples per workgroup.
//
// Prepended by the driver: struct StepParams, alias V and helpers (preamble.ts).

override NV: u32;
override W_OFF: u32;
override RELU: bool = false;
override TX: u32 = 8u;
override TS: u32 = 8u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> rowStart: array<u32>;
@group(0) @binding(2) var<storage, read> entries: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> params: array<V>;
@group(0) @binding(4) var<storage, read_write> y: array<V>;

@compute @workgroup_size(TX, TS)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let s = wid.y * TS + lid.y;
  if (s >= step.batch) { return; }
  let c = wid.x * TX * 4u + lid.x;
  // Columns past the end are clamped for loading and never stored.
  let c0 = min(c, NV - 1u);
  let c1 = min(c + TX, NV - 1u);
  let c2 = min(c + 2u * TX, NV - 1u);
  let c3 = min(c + 3u * TX, NV - 1u);
  var a0 = V(0.0); var a1 = V(0.0); var a2 = V(0.0); var a3 = V(0.0);
  let end = rowStart[s + 1u];
  for (var e = rowStart[s]; e < end; e++) {
    let entry = entries[e];
    let v = bitcast<f32>(entry.y);
    let row = W_OFF + entry.x * NV;
    a0 += v * params[row + c0];
    a1 += v * params[row + c1];
    a2 += v * params[row + c2];
    a3 += v * params[row + c3];
  }
  let out = s * NV;
  if (c < NV) { y[out + c] = activate(a0); }
  if (c + TX < NV) { y[out + c + TX] = activate(a1); }
  if (c + 2u * TX < NV) { y[out + c + 2u * TX] = activate(a2); }
  if (c + 3u * TX < NV) { y[out + c + 3u * TX] = activate(a3); }
}

fn activate(v: V) -> V {
  if (RELU) { return max(v, V(0.0)); }
  return v;
}
