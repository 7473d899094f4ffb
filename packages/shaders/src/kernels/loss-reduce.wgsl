// Batch mean of the per-sample losses, written to this step's slot of the loss ring, which the
// host reads back in batches (drainStats), never per step.
//
// One workgroup: thread t sums samples t, t + WG, ...; a tree reduction adds the partial sums.
// The order of additions is fixed, so the result is deterministic. WG must be a power of two.
//
// Prepended by the driver: struct StepParams.

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> sampleLoss: array<f32>;
@group(0) @binding(2) var<storage, read_write> lossRing: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32) {
  let batch = step.batch;
  var sum = 0.0;
  for (var s = t; s < batch; s += WG) { sum += sampleLoss[s]; }
  partial[t] = sum;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (t < stride) { partial[t] += partial[t + stride]; }
    workgroupBarrier();
  }
  if (t == 0u) { lossRing[step.lossSlot] = partial[0] / f32(batch); }
}
