// Softmax cross-entropy head: per sample, loss = log Σ_j exp(z_j) − z_label (computed as
// m + log Σ_j exp(z_j − m), m = max_j z_j, so large logits cannot overflow) and the gradient of
// the batch-mean loss w.r.t. the logits, (softmax(z) − onehot(label)) / batch.
//
// logits and dlogits are [batch, CLASSES] f32; labels are validated below CLASSES on the host.
// Per-sample losses go to sampleLoss; loss-reduce.wgsl turns them into the batch mean.
// One thread per sample.
//
// Prepended by the driver: struct StepParams.

override CLASSES: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> sampleLoss: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = gid.x;
  let batch = step.batch;
  if (s >= batch) { return; }
  let row = s * CLASSES;
  var m = logits[row];
  for (var j = 1u; j < CLASSES; j++) { m = max(m, logits[row + j]); }
  var sum = 0.0;
  for (var j = 0u; j < CLASSES; j++) { sum += exp(logits[row + j] - m); }
  let lse = m + log(sum);
  let label = labels[s];
  sampleLoss[s] = lse - logits[row + label];
  let scale = 1.0 / f32(batch);
  for (var j = 0u; j < CLASSES; j++) {
    let p = exp(logits[row + j] - lse);
    dlogits[row + j] = (p - select(0.0, 1.0, j == label)) * scale;
  }
}
