// Token + position embedding (core's layers/sequence.ts EmbeddingOp). The sample layout is read
// in place: token t of sample s is input[s·STRIDE + t] (STRIDE = POSITIONS for classify,
// POSITIONS + 1 for next-token, whose last id is only a target), so no copy is made.
//
// forward: out[s, t, j] = token[id, j] + position[t, j], one thread per output element.
// backward (gather, no atomics): one thread per entry of [token; position]; a token entry
// (v, j) sums dy over every position of the batch that holds id v, a position entry (t, j) sums
// dy over the samples. Overwrites the gradient (one writer per tensor).
//
// Prepended by the driver: struct StepParams, grid.wgsl.

override POSITIONS: u32;
override DIM: u32;
override VOCAB: u32;
override STRIDE: u32;
override TOK_OFF: u32;
override POS_OFF: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> tokens: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;

fn tokenAt(s: u32, t: u32) -> u32 {
  return u32(tokens[s * STRIDE + t]);
}

@compute @workgroup_size(WG)
fn forward(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let e = elementIndex(lid, wid, groups);
  if (e >= step.batch * POSITIONS * DIM) { return; }
  let r = e / DIM;
  let j = e % DIM;
  let t = r % POSITIONS;
  let id = tokenAt(r / POSITIONS, t);
  out[e] = params[TOK_OFF + id * DIM + j] + params[POS_OFF + t * DIM + j];
}

@compute @workgroup_size(WG)
fn backward(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let e = elementIndex(lid, wid, groups);
  let batch = step.batch;
  if (e < VOCAB * DIM) {
    let v = e / DIM;
    let j = e % DIM;
    var sum = 0.0;
    for (var s = 0u; s < batch; s++) {
      for (var t = 0u; t < POSITIONS; t++) {
        if (tokenAt(s, t) == v) { sum += dy[(s * POSITIONS + t) * DIM + j]; }
      }
    }
    grad[TOK_OFF + e] = sum;
  } else if (e < (VOCAB + POSITIONS) * DIM) {
    let p = e - VOCAB * DIM;
    let t = p / DIM;
    let j = p % DIM;
    var sum = 0.0;
    for (var s = 0u; s < batch; s++) { sum += dy[(s * POSITIONS + t) * DIM + j]; }
    grad[POS_OFF + p] = sum;
  }
}
