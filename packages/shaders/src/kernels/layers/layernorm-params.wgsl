// Layer norm parameter gradients: ∂γ_j = Σ_r dy[r, j]·x̂[r, j] and ∂β_j = Σ_r dy[r, j] over every
// row of the batch. One workgroup per column j: threads take rows t, t + WG, ...; a tree
// reduction adds their sums. Overwrites the gradient (one writer per tensor). WG must be a power
// of two.
//
// Prepended by the driver: struct StepParams, grid.wgsl, workgroupSum (workgroup-sum.wgsl).

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

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) t: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let j = groupIndex(wid, groups);
  if (j >= WIDTH) { return; }
  let rows = step.batch * POSITIONS;
  var s = vec2<f32>(0.0);
  for (var r = t; r < rows; r += WG) {
    let xhat = (x[r * WIDTH + j] - stats[2u * r]) * stats[2u * r + 1u];
    let d = dy[r * WIDTH + j];
    s += vec2<f32>(d * xhat, d);
  }
  let total = workgroupSum(t, s);
  if (t == 0u) {
    grad[G_OFF + j] = total.x;
    grad[B_OFF + j] = total.y;
  }
}
