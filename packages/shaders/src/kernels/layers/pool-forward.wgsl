// Max or average pooling forward (core's layers/spatial.ts PoolOp), one thread per output
// element of [batch, C, OH, OW]. Max pooling also records, per output, the index within the
// sample of the winning input (the first one on ties, as PyTorch) for the backward pass.
//
// Prepended by the driver: struct StepParams.

override MAX: bool;
override C: u32;
override IH: u32;
override IW: u32;
override OH: u32;
override OW: u32;
override SIZE: u32;
override STRIDE: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> winner: array<u32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let o = (wid.y * groups.x + wid.x) * WG + lid;
  let perSample = C * OH * OW;
  if (o >= step.batch * perSample) { return; }
  let s = o / perSample;
  let r = o % perSample;
  let c = r / (OH * OW);
  let oy = (r / OW) % OH;
  let ox = r % OW;
  let x0 = s * C * IH * IW;
  // The window's first input, then a strict comparison: the first maximum wins. PoolOp starts
  // from −∞ instead (WGSL cannot spell it), which differs only for windows of NaN or −∞.
  let first = (c * IH + oy * STRIDE) * IW + ox * STRIDE;
  var best = x[x0 + first];
  var at = first;
  var sum = 0.0;
  for (var ky = 0u; ky < SIZE; ky++) {
    let row = (c * IH + oy * STRIDE + ky) * IW + ox * STRIDE;
    for (var kx = 0u; kx < SIZE; kx++) {
      let v = x[x0 + row + kx];
      sum += v;
      if (v > best) {
        best = v;
        at = row + kx;
      }
    }
  }
  if (MAX) {
    y[o] = best;
    winner[o] = at;
  } else {
    y[o] = sum * (1.0 / f32(SIZE * SIZE));
  }
}
