// Dense layer forward on a dense input: y = x·W + b, then ReLU when RELU.
//
// x is [batch, K] f32, row-major; W is [K, N] and the bias row b follows it directly in the
// parameter vector (spec.ts lays out weight then bias), so [W; b] is one [K + 1, N] matrix at
// W_OFF. y is [batch, N]. Rows of W and y are streamed as V (vec4 where N and W_OFF allow).
//
// Tiling: a workgroup computes TY·4 samples × TX·4 V-columns. Each k-slice of TK inputs is staged
// in workgroup memory (x tile and W tile), then every thread accumulates its 4 samples × 4
// columns from there: each staged W vector is reused by 4 samples and each x value by 4 columns
// in registers, and by the whole workgroup through the tiles.
//
// Prepended by the driver: struct StepParams, alias V and helpers (preamble.ts).

override K: u32;
override NV: u32;
override W_OFF: u32;
override RELU: bool = false;
override TX: u32 = 8u;
override TY: u32 = 4u;

const TK: u32 = 16u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<V>;
@group(0) @binding(3) var<storage, read_write> y: array<V>;

var<workgroup> xTile: array<f32, TY * 4u * TK>;
var<workgroup> wTile: array<V, TK * TX * 4u>;

@compute @workgroup_size(TX, TY)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let batch = step.batch;
  let tileCols = TX * 4u;
  let col0 = wid.x * tileCols;
  let sample0 = wid.y * TY * 4u;
  let r0 = lid.y * 4u;

  var a00 = V(0.0); var a01 = V(0.0); var a02 = V(0.0); var a03 = V(0.0);
  var a10 = V(0.0); var a11 = V(0.0); var a12 = V(0.0); var a13 = V(0.0);
  var a20 = V(0.0); var a21 = V(0.0); var a22 = V(0.0); var a23 = V(0.0);
  var a30 = V(0.0); var a31 = V(0.0); var a32 = V(0.0); var a33 = V(0.0);

  for (var k0 = 0u; k0 < K; k0 += TK) {
    // Stage x: this thread's 4 rows, k-columns lid.x, lid.x + TX, ...; zeros outside.
    for (var kk = lid.x; kk < TK; kk += TX) {
      let k = k0 + kk;
      for (var r = 0u; r < 4u; r++) {
        let s = sample0 + r0 + r;
        let inside = s < batch && k < K;
        xTile[(r0 + r) * TK + kk] = select(0.0, x[select(0u, s * K + k, inside)], inside);
      }
    }
    // Stage W: k-rows lid.y, lid.y + TY, ...; this thread's 4 columns, TX apart.
    for (var kk = lid.y; kk < TK; kk += TY) {
      let k = k0 + kk;
      for (var j = 0u; j < 4u; j++) {
        let c = col0 + lid.x + j * TX;
        let inside = k < K && c < NV;
        wTile[kk * tileCols + lid.x + j * TX] =
          select(V(0.0), params[select(0u, W_OFF + k * NV + c, inside)], inside);
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let wrow = kk * tileCols + lid.x;
      let w0 = wTile[wrow];
      let w1 = wTile[wrow + TX];
      let w2 = wTile[wrow + 2u * TX];
      let w3 = wTile[wrow + 3u * TX];
      let x0 = xTile[r0 * TK + kk];
      let x1 = xTile[(r0 + 1u) * TK + kk];
      let x2 = xTile[(r0 + 2u) * TK + kk];
      let x3 = xTile[(r0 + 3u) * TK + kk];
      a00 += x0 * w0; a01 += x0 * w1; a02 += x0 * w2; a03 += x0 * w3;
      a10 += x1 * w0; a11 += x1 * w1; a12 += x1 * w2; a13 += x1 * w3;
      a20 += x2 * w0; a21 += x2 * w1; a22 += x2 * w2; a23 += x2 * w3;
      a30 += x3 * w0; a31 += x3 * w1; a32 += x3 * w2; a33 += x3 * w3;
    }
    workgroupBarrier();
  }

  store(sample0 + r0, col0 + lid.x, a00, a01, a02, a03, batch);
  store(sample0 + r0 + 1u, col0 + lid.x, a10, a11, a12, a13, batch);
  store(sample0 + r0 + 2u, col0 + lid.x, a20, a21, a22, a23, batch);
  store(sample0 + r0 + 3u, col0 + lid.x, a30, a31, a32, a33, batch);
}

// Adds the bias, applies ReLU and writes one sample's 4 columns (TX apart) that exist.
fn store(s: u32, c: u32, v0: V, v1: V, v2: V, v3: V, batch: u32) {
  if (s >= batch) { return; }
  let bias = W_OFF + K * NV;
  if (c < NV) { y[s * NV + c] = activate(v0 + params[bias + c]); }
  if (c + TX < NV) { y[s * NV + c + TX] = activate(v1 + params[bias + c + TX]); }
  if (c + 2u * TX < NV) { y[s * NV + c + 2u * TX] = activate(v2 + params[bias + c + 2u * TX]); }
  if (c + 3u * TX < NV) { y[s * NV + c + 3u * TX] = activate(v3 + params[bias + c + 3u * TX]); }
}

fn activate(v: V) -> V {
  if (RELU) { return max(v, V(0.0)); }
  return v;
}
