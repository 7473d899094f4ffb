/**
 * Host-side compression of a sparse minibatch for the first dense layer (MNIST is ~80% zeros):
 * CSR rows of [x | 1] for the forward pass and CSC columns of [x | 1] for the weight gradient.
 *
 * The batch is in host memory anyway, so one pass over it here costs less than any GPU
 * compaction pass, and the two lists together are smaller than the dense batch whenever at most
 * a quarter of it is nonzero: the upload shrinks too. Measured on SwiftShader (64×784×128,
 * MNIST): forward 2.0 ms sparse against 5.5 ms for the best dense kernel; weight gradient 2.6 ms
 * sparse. On real GPUs both are small; the sparse form still moves fewer bytes.
 */

/** Buffers of one encoded batch; views into the encoder's storage, valid until its next use. */
export interface SparseBatch {
  /** `rows + 1` offsets into `csrEntries` (in entries). */
  readonly csrRows: Uint32Array;
  /** (input index, float bits) pairs; each row ends with (inputs, 1.0) for the bias. */
  readonly csrEntries: Uint32Array;
  /** `inputs + 2` offsets into `cscEntries`; column `inputs` is the bias column. */
  readonly cscCols: Uint32Array;
  /** (sample, float bits) pairs, samples ascending within a column. */
  readonly cscEntries: Uint32Array;
}

const ONE_BITS = 0x3f800000;

/** Encodes batches of up to `maxRows` rows of `inputs` floats. Allocates nothing per call. */
export class SparseInputEncoder {
  /** Largest number of entries a batch may have (nonzeros plus one bias entry per row). */
  readonly capacity: number;
  private readonly csrRows: Uint32Array;
  private readonly csrEntries: Uint32Array;
  private readonly cscCols: Uint32Array;
  private readonly cscEntries: Uint32Array;
  private readonly fill: Uint32Array;

  constructor(
    readonly inputs: number,
    readonly maxRows: number,
    capacity: number,
  ) {
    this.capacity = capacity;
    this.csrRows = new Uint32Array(maxRows + 1);
    this.csrEntries = new Uint32Array(2 * capacity);
    this.cscCols = new Uint32Array(inputs + 2);
    this.cscEntries = new Uint32Array(2 * capacity);
    this.fill = new Uint32Array(inputs + 1);
  }

  /**
   * The CSR and CSC forms of the first `rows` rows of `x`, or null when the batch has too many
   * nonzeros for `capacity` (then the dense path runs). A zero of either sign is skipped; NaN is
   * kept, so it propagates as in the dense product.
   */
  encode(x: Float32Array, rows: number): SparseBatch | null {
    const k = this.inputs;
    const bits = new Uint32Array(x.buffer, x.byteOffset, rows * k);
    const csr = this.csrEntries;
    const counts = this.cscCols;
    counts.fill(0);
    let n = 0;
    this.csrRows[0] = 0;
    for (let s = 0; s < rows; s++) {
      const row = s * k;
      for (let i = 0; i < k; i++) {
        // ±0 have no bits but the sign bit; NaN and everything else count as nonzero.
        const b = bits[row + i]!;
        if ((b & 0x7fffffff) === 0) continue;
        if (n + rows - s >= this.capacity) return null;
        csr[2 * n] = i;
        csr[2 * n + 1] = b;
        counts[i + 1]!++;
        n++;
      }
      csr[2 * n] = k;
      csr[2 * n + 1] = ONE_BITS;
      n++;
      this.csrRows[s + 1] = n;
    }
    // Column starts from the counts (the bias column has one entry per row).
    counts[k + 1] = rows;
    for (let i = 1; i <= k + 1; i++) counts[i] = counts[i]! + counts[i - 1]!;
    const fill = this.fill;
    fill.set(counts.subarray(0, k + 1));
    const csc = this.cscEntries;
    for (let s = 0; s < rows; s++) {
      for (let e = this.csrRows[s]!; e < this.csrRows[s + 1]!; e++) {
        const column = csr[2 * e]!;
        const at = fill[column]!++;
        csc[2 * at] = s;
        csc[2 * at + 1] = csr[2 * e + 1]!;
      }
    }
    return {
      csrRows: this.csrRows.subarray(0, rows + 1),
      csrEntries: csr.subarray(0, 2 * n),
      cscCols: counts,
      cscEntries: csc.subarray(0, 2 * n),
    };
  }
}
