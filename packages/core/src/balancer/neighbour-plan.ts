/**
 * Rule 9 of the balancer (DESIGN §3): neighbours from the links' measured capacity, RTT, relay
 * flag and acceptance rate (`chooseNeighbours` keeps current neighbours unless a candidate is
 * clearly better). A link's capacity is at most its sender's capacity shared among its current
 * neighbours. The acceptance rate is the smoothed one of the link memory (links.ts), and the
 * workers choose in the same seeded order every tick, so steady links keep steady neighbours.
 */
import { chooseNeighbours, type LinkQuality } from './neighbours.ts';
import type { LinkMemory, WorkerMemory } from './state.ts';

export interface NeighbourPlanInput {
  /** The reporting workers, in report order. */
  readonly ids: readonly string[];
  /** Link memories after this tick, then those of the last tick for links not reported now. */
  readonly links: ReadonlyMap<string, LinkMemory>;
  readonly previousLinks: ReadonlyMap<string, LinkMemory>;
  /** Worker memories after this tick. */
  readonly workers: ReadonlyMap<string, WorkerMemory>;
  readonly currentNeighbours: (id: string) => readonly string[];
  readonly k: number;
  readonly seed: number;
  /** The tick, which varies the candidates sampled in a large job. */
  readonly round: number;
}

/** Rule 9: every reporting worker's neighbours. */
export function planNeighbours(input: NeighbourPlanInput): Map<string, string[]> {
  // Link memories by sender, then receiver: this tick's first, then the last tick's for links
  // not reported now. They are the only pairs `quality` knows, so the choice need not ask every
  // pair, and a lookup builds no key.
  const bySender = new Map<string, Map<string, LinkMemory>>();
  for (const memories of [input.links.values(), input.previousLinks.values()]) {
    for (const memory of memories) {
      let row = bySender.get(memory.from);
      if (!row) bySender.set(memory.from, (row = new Map()));
      if (!row.has(memory.stats.peer)) row.set(memory.stats.peer, memory);
    }
  }
  const memoryOf = (from: string, to: string) => bySender.get(from)?.get(to);
  const quality = (from: string, to: string): LinkQuality | undefined => {
    const memory = memoryOf(from, to);
    if (!memory) return undefined;
    const acceptance = memoryOf(to, from)?.acceptance;
    const senderCapacity = input.workers.get(from)?.capacity ?? null;
    const share =
      senderCapacity !== null
        ? senderCapacity / Math.max(1, input.currentNeighbours(from).length)
        : Infinity;
    const capacity = Math.min(memory.cap, share);
    return {
      relayed: memory.stats.relayed,
      ...(memory.stats.rttMs !== undefined ? { rttMs: memory.stats.rttMs } : {}),
      ...(Number.isFinite(capacity) ? { capacityBytesPerSec: capacity } : {}),
      ...(acceptance !== undefined ? { acceptanceRate: acceptance } : {}),
    };
  };
  return chooseNeighbours(input.ids, {
    k: input.k,
    quality,
    previous: new Map(input.ids.map((id) => [id, input.currentNeighbours(id)])),
    seed: input.seed,
    measuredPeers: (from) => bySender.get(from)?.keys() ?? [],
    round: input.round,
  });
}
