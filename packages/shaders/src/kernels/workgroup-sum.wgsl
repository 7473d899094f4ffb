// A tree sum over the workgroup, one vec2 per thread: the reductions of sgd-parzen.wgsl and the
// layer norms. Needs `override WG`, a power of two.
//
// Prepended by the driver to the kernels that reduce.

var<workgroup> partial: array<vec2<f32>, WG>;

// Sum of every thread's v over the workgroup; every thread gets the total. Call in uniform
// control flow.
fn workgroupSum(t: u32, v: vec2<f32>) -> vec2<f32> {
  partial[t] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (t < stride) { partial[t] += partial[t + stride]; }
    workgroupBarrier();
  }
  let total = partial[0];
  // No thread may overwrite partial in a next call before all have read the total.
  workgroupBarrier();
  return total;
}
