// The core of causal multi-head self-attention (core's layers/sequence.ts AttentionOp) between
// its two projections, which run as GEMMs. Per sample, qkv is [T, 3·D] with head h's query, key
// and value at h·DH, D + h·DH and 2·D + h·DH; probs and dScores are [H, T, T] (zero above the
// diagonal); context and dContext are [T, D] with head h at h·DH.
//
// forward, one thread per (sample, head, query i), fused: scores q_i·k_j/√DH for j ≤ i, their
// softmax (from the maximum), kept in probs, and context_i = Σ_j P_ij·v_j.
// backward_query, per (sample, head, i): dP_ij = dContext_i·v_j, the softmax backward
// dS_ij = P_ij·(dP_ij − Σ_j P_ij·dP_ij)/√DH into dScores, and dq_i = Σ_j dS_ij·k_j.
// backward_key, per (sample, head, j), after backward_query: dk_j = Σ_{i≥j} dS_ij·q_i and
// dv_j = Σ_{i≥j} P_ij·dContext_i. Gathers only: every output has one writer, no atomics.
//
// Prepended by the driver: struct StepParams, grid.wgsl.

override T: u32;
override D: u32;
override H: u32;
override DH: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> context: array<f32>;
@group(0) @binding(4) var<storage, read> dContext: array<f32>;
@group(0) @binding(5) var<storage, read_write> dScores: array<f32>;
@group(0) @binding(6) var<storage, read_write> dQkv: array<f32>;

struct Row {
  valid: bool,
  s: u32,
  h: u32,
  i: u32,
}

fn rowOf(wid: vec3<u32>, groups: vec3<u32>, lid: u32) -> Row {
  let e = elementIndex(lid, wid, groups);
  let i = e % T;
  let sh = e / T;
  return Row(e < step.batch * H * T, sh / H, sh % H, i);
}

// Float index of head h's part `part` (0 q, 1 k, 2 v) of position t of sample s in qkv.
fn qkvAt(s: u32, t: u32, part: u32, h: u32) -> u32 {
  return (s * T + t) * 3u * D + part * D + h * DH;
}

fn ctxAt(s: u32, t: u32, h: u32) -> u32 {
  return (s * T + t) * D + h * DH;
}

// Float index of row (h, i) of sample s in probs and dScores.
fn scoresAt(r: Row) -> u32 {
  return ((r.s * H + r.h) * T + r.i) * T;
}

// Column c of Σ_{j ≤ i} w_ij·(part `part` of head h at position j), w being row r of probs, or of
// dScores with fromScores: context = P·v in forward, dq = dS·k in backward_query.
fn weightedSum(r: Row, fromScores: bool, part: u32, c: u32) -> f32 {
  let p0 = scoresAt(r);
  var acc = 0.0;
  for (var j = 0u; j <= r.i; j++) {
    var w: f32;
    if (fromScores) { w = dScores[p0 + j]; } else { w = probs[p0 + j]; }
    acc += w * qkv[qkvAt(r.s, j, part, r.h) + c];
  }
  return acc;
}

@compute @workgroup_size(WG)
fn forward(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let r = rowOf(wid, groups, lid);
  if (!r.valid) { return; }
  let scale = 1.0 / sqrt(f32(DH));
  let q = qkvAt(r.s, r.i, 0u, r.h);
  let p0 = scoresAt(r);
  var m = 0.0;
  for (var j = 0u; j <= r.i; j++) {
    let k = qkvAt(r.s, j, 1u, r.h);
    var dot = 0.0;
    for (var c = 0u; c < DH; c++) { dot += qkv[q + c] * qkv[k + c]; }
    let v = dot * scale;
    probs[p0 + j] = v;
    m = select(max(m, v), v, j == 0u);
  }
  var sum = 0.0;
  for (var j = 0u; j <= r.i; j++) {
    let e = exp(probs[p0 + j] - m);
    probs[p0 + j] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var j = 0u; j <= r.i; j++) { probs[p0 + j] *= inv; }
  for (var j = r.i + 1u; j < T; j++) { probs[p0 + j] = 0.0; }
  let out = ctxAt(r.s, r.i, r.h);
  for (var c = 0u; c < DH; c++) { context[out + c] = weightedSum(r, false, 2u, c); }
}

@compute @workgroup_size(WG)
fn backward_query(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let r = rowOf(wid, groups, lid);
  if (!r.valid) { return; }
  let scale = 1.0 / sqrt(f32(DH));
  let p0 = scoresAt(r);
  let dc = ctxAt(r.s, r.i, r.h);
  var dot = 0.0;
  for (var j = 0u; j <= r.i; j++) {
    let v = qkvAt(r.s, j, 2u, r.h);
    var dp = 0.0;
    for (var c = 0u; c < DH; c++) { dp += dContext[dc + c] * qkv[v + c]; }
    dScores[p0 + j] = dp;
    dot += probs[p0 + j] * dp;
  }
  for (var j = 0u; j <= r.i; j++) {
    dScores[p0 + j] = probs[p0 + j] * (dScores[p0 + j] - dot) * scale;
  }
  for (var j = r.i + 1u; j < T; j++) { dScores[p0 + j] = 0.0; }
  let dq = qkvAt(r.s, r.i, 0u, r.h);
  for (var c = 0u; c < DH; c++) { dQkv[dq + c] = weightedSum(r, true, 1u, c); }
}

@compute @workgroup_size(WG)
fn backward_key(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let r = rowOf(wid, groups, lid);
  if (!r.valid) { return; }
  // Here r.i is the key position j; the queries that saw it are i ≥ j.
  let j = r.i;
  let base = (r.s * H + r.h) * T * T;
  let dk = qkvAt(r.s, j, 1u, r.h);
  let dv = qkvAt(r.s, j, 2u, r.h);
  for (var c = 0u; c < DH; c++) {
    var accK = 0.0;
    var accV = 0.0;
    for (var i = j; i < T; i++) {
      let at = base + i * T + j;
      accK += dScores[at] * qkv[qkvAt(r.s, i, 0u, r.h) + c];
      accV += probs[at] * dContext[ctxAt(r.s, i, r.h) + c];
    }
    dQkv[dk + c] = accK;
    dQkv[dv + c] = accV;
  }
}
