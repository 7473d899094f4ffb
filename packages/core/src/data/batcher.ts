/**
 * Minibatches for the training loop (DESIGN §3, step 1). The loop runs for hours in a browser
 * tab, so the steady state allocates nothing: every batch is written into the same buffers.
 */
import type { Batch, Dataset } from './dataset.ts';
import { Rng } from '../util/rng.ts';

/** murmur3's 32-bit finaliser: spreads nearby inputs (epoch 0, 1, 2, …) far apart. */
function mix32(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Walks a dataset in a fresh seeded order each epoch and hands out fixed-size minibatches.
 * Every batch has exactly `batchSize` samples: a batch that reaches the end of an epoch is
 * completed from the start of the next one (so with batchSize > count a batch repeats samples).
 *
 * The order of epoch e depends only on (seed, e), so a run can be reproduced from its seed.
 */
export class Batcher {
  /** Completed passes over the dataset; 1 as soon as the last sample of the first pass is out. */
  epoch = 0;
  /** Samples handed out so far, over all epochs. */
  samplesSeen = 0;

  private readonly order: Uint32Array;
  private cursor = 0;
  private readonly batch: { size: number; x: Float32Array; labels: Uint32Array | null };

  /**
   * @param batchSize samples per batch, an integer ≥ 1.
   * @param seed integer seed of the per-epoch shuffles.
   * @throws RangeError for an empty dataset or an invalid batchSize or seed.
   */
  constructor(
    readonly dataset: Dataset,
    readonly batchSize: number,
    private readonly seed: number,
  ) {
    if (dataset.count < 1) throw new RangeError(`Batcher: dataset ${dataset.name} is empty`);
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`Batcher: batchSize must be an integer ≥ 1, got ${batchSize}`);
    }
    if (!Number.isInteger(seed))
      throw new RangeError(`Batcher: seed must be an integer, got ${seed}`);
    this.order = new Uint32Array(dataset.count);
    this.batch = {
      size: batchSize,
      x: new Float32Array(batchSize * dataset.features),
      labels: dataset.labels ? new Uint32Array(batchSize) : null,
    };
    this.shuffleEpoch();
  }

  /**
   * The next minibatch. The returned object and its arrays are reused: the next call
   * overwrites them, so copy anything that must outlive it.
   */
  next(): Batch {
    const { features, x: source, labels: sourceLabels } = this.dataset;
    const { x, labels } = this.batch;
    for (let slot = 0; slot < this.batchSize; slot++) {
      const row = this.order[this.cursor] as number;
      // A plain loop rather than set(subarray()): subarray allocates a view per row.
      const from = row * features;
      const to = slot * features;
      for (let f = 0; f < features; f++) x[to + f] = source[from + f] as number;
      if (labels && sourceLabels) labels[slot] = sourceLabels[row] as number;
      if (++this.cursor === this.order.length) {
        this.cursor = 0;
        this.epoch++;
        this.shuffleEpoch();
      }
    }
    this.samplesSeen += this.batchSize;
    return this.batch;
  }

  private shuffleEpoch(): void {
    for (let i = 0; i < this.order.length; i++) this.order[i] = i;
    new Rng(mix32(this.seed ^ mix32(this.epoch + 1))).shuffle(this.order);
  }
}
