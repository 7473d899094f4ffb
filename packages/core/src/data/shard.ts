/**
 * Sharding: the server cuts a dataset into disjoint shards, one per volunteer slot, and serves
 * each over HTTP. Any process can recompute the same cut from (count, shardCount, seed), so
 * several server processes agree without sharing state.
 */
import { selectRows, type Dataset } from './dataset.ts';
import { Rng } from '../util/rng.ts';

function checkShardArguments(
  count: number,
  shardIndex: number,
  shardCount: number,
  seed: number,
): void {
  if (!Number.isInteger(shardCount) || shardCount < 1) {
    throw new RangeError(`shardCount must be an integer ≥ 1, got ${shardCount}`);
  }
  if (shardCount > count) {
    throw new RangeError(`cannot cut ${count} samples into ${shardCount} non-empty shards`);
  }
  if (!Number.isInteger(shardIndex) || shardIndex < 0 || shardIndex >= shardCount) {
    throw new RangeError(
      `shardIndex must be an integer in 0..${shardCount - 1}, got ${shardIndex}`,
    );
  }
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
}

/**
 * The sample indices of one shard: a permutation of 0..count−1 seeded by `seed`, cut into
 * `shardCount` consecutive pieces whose sizes differ by at most one. Over all shard indices the
 * pieces are disjoint and cover every sample.
 * @throws RangeError for a shardCount outside 1..count, a shardIndex outside 0..shardCount−1 or
 *   a non-integer seed.
 */
export function shardIndices(
  count: number,
  shardIndex: number,
  shardCount: number,
  seed: number,
): Uint32Array {
  checkShardArguments(count, shardIndex, shardCount, seed);
  const permutation = new Rng(seed).shuffle(Uint32Array.from({ length: count }, (_, i) => i));
  const start = Math.floor((shardIndex * count) / shardCount);
  const end = Math.floor(((shardIndex + 1) * count) / shardCount);
  return permutation.slice(start, end);
}

/**
 * One shard of `ds` as its own dataset (copied rows, same class count), named
 * `{name}/shard-{shardIndex}-of-{shardCount}`. See `shardIndices` for the cut.
 * @throws RangeError as shardIndices.
 */
export function shardDataset(
  ds: Dataset,
  shardIndex: number,
  shardCount: number,
  seed: number,
): Dataset {
  const rows = shardIndices(ds.count, shardIndex, shardCount, seed);
  return selectRows(ds, rows, `${ds.name}/shard-${shardIndex}-of-${shardCount}`);
}
