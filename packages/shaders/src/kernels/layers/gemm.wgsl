// Tiled matrix product, the workhorse of the layers kind: C[M×N] = A[M×K]·B[K×N], then an
// epilogue (bias, activation) as C is stored.
//
// A, B and C are not arrays but views, generated per use by gemm.ts in the preamble:
// `dims() -> vec3<u32>` gives (M, N, K) for this step's batch; `loadA(m, k)` and `loadB(k, n)`
// read one operand element (called only inside the bounds); `storeC(m, n, acc)` adds the bias,
// applies the activation and writes. So one loop serves a dense layer, the three products of its
// backward pass and a convolution as an implicit GEMM (loadB gathers the im2col column on the fly,
// nothing is materialised).
//
// A workgroup of TN × TM threads computes a (TM·4) × (TN·4) tile of C; each thread owns 4 × 4 of
// it (rows TM apart, columns TN apart, so neighbouring threads store neighbouring columns).
// Every k-slice of TK is first staged in workgroup memory, so each element of A and B is read
// from storage once per workgroup instead of once per thread. Every entry of C is one running
// sum over k in increasing order, so its error is that of a plain float32 dot product.

override TM: u32 = 8u;
override TN: u32 = 8u;

const TK: u32 = 16u;

var<workgroup> aTile: array<f32, TK * TM * 4u>;
var<workgroup> bTile: array<f32, TK * TN * 4u>;

@compute @workgroup_size(TN, TM)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let d = dims();
  let M = d.x;
  let N = d.y;
  let K = d.z;
  let rowsA = TM * 4u;
  let colsB = TN * 4u;
  let m0 = wid.y * rowsA;
  let n0 = wid.x * colsB;
  let t = lid.y * TN + lid.x;
  let threads = TM * TN;

  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }

  for (var k0 = 0u; k0 < K; k0 += TK) {
    // Staging: element (kk, mm) of the A slice and (kk, nn) of the B slice; 0 outside.
    for (var e = t; e < TK * rowsA; e += threads) {
      let kk = e / rowsA;
      let m = m0 + e % rowsA;
      let k = k0 + kk;
      var v = 0.0;
      if (m < M && k < K) { v = loadA(m, k); }
      aTile[e] = v;
    }
    for (var e = t; e < TK * colsB; e += threads) {
      let kk = e / colsB;
      let n = n0 + e % colsB;
      let k = k0 + kk;
      var v = 0.0;
      if (n < N && k < K) { v = loadB(k, n); }
      bTile[e] = v;
    }
    workgroupBarrier();
    let kn = min(TK, K - k0);
    for (var kk = 0u; kk < kn; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = aTile[kk * rowsA + lid.y + i * TM];
        b[i] = bTile[kk * colsB + lid.x + i * TN];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] += a[i] * b[j]; }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y + i * TM;
    if (m >= M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x + j * TN;
      if (n < N) { storeC(m, n, acc[i * 4u + j]); }
    }
  }
}
