// Layer norm parameter gradients: ∂γ_j = Σ_r dy[r, j]·x̂[r, j] and ∂β_j = Σ_r dy[r, j] over every
// row of the batch. One workgroup per column j: threads take rows t, t + WG, ...; a tree
// reduction adds their sums. Overwrites the gradient (one writer per tensor). WG must be a power
// of two.
//
// Prepended by the driver: struct StepParams.

override WIDTH: u32;
override POSITIONS: u32;
override G_OFF: u32;
override B_OFF: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

var<workgroup> partial: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) t: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let j = wid.y * groups.x + wid.x;
  if (j >= WIDTH) { return; }
  let rows = step.batch * POSITIONS;
  var s = vec2<f32>(0.0);
  for (var r = t; r < rows; r += WG) {
    let xhat = (x[r * WIDTH + j] - stats[2u * r]) * stats[2u * r + 1u];
    let d = dy[r * WIDTH + j];
    s += vec2<f32>(d * xhat, d);
  }
  partial[t] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (t < stride) { partial[t] += partial[t + stride]; }
    workgroupBarrier();
  }
  if (t == 0u) {
    grad[G_OFF + j] = partial[0].x;
    grad[B_OFF + j] = partial[0].y;
  }
}
