/**
 * Datasets the test server hands to pages, encoded in Node with core's `encodeDataset` (decoded
 * in the page with `decodeDataset`): the page skips loading and parsing the `mnist` package's
 * 21 MB of JSON, which takes seconds in a page on these machines, and gets 25 MB of float32.
 */
import { encodeDataset, loadMnist } from '@meshgrad/core';
import type { MnistSplit } from '@meshgrad/core';

let mnist: Promise<MnistSplit> | null = null;

/** Bytes of `mnist-train` or `mnist-test`; undefined for any other name. */
export async function datasetBytes(name: string): Promise<Uint8Array | undefined> {
  if (name !== 'mnist-train' && name !== 'mnist-test') return undefined;
  mnist ??= loadMnist();
  const split = await mnist;
  return encodeDataset(name === 'mnist-train' ? split.train : split.test);
}
