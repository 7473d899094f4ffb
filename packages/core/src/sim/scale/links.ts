/**
 * Link profiles of the scaling simulator, each answered in O(1) per worker or pair so that a
 * send costs the same at 10 workers as at 10,000. The numbers follow the balancer bench's
 * profiles (../profiles.ts): 'lan' 100 Mbit/s both ways and 0.5 ms; 'home' uploads of 1, 2, 5,
 * 10 or 20 Mbit/s, downloads ten times that, 10–40 ms, 10% of pairs relayed at 200 kB/s.
 *
 * Simplification, and why it is enough here: each worker's uplink and downlink serve messages
 * one at a time in order (a FIFO at link speed), instead of the balancer simulator's max-min
 * sharing among channels. A worker's total upload time is the same either way; only the order
 * in which concurrent messages finish differs.
 */
import { RELAY_EXTRA_LATENCY_S, RELAY_PATH_BYTES_PER_SEC } from '../profiles.ts';

export type ScaleProfileName = 'lan' | 'home';

export interface LinkModel {
  readonly name: ScaleProfileName;
  uplinkBytesPerSec(worker: number): number;
  downlinkBytesPerSec(worker: number): number;
  /** One-way latency between two workers, seconds. */
  latencyS(from: number, to: number): number;
  /** The path's own cap (a relay), bytes/s, or Infinity. */
  pathBytesPerSec(from: number, to: number): number;
}

const MBIT = 1_000_000 / 8;
const HOME_UPLOADS_MBIT = [1, 2, 5, 10, 20] as const;

/** A hash of two integers and a seed, uniform in [0, 1). */
function unit(a: number, b: number, seed: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ seed, 0x27d4eb2d);
  h ^= h >>> 15;
  return (h >>> 0) / 4294967296;
}

export function scaleLinks(name: ScaleProfileName, seed = 1): LinkModel {
  if (name === 'lan') {
    return {
      name,
      uplinkBytesPerSec: () => 100 * MBIT,
      downlinkBytesPerSec: () => 100 * MBIT,
      latencyS: () => 0.0005,
      pathBytesPerSec: () => Infinity,
    };
  }
  const upload = (w: number) => HOME_UPLOADS_MBIT[Math.floor(unit(w, 1, seed) * 5)]! * MBIT;
  const access = (w: number) => 0.005 + 0.015 * unit(w, 2, seed);
  const relayed = (a: number, b: number) => unit(Math.min(a, b), Math.max(a, b) + 3, seed) < 0.1;
  return {
    name,
    uplinkBytesPerSec: upload,
    downlinkBytesPerSec: (w) => 10 * upload(w),
    latencyS: (a, b) => access(a) + access(b) + (relayed(a, b) ? RELAY_EXTRA_LATENCY_S : 0),
    pathBytesPerSec: (a, b) => (relayed(a, b) ? RELAY_PATH_BYTES_PER_SEC : Infinity),
  };
}
