// Next-token softmax cross-entropy (core's LayersNetwork, loss `next-token`): logits are
// [batch, POSITIONS, VOCAB]; position t of sample s is scored on token input[s·(POSITIONS + 1) +
// t + 1]. The loss is the mean over all batch·POSITIONS scored positions.
//
// score: one thread per scored position: its loss (log-sum-exp from the maximum, as the
// classify head) into positionLoss, and ∂(mean loss)/∂logits = (softmax − onehot)/(batch·POSITIONS).
// per_sample: one thread per sample: the mean of its positions' losses into sampleLoss, whose
// batch mean (loss-reduce.wgsl) is then the mean over every scored position.
//
// Prepended by the driver: struct StepParams, grid.wgsl.

override POSITIONS: u32;
override VOCAB: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> tokens: array<f32>;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> positionLoss: array<f32>;
@group(0) @binding(5) var<storage, read_write> sampleLoss: array<f32>;

@compute @workgroup_size(WG)
fn score(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let r = elementIndex(lid, wid, groups);
  let scored = step.batch * POSITIONS;
  if (r >= scored) { return; }
  let s = r / POSITIONS;
  let t = r % POSITIONS;
  let label = u32(tokens[s * (POSITIONS + 1u) + t + 1u]);
  let row = r * VOCAB;
  var m = logits[row];
  for (var j = 1u; j < VOCAB; j++) { m = max(m, logits[row + j]); }
  var sum = 0.0;
  for (var j = 0u; j < VOCAB; j++) { sum += exp(logits[row + j] - m); }
  let lse = m + log(sum);
  positionLoss[r] = lse - logits[row + label];
  let scale = 1.0 / f32(scored);
  for (var j = 0u; j < VOCAB; j++) {
    let p = exp(logits[row + j] - lse);
    dlogits[row + j] = (p - select(0.0, 1.0, j == label)) * scale;
  }
}

@compute @workgroup_size(WG)
fn per_sample(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = gid.x;
  if (s >= step.batch) { return; }
  var sum = 0.0;
  for (var t = 0u; t < POSITIONS; t++) { sum += positionLoss[s * POSITIONS + t]; }
  sampleLoss[s] = sum / f32(POSITIONS);
}
