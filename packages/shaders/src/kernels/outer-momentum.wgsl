// Outer momentum on the merged state (DESIGN §3.1, core's MergeRule), one thread per vec4 of
// parameters, run after the merge of every momentumPeriod-th step:
//
//   a = anchor − w;  d ← β·d + a;  w ← anchor − d;  anchor ← w
//
// The padding past the last parameter is zero in all three buffers and stays zero.
//
// Prepended by the driver: groupIndex/elementIndex (layers/grid.wgsl).

override COUNT_V: u32;
override BETA: f32;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> anchor: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> displacement: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let i = elementIndex(lid, wid, groups);
  if (i >= COUNT_V) { return; }
  let a = anchor[i];
  let d = BETA * displacement[i] + (a - params[i]);
  let w = a - d;
  displacement[i] = d;
  params[i] = w;
  anchor[i] = w;
}
