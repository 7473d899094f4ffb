/**
 * In-memory datasets: dense float32 features, row-major, one row per sample, and optional
 * integer class labels. Every source (built-in MNIST, synthetic clusters, IDX, CSV, NPY) produces
 * this shape.
 */
export interface Dataset {
  /** Human-readable name, e.g. `mnist/train`. */
  readonly name: string;
  /** Number of samples. */
  readonly count: number;
  /** Features per sample. */
  readonly features: number;
  /** `count × features` floats, row-major. */
  readonly x: Float32Array;
  /** One class index per sample, or null for unlabelled data (K-Means). */
  readonly labels: Uint32Array | null;
  /** Number of classes when labelled, 0 otherwise. */
  readonly classes: number;
}

/** A minibatch: `size` consecutive rows of features and, when labelled, their labels. */
export interface Batch {
  readonly size: number;
  /** `size × features` floats, row-major. */
  readonly x: Float32Array;
  /** `size` labels, or null for unlabelled models. */
  readonly labels: Uint32Array | null;
}
