/**
 * Datasets the test server hands to pages, encoded in Node: the page skips loading and parsing
 * the `mnist` package's 21 MB of JSON, which takes seconds in a page on these machines.
 */
import { loadMnist } from '@meshgrad/core';
import type { MnistSplit } from '@meshgrad/core';
import { packDataset } from './wire.ts';

let mnist: Promise<MnistSplit> | null = null;

/** Bytes of `mnist-train` or `mnist-test`; undefined for any other name. */
export async function datasetBytes(name: string): Promise<Uint8Array | undefined> {
  if (name !== 'mnist-train' && name !== 'mnist-test') return undefined;
  mnist ??= loadMnist();
  const split = await mnist;
  return packDataset(name === 'mnist-train' ? split.train : split.test);
}
