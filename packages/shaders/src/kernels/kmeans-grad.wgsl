// K-Means gradient of the batch-mean loss: ∂/∂c_j = (1/batch)·Σ_{i: nearest(i) = j} (c_j − x_i).
// Centres with no sample get zero.
//
// One thread per centre coordinate (j, t); samples are visited in order, so the sum is
// deterministic.
//
// Prepended by the driver: struct StepParams, kmeans.wgsl (the overrides, step, x and params).

@group(0) @binding(3) var<storage, read> nearest: array<u32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= CLUSTERS * DIMS) { return; }
  let j = i / DIMS;
  let t = i - j * DIMS;
  let c = params[C_OFF + i];
  let batch = step.batch;
  var sum = 0.0;
  for (var s = 0u; s < batch; s++) {
    if (nearest[s] == j) { sum += c - x[s * DIMS + t]; }
  }
  grad[C_OFF + i] = sum / f32(batch);
}
