// Layer norm forward (core's layers/sequence.ts LayerNormOp): per row r of WIDTH values,
// y = (x − mean)·rstd·γ + β with rstd = 1/√(var + ε). One workgroup per row: each thread sums a
// strided part of the row, a tree reduction in workgroup memory adds the parts (mean first, then
// the squared deviations from it, as the CPU does in two passes). mean and rstd are kept per row
// in `stats` (2 floats) for the backward pass. WG must be a power of two.
//
// Prepended by the driver: struct StepParams, grid.wgsl, workgroupSum (workgroup-sum.wgsl).

override WIDTH: u32;
override POSITIONS: u32;
override G_OFF: u32;
override B_OFF: u32;
override EPSILON: f32;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) t: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let r = groupIndex(wid, groups);
  // The whole workgroup leaves together, so the barriers below stay uniform.
  if (r >= step.batch * POSITIONS) { return; }
  let o = r * WIDTH;
  var s = 0.0;
  for (var j = t; j < WIDTH; j += WG) { s += x[o + j]; }
  let mean = workgroupSum(t, vec2<f32>(s, 0.0)).x / f32(WIDTH);
  var q = 0.0;
  for (var j = t; j < WIDTH; j += WG) {
    let c = x[o + j] - mean;
    q += c * c;
  }
  let rstd = 1.0 / sqrt(workgroupSum(t, vec2<f32>(q, 0.0)).x / f32(WIDTH) + EPSILON);
  for (var j = t; j < WIDTH; j += WG) {
    y[o + j] = (x[o + j] - mean) * rstd * params[G_OFF + j] + params[B_OFF + j];
  }
  if (t == 0u) {
    stats[2u * r] = mean;
    stats[2u * r + 1u] = rstd;
  }
}
