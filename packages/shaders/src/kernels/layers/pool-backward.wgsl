// Max or average pooling backward as a gather: one thread per input element of
// [batch, C, IH, IW] sums the upstream gradient of every output whose window holds it (for max
// pooling, only those it won), in increasing output order as core's PoolOp adds them. No two
// threads write one element, so no atomics are needed even for overlapping windows.
//
// Prepended by the driver: struct StepParams, grid.wgsl, pool.wgsl (the overrides and `step`).

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> winner: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// Outputs whose window [o·STRIDE, o·STRIDE + SIZE) holds input coordinate i: [first, last).
fn windows(i: u32, outs: u32) -> vec2<u32> {
  let first = select(0u, (i + 1u - SIZE + STRIDE - 1u) / STRIDE, i + 1u >= SIZE);
  let last = min(outs, i / STRIDE + 1u);
  return vec2<u32>(first, last);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let e = elementIndex(lid, wid, groups);
  let perSample = C * IH * IW;
  if (e >= step.batch * perSample) { return; }
  let p = pixelOf(e, IH, IW);
  // Index within the sample, as the forward pass records its winners.
  let local = e % perSample;
  let ys = windows(p.z, OH);
  let xs = windows(p.w, OW);
  let o0 = (p.x * C + p.y) * OH * OW;
  let share = 1.0 / f32(SIZE * SIZE);
  var sum = 0.0;
  for (var oy = ys.x; oy < ys.y; oy++) {
    for (var ox = xs.x; ox < xs.y; ox++) {
      let o = o0 + oy * OW + ox;
      if (MAX) {
        if (winner[o] == local) { sum += dy[o]; }
      } else {
        sum += dy[o] * share;
      }
    }
  }
  dx[e] = sum;
}
