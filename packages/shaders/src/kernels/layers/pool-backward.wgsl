// Max or average pooling backward as a gather: one thread per input element of
// [batch, C, IH, IW] sums the upstream gradient of every output whose window holds it (for max
// pooling, only those it won), in increasing output order as core's PoolOp adds them. No two
// threads write one element, so no atomics are needed even for overlapping windows.
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
  let e = (wid.y * groups.x + wid.x) * WG + lid;
  let perSample = C * IH * IW;
  if (e >= step.batch * perSample) { return; }
  let s = e / perSample;
  let local = e % perSample;
  let c = local / (IH * IW);
  let iy = (local / IW) % IH;
  let ix = local % IW;
  let ys = windows(iy, OH);
  let xs = windows(ix, OW);
  let o0 = s * C * OH * OW + c * OH * OW;
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
