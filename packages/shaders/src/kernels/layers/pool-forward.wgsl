// Max or average pooling forward (core's layers/spatial.ts PoolOp), one thread per output
// element of [batch, C, OH, OW]. Max pooling also records, per output, the index within the
// sample of the winning input (the first one on ties, as PyTorch) for the backward pass.
//
// Prepended by the driver: struct StepParams, grid.wgsl, pool.wgsl (the overrides and `step`).

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> winner: array<u32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let o = elementIndex(lid, wid, groups);
  if (o >= step.batch * C * OH * OW) { return; }
  let p = pixelOf(o, OH, OW);
  let s = p.x;
  let c = p.y;
  let oy = p.z;
  let ox = p.w;
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
