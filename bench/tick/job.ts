/**
 * A synthetic job for timing the balancer's tick: N workers on a random graph of k out-links
 * each, every worker reporting its links in both directions (a data channel carries both ways)
 * with counters that advance every tick, as the server passes them to `Balancer.update`.
 */
import { Rng, type BalancerInput, type LinkStats, type WorkerReport } from '@meshgrad/core';

export const NEIGHBOURS = 4;
const BATCH_SIZE = 32;
/** The K-Means job's shape (8 blocks of 256 floats, as in bench:balance). */
const MODEL = { blockCount: 8, parameterCount: 2048 };

interface SyntheticLink {
  readonly peer: string;
  readonly goodputBytesPerSec: number;
  readonly rttMs: number;
  readonly relayed: boolean;
  readonly acceptanceRate: number;
}

export interface SyntheticJob {
  readonly ids: readonly string[];
  /** The balancer input of tick `t` (counters advanced t times). */
  input(t: number, neighbours: ReadonlyMap<string, readonly string[]>): BalancerInput;
}

/** N workers, each with `NEIGHBOURS` random out-neighbours; seeded. */
export function syntheticJob(n: number, seed = 1): SyntheticJob {
  const rng = new Rng(seed);
  const ids = Array.from({ length: n }, (_, i) => `w${i}`);
  const links = new Map<string, SyntheticLink[]>(ids.map((id) => [id, []]));
  const linked = new Set<string>();
  const add = (a: string, b: string) => {
    if (a === b || linked.has(`${a} ${b}`)) return;
    linked.add(`${a} ${b}`);
    linked.add(`${b} ${a}`);
    const rttMs = 10 + 60 * rng.next();
    const relayed = rng.next() < 0.1;
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      links.get(from)!.push({
        peer: to,
        goodputBytesPerSec: 20_000 + 200_000 * rng.next(),
        rttMs,
        relayed,
        acceptanceRate: 0.5 + 0.5 * rng.next(),
      });
    }
  };
  for (const a of ids) for (let j = 0; j < NEIGHBOURS; j++) add(a, ids[rng.int(n)]!);
  const speeds = new Map(ids.map((id) => [id, 200 + 400 * rng.next()]));
  const initialNeighbours = new Map(
    ids.map((id) => [
      id,
      links
        .get(id)!
        .slice(0, NEIGHBOURS)
        .map((l) => l.peer),
    ]),
  );
  return {
    ids,
    input(t, neighbours) {
      const workers: WorkerReport[] = ids.map((id) => {
        const reported: LinkStats[] = links.get(id)!.map((l) => ({
          peer: l.peer,
          relayed: l.relayed,
          goodputBytesPerSec: l.goodputBytesPerSec,
          backlogBytes: 0,
          blocksSent: 10 * t,
          blocksReceived: 10 * t,
          overwritten: t,
          rejected: 0,
          skippedSends: 0,
          rttMs: l.rttMs,
          acceptanceRate: l.acceptanceRate,
        }));
        return {
          id,
          samplesPerSec: speeds.get(id)!,
          batchSize: BATCH_SIZE,
          sendBusyFraction: 0.6,
          links: reported,
          neighbours: neighbours.get(id) ?? initialNeighbours.get(id)!,
        };
      });
      return { nowS: t, model: MODEL, workers };
    },
  };
}
