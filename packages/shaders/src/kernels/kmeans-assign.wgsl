// K-Means assignment: for each sample, the nearest centre (the lowest index among equal
// distances) and half its squared distance, the sample's loss ½·min_j ‖x − c_j‖².
//
// One thread per sample; loss-reduce.wgsl averages the losses.
//
// Prepended by the driver: struct StepParams, kmeans.wgsl (the overrides, step, x and params).

@group(0) @binding(3) var<storage, read_write> nearest: array<u32>;
@group(0) @binding(4) var<storage, read_write> sampleLoss: array<f32>;

fn distance2(s: u32, j: u32) -> f32 {
  let xr = s * DIMS;
  let cr = C_OFF + j * DIMS;
  var d = 0.0;
  for (var t = 0u; t < DIMS; t++) {
    let diff = x[xr + t] - params[cr + t];
    d += diff * diff;
  }
  return d;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = gid.x;
  if (s >= step.batch) { return; }
  var best = distance2(s, 0u);
  var bestJ = 0u;
  for (var j = 1u; j < CLUSTERS; j++) {
    let d = distance2(s, j);
    // Strict: a later centre at the same distance does not win.
    if (d < best) {
      best = d;
      bestJ = j;
    }
  }
  nearest[s] = bestJ;
  sampleLoss[s] = 0.5 * best;
}
