/**
 * Matrix products on flat row-major arrays with offsets and leading dimensions, the workhorse of
 * the layer graph on the CPU. Each variant reads its operands in the order they lie in memory
 * and blocks over the shared dimension so a tile of B stays in cache while the rows of A pass
 * over it. `Float32Array` in training; `Float64Array` in the gradient checks, through the
 * same code.
 *
 * All variants accumulate: C += A·B (or the transposed forms). Callers zero C when they need a
 * plain product.
 */
export type FloatArray = Float32Array | Float64Array;

/** Rows of the shared dimension per block: 64 rows of a 256-wide B are 64 KiB of float32. */
const K_BLOCK = 64;

/**
 * The signature every variant shares: the product's sizes, then each operand as (array, offset
 * of its first element, leading dimension: the stride between its rows as stored).
 */
type Gemm = (
  m: number,
  n: number,
  k: number,
  a: FloatArray,
  aOff: number,
  lda: number,
  b: FloatArray,
  bOff: number,
  ldb: number,
  c: FloatArray,
  cOff: number,
  ldc: number,
) => void;

/** C[M×N] += A[M×K] · B[K×N]. */
export const gemmNN: Gemm = (m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc) => {
  for (let k0 = 0; k0 < k; k0 += K_BLOCK) {
    const k1 = Math.min(k, k0 + K_BLOCK);
    for (let i = 0; i < m; i++) {
      const c0 = cOff + i * ldc;
      const a0 = aOff + i * lda;
      let p = k0;
      // Four rows of B per pass over the row of C: a quarter of the loads and stores of C.
      for (; p + 3 < k1; p += 4) {
        const x0 = a[a0 + p]!;
        const x1 = a[a0 + p + 1]!;
        const x2 = a[a0 + p + 2]!;
        const x3 = a[a0 + p + 3]!;
        if (x0 === 0 && x1 === 0 && x2 === 0 && x3 === 0) continue;
        const b0 = bOff + p * ldb;
        const b1 = b0 + ldb;
        const b2 = b1 + ldb;
        const b3 = b2 + ldb;
        for (let j = 0; j < n; j++) {
          c[c0 + j] =
            c[c0 + j]! + x0 * b[b0 + j]! + x1 * b[b1 + j]! + x2 * b[b2 + j]! + x3 * b[b3 + j]!;
        }
      }
      for (; p < k1; p++) {
        const x = a[a0 + p]!;
        if (x === 0) continue;
        const b0 = bOff + p * ldb;
        for (let j = 0; j < n; j++) c[c0 + j] = c[c0 + j]! + x * b[b0 + j]!;
      }
    }
  }
};

/** C[M×N] += A[M×K] · B[N×K]ᵀ: dot products of rows of A with rows of B. */
export const gemmNT: Gemm = (m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc) => {
  for (let i = 0; i < m; i++) {
    const a0 = aOff + i * lda;
    const c0 = cOff + i * ldc;
    let j = 0;
    // Four rows of B at once: each element of A's row is loaded once for four dot products.
    for (; j + 3 < n; j += 4) {
      const b0 = bOff + j * ldb;
      const b1 = b0 + ldb;
      const b2 = b1 + ldb;
      const b3 = b2 + ldb;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let p = 0; p < k; p++) {
        const x = a[a0 + p]!;
        s0 += x * b[b0 + p]!;
        s1 += x * b[b1 + p]!;
        s2 += x * b[b2 + p]!;
        s3 += x * b[b3 + p]!;
      }
      c[c0 + j] = c[c0 + j]! + s0;
      c[c0 + j + 1] = c[c0 + j + 1]! + s1;
      c[c0 + j + 2] = c[c0 + j + 2]! + s2;
      c[c0 + j + 3] = c[c0 + j + 3]! + s3;
    }
    for (; j < n; j++) {
      const b0 = bOff + j * ldb;
      let s = 0;
      for (let p = 0; p < k; p++) s += a[a0 + p]! * b[b0 + p]!;
      c[c0 + j] = c[c0 + j]! + s;
    }
  }
};

/** C[M×N] += A[K×M]ᵀ · B[K×N]: a sum over the K rows of outer products. */
export const gemmTN: Gemm = (m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc) => {
  for (let k0 = 0; k0 < k; k0 += K_BLOCK) {
    const k1 = Math.min(k, k0 + K_BLOCK);
    for (let i = 0; i < m; i++) {
      const c0 = cOff + i * ldc;
      let p = k0;
      for (; p + 1 < k1; p += 2) {
        const x0 = a[aOff + p * lda + i]!;
        const x1 = a[aOff + (p + 1) * lda + i]!;
        if (x0 === 0 && x1 === 0) continue;
        const b0 = bOff + p * ldb;
        const b1 = b0 + ldb;
        for (let j = 0; j < n; j++) c[c0 + j] = c[c0 + j]! + x0 * b[b0 + j]! + x1 * b[b1 + j]!;
      }
      for (; p < k1; p++) {
        const x = a[aOff + p * lda + i]!;
        if (x === 0) continue;
        const b0 = bOff + p * ldb;
        for (let j = 0; j < n; j++) c[c0 + j] = c[c0 + j]! + x * b[b0 + j]!;
      }
    }
  }
};
