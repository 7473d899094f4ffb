/**
 * Interim dataset transfer format between the test server and pages, used until core's
 * `encodeDataset`/`decodeDataset` land: little-endian u32 count, features, classes, hasLabels,
 * then count×features f32 and count u32 labels.
 */
import type { Dataset } from '@meshgrad/core';

const HEADER_WORDS = 4;

export function packDataset(ds: Dataset): Uint8Array {
  const bytes = new Uint8Array(4 * (HEADER_WORDS + ds.x.length + (ds.labels ? ds.count : 0)));
  const words = new Uint32Array(bytes.buffer);
  words.set([ds.count, ds.features, ds.classes, ds.labels ? 1 : 0]);
  new Float32Array(bytes.buffer, 4 * HEADER_WORDS, ds.x.length).set(ds.x);
  if (ds.labels) words.set(ds.labels, HEADER_WORDS + ds.x.length);
  return bytes;
}

export function unpackDataset(bytes: Uint8Array, name: string): Dataset {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const words = new Uint32Array(buffer);
  const [count = 0, features = 0, classes = 0, hasLabels = 0] = words;
  const x = new Float32Array(buffer, 4 * HEADER_WORDS, count * features);
  const labels = hasLabels
    ? new Uint32Array(buffer, 4 * (HEADER_WORDS + count * features), count)
    : null;
  return { name, count, features, classes, x, labels };
}
