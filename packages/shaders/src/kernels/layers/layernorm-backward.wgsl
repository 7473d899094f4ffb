// Layer norm input gradient (core's LayerNormOp.backward): per row, with x̂ = (x − mean)·rstd
// and d̂ = dy·γ, dx = rstd·(d̂ − mean(d̂) − x̂·mean(d̂·x̂)). One workgroup per row, the two means
// by workgroup tree reductions. WG must be a power of two.
//
// Prepended by the driver: struct StepParams, grid.wgsl, workgroupSum (workgroup-sum.wgsl).

override WIDTH: u32;
override POSITIONS: u32;
override G_OFF: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) t: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let r = groupIndex(wid, groups);
  if (r >= step.batch * POSITIONS) { return; }
  let o = r * WIDTH;
  let mean = stats[2u * r];
  let rstd = stats[2u * r + 1u];
  var s = vec2<f32>(0.0);
  for (var j = t; j < WIDTH; j += WG) {
    let xhat = (x[o + j] - mean) * rstd;
    let d = dy[o + j] * params[G_OFF + j];
    s += vec2<f32>(d, d * xhat);
  }
  let means = workgroupSum(t, s) / f32(WIDTH);
  for (var j = t; j < WIDTH; j += WG) {
    let xhat = (x[o + j] - mean) * rstd;
    dx[o + j] = rstd * (dy[o + j] * params[G_OFF + j] - means.x - xhat * means.y);
  }
}
