import { DatasetFormatError } from './errors.ts';

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

/**
 * A dense n-dimensional array as read from a file (IDX, NPY): values converted to float32 and
 * laid out row-major (C order) whatever the file's own order.
 */
export interface NdArray {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * Upper bound on the class count, so a stray huge label (a regression target, a corrupt file)
 * fails loudly instead of asking a model for millions of output units.
 */
export const MAX_CLASSES = 65_536;

/** What `makeDataset` needs; `count` follows from `x.length / features`. */
export interface DatasetInit {
  readonly name: string;
  readonly x: Float32Array;
  readonly features: number;
  /** Default null (unlabelled). */
  readonly labels?: Uint32Array | null;
  /** Default: largest label + 1 when labelled, 0 otherwise. */
  readonly classes?: number;
}

/**
 * Builds a Dataset after checking it is consistent: at least one sample and one feature, `x`
 * a whole number of rows, every feature finite, one label per sample, every label below
 * `classes`. Readers call it last so every source is held to the same rules.
 * @throws DatasetFormatError
 */
export function makeDataset(init: DatasetInit): Dataset {
  const { name, x, features } = init;
  const labels = init.labels ?? null;
  if (!Number.isInteger(features) || features < 1) {
    throw new DatasetFormatError('ERR_EMPTY', `${name}: samples must have at least one feature`);
  }
  if (x.length === 0) throw new DatasetFormatError('ERR_EMPTY', `${name}: no samples`);
  if (x.length % features !== 0) {
    throw new DatasetFormatError(
      'ERR_SHAPE',
      `${name}: ${x.length} feature values is not a whole number of rows of ${features}`,
    );
  }
  const count = x.length / features;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new DatasetFormatError('ERR_NON_FINITE', `${name}: feature value is ${x[i]}`, {
        sample: Math.floor(i / features),
        feature: i % features,
      });
    }
  }
  let classes = 0;
  if (labels) {
    if (labels.length !== count) {
      throw new DatasetFormatError(
        'ERR_LABEL_COUNT',
        `${name}: ${count} samples but ${labels.length} labels`,
      );
    }
    let maxLabel = 0;
    for (const label of labels) if (label > maxLabel) maxLabel = label;
    classes = init.classes ?? maxLabel + 1;
    if (!Number.isInteger(classes) || classes < 1) {
      throw new DatasetFormatError('ERR_LABEL_VALUE', `${name}: invalid class count ${classes}`);
    }
    if (classes > MAX_CLASSES) {
      throw new DatasetFormatError(
        'ERR_TOO_MANY_CLASSES',
        `${name}: ${classes} classes is more than the limit of ${MAX_CLASSES}`,
      );
    }
    if (maxLabel >= classes) {
      const sample = labels.findIndex((label) => label >= classes);
      throw new DatasetFormatError(
        'ERR_LABEL_VALUE',
        `${name}: label ${maxLabel} is not below the class count ${classes}`,
        { sample },
      );
    }
  } else if (init.classes !== undefined && init.classes !== 0) {
    throw new DatasetFormatError('ERR_LABEL_VALUE', `${name}: classes given without labels`);
  }
  return { name, count, features, x, labels, classes };
}

/**
 * A new dataset holding copies of the given rows, in the given order. Keeps the parent's class
 * count so a subset that happens to miss the top class still fits the same model.
 */
export function selectRows(ds: Dataset, rows: ArrayLike<number>, name: string): Dataset {
  const { features } = ds;
  const x = new Float32Array(rows.length * features);
  const labels = ds.labels ? new Uint32Array(rows.length) : null;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as number;
    if (!Number.isInteger(row) || row < 0 || row >= ds.count) {
      throw new RangeError(`selectRows: row ${row} is outside 0..${ds.count - 1}`);
    }
    x.set(ds.x.subarray(row * features, (row + 1) * features), i * features);
    if (labels && ds.labels) labels[i] = ds.labels[row] as number;
  }
  return { name, count: rows.length, features, x, labels, classes: ds.classes };
}
