/**
 * Synthetic Gaussian clusters, the K-Means workload of the paper (DESIGN §5): centres drawn at
 * random in a box, samples scattered around them with isotropic Gaussian noise.
 */
import { makeDataset, type Dataset } from './dataset.ts';
import { Rng } from '../util/rng.ts';

export interface GaussianClustersOptions {
  /** Number of centres (≥ 1); also the class count of the labels. */
  readonly clusters: number;
  /** Dimensions of each sample (≥ 1). */
  readonly dims: number;
  /** Number of samples (≥ 1), split as evenly as possible across clusters. */
  readonly count: number;
  /** Standard deviation of the noise around each centre; default 1. */
  readonly spread?: number;
  /**
   * Minimum distance between any two centres; default 8·spread, so a sample is nearer another
   * centre than its own with probability below Φ(−4) ≈ 3·10⁻⁵ per pair of clusters.
   */
  readonly minSeparation?: number;
  /** Default 1. */
  readonly seed?: number;
  /** Default `clusters-{clusters}x{dims}`. */
  readonly name?: string;
}

export interface GaussianClusters {
  /** Samples in shuffled order; the label is the index of the generating centre. */
  readonly dataset: Dataset;
  /** `clusters × dims` floats, row-major. */
  readonly centres: Float32Array;
}

// Random placement with a minimum distance can jam when the box is crowded; after this many
// rejected draws for one centre the box grows and placement starts over (still deterministic).
const PLACEMENT_ATTEMPTS = 1_000;
const BOX_GROWTH = 1.5;

/**
 * Generates a labelled Gaussian-clusters dataset. Centres are uniform in the cube
 * [−h, h]^dims with h = minSeparation · max(1, ⌈clusters^(1/dims)⌉), redrawn until every pair
 * is at least `minSeparation` apart. Sample i belongs to cluster i mod clusters before the
 * final shuffle, so cluster sizes differ by at most one.
 * @throws RangeError for invalid options.
 */
export function gaussianClusters(options: GaussianClustersOptions): GaussianClusters {
  const { clusters, dims, count } = options;
  const spread = options.spread ?? 1;
  const minSeparation = options.minSeparation ?? 8 * spread;
  for (const [field, value] of [
    ['clusters', clusters],
    ['dims', dims],
    ['count', count],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`gaussianClusters: ${field} must be an integer ≥ 1, got ${value}`);
    }
  }
  if (!(spread >= 0 && Number.isFinite(spread))) {
    throw new RangeError(`gaussianClusters: spread must be finite and ≥ 0, got ${spread}`);
  }
  if (!(minSeparation >= 0 && Number.isFinite(minSeparation))) {
    throw new RangeError(
      `gaussianClusters: minSeparation must be finite and ≥ 0, got ${minSeparation}`,
    );
  }

  const rng = new Rng(options.seed ?? 1);
  const centres = placeCentres(rng, clusters, dims, minSeparation);

  const labels = new Uint32Array(count);
  for (let i = 0; i < count; i++) labels[i] = i % clusters;
  rng.shuffle(labels);
  const x = new Float32Array(count * dims);
  for (let i = 0; i < count; i++) {
    const centre = (labels[i] as number) * dims;
    for (let d = 0; d < dims; d++) {
      x[i * dims + d] = (centres[centre + d] as number) + spread * rng.normal();
    }
  }
  const name = options.name ?? `clusters-${clusters}x${dims}`;
  return { dataset: makeDataset({ name, x, features: dims, labels, classes: clusters }), centres };
}

function placeCentres(
  rng: Rng,
  clusters: number,
  dims: number,
  minSeparation: number,
): Float32Array {
  const centres = new Float32Array(clusters * dims);
  let halfWidth = Math.max(minSeparation, 1) * Math.max(1, Math.ceil(clusters ** (1 / dims)));
  const minSquared = minSeparation * minSeparation;
  for (;;) {
    let placed = 0;
    let attempts = 0;
    while (placed < clusters && attempts < PLACEMENT_ATTEMPTS) {
      const at = placed * dims;
      for (let d = 0; d < dims; d++) centres[at + d] = (2 * rng.next() - 1) * halfWidth;
      let clear = true;
      for (let other = 0; other < placed && clear; other++) {
        clear = squaredDistance(centres, at, centres, other * dims, dims) >= minSquared;
      }
      if (clear) {
        placed++;
        attempts = 0;
      } else {
        attempts++;
      }
    }
    if (placed === clusters) return centres;
    halfWidth *= BOX_GROWTH;
  }
}

function squaredDistance(
  a: Float32Array,
  aOffset: number,
  b: Float32Array,
  bOffset: number,
  dims: number,
): number {
  let sum = 0;
  for (let d = 0; d < dims; d++) {
    const diff = (a[aOffset + d] as number) - (b[bOffset + d] as number);
    sum += diff * diff;
  }
  return sum;
}

/**
 * The K-Means objective: the mean over samples of the squared distance to the nearest of the
 * `clusters` centres (`clusters × dims` floats, row-major). Accumulates in float64.
 * @throws RangeError when the shapes disagree.
 */
export function kmeansObjective(
  centres: Float32Array,
  clusters: number,
  dims: number,
  dataset: Dataset,
): number {
  if (centres.length !== clusters * dims || clusters < 1) {
    throw new RangeError(
      `kmeansObjective: ${centres.length} centre values is not ${clusters} × ${dims}`,
    );
  }
  if (dataset.features !== dims) {
    throw new RangeError(`kmeansObjective: dataset has ${dataset.features} features, not ${dims}`);
  }
  let total = 0;
  for (let i = 0; i < dataset.count; i++) {
    let nearest = Infinity;
    for (let j = 0; j < clusters; j++) {
      const distance = squaredDistance(dataset.x, i * dims, centres, j * dims, dims);
      if (distance < nearest) nearest = distance;
    }
    total += nearest;
  }
  return total / dataset.count;
}
