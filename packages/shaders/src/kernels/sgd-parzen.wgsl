// Fused SGD step, block-wise Parzen-window test and merge (DESIGN §3.1, core's MergeRule):
//
//   for each block k, for each received peer block v waiting for k in the mailbox:
//     accept v iff 2·⟨g_k, w_k − v⟩ > η·‖g_k‖²  (the local step moves toward v; PARZEN only)
//     and v holds no NaN or ±Infinity (a broken peer cannot poison the model)
//   w_k ← (w_k − η·g_k + Σ accepted v) / (1 + accepted)     (step, then average)
//   w_k ← (w_k + Σ accepted v) / (1 + accepted) − η·g_k     (AVERAGE_FIRST)
//
// Every peer is tested against the same w_k and g_k. Blocks without mail take the plain step.
// One workgroup per block. Offered and accepted counts accumulate in counters[0] and [1] until
// the host drains and clears them.
//
// params and grad are padded with zeros to whole V; BLOCK_V is a block in V units (the block
// size is a multiple of VW whenever V is vec4). Mailbox slot s holds its block's values from
// s·SLOT_V (the schema's slot stride); values past the last parameter (SIZE) are stale and masked. The gradient padding
// is zero, so it adds nothing to the dot products.
//
// Prepended by the driver: struct StepParams, alias V and helpers (preamble.ts), workgroupSum
// (workgroup-sum.wgsl).

override BLOCK_V: u32;
override SLOT_V: u32;
override SIZE: u32;
override SLOTS: u32;
override WG: u32 = 64u;
// The merge rule: average first, then step (else step, then average); the Parzen test on (else
// every finite block is accepted).
override AVERAGE_FIRST: bool = false;
override PARZEN: bool = true;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read_write> params: array<V>;
@group(0) @binding(2) var<storage, read> grad: array<V>;
@group(0) @binding(3) var<storage, read> mailboxValues: array<V>;
@group(0) @binding(4) var<storage, read> mailboxBlocks: array<u32>;
@group(0) @binding(5) var<storage, read_write> counters: array<atomic<u32>>;

var<workgroup> peers: array<u32, SLOTS>;
var<workgroup> verdict: array<u32, SLOTS>;
var<workgroup> peerCount: u32;
var<workgroup> acceptCount: u32;

// Peer value at element i of the block (masked past the last parameter).
fn peerValue(slot: u32, i: u32, first: u32) -> V {
  return keepBelow(mailboxValues[slot * SLOT_V + (i - first)], i * VW, SIZE);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let block = wid.x;
  let first = block * BLOCK_V;
  let last = min(first + BLOCK_V, (SIZE + VW - 1u) / VW);
  let lr = step.learningRate;

  if (t == 0u) {
    var n = 0u;
    let slots = min(step.slotCount, SLOTS);
    for (var s = 0u; s < slots; s++) {
      if (mailboxBlocks[s] == block) {
        peers[n] = s;
        n++;
      }
    }
    peerCount = n;
  }
  let n = workgroupUniformLoad(&peerCount);

  if (n == 0u) {
    for (var i = first + t; i < last; i += WG) {
      params[i] = params[i] - lr * grad[i];
    }
    return;
  }

  var gg = 0.0;
  for (var i = first + t; i < last; i += WG) {
    let g = grad[i];
    gg += hsum(g * g);
  }
  let threshold = lr * workgroupSum(t, vec2<f32>(gg, 0.0)).x;

  for (var m = 0u; m < n; m++) {
    let slot = peers[m];
    var dot = 0.0;
    var broken = 0.0;
    for (var i = first + t; i < last; i += WG) {
      let v = peerValue(slot, i, first);
      dot += hsum(grad[i] * (params[i] - v));
      broken += select(0.0, 1.0, nonFinite(v));
    }
    let r = workgroupSum(t, vec2<f32>(dot, broken));
    if (t == 0u) {
      verdict[m] = select(0u, 1u, r.y == 0.0 && (!PARZEN || 2.0 * r.x > threshold));
    }
  }
  workgroupBarrier();
  if (t == 0u) {
    var accepted = 0u;
    for (var m = 0u; m < n; m++) { accepted += verdict[m]; }
    acceptCount = accepted;
    atomicAdd(&counters[0], n);
    atomicAdd(&counters[1], accepted);
  }
  let accepted = workgroupUniformLoad(&acceptCount);
  let divisor = f32(1u + accepted);
  for (var i = first + t; i < last; i += WG) {
    var sum = select(params[i] - lr * grad[i], params[i], AVERAGE_FIRST);
    for (var m = 0u; m < n; m++) {
      if (verdict[m] != 0u) { sum += peerValue(peers[m], i, first); }
    }
    params[i] = select(sum / divisor, sum / divisor - lr * grad[i], AVERAGE_FIRST);
  }
}
