import { describe, expect, it } from 'vitest';
import type { LinkStats } from '../protocol/schemas.ts';
import { Rng } from '../util/rng.ts';
import { planNeighbours, type NeighbourPlanInput } from './neighbour-plan.ts';
import { chooseNeighbours, nthSmallest, type LinkQuality } from './neighbours.ts';
import type { LinkMemory, WorkerMemory } from './state.ts';
import { runSteps } from './steps.ts';

/**
 * Rule 9 as the design states it (docs/design.md §3), one pair at a time through
 * `chooseNeighbours`' callbacks: a link's quality from its memory (this tick's, else the last
 * tick's), its capacity at most the sender's share, its acceptance rate from the receiver's
 * memory of the reverse link. `planNeighbours` builds the same from numbered tables; the two
 * must choose alike.
 */
function byCallbacks(input: NeighbourPlanInput): Map<string, string[]> {
  const memoryOf = (from: string, to: string) =>
    input.links.get(from)?.get(to) ?? input.previousLinks.get(from)?.get(to);
  const quality = (from: string, to: string): LinkQuality | undefined => {
    const refused = input.refused?.(from, to) ?? false;
    const memory = memoryOf(from, to);
    if (!memory) return refused ? { relayed: false, refused } : undefined;
    const senderCapacity = input.workers.get(from)?.capacity ?? null;
    const share =
      senderCapacity !== null
        ? senderCapacity / Math.max(1, input.currentNeighbours(from).length)
        : Infinity;
    const capacity = Math.min(memory.cap, share);
    const acceptance = memoryOf(to, from)?.acceptance;
    return {
      relayed: memory.stats.relayed,
      ...(memory.stats.rttMs !== undefined ? { rttMs: memory.stats.rttMs } : {}),
      ...(Number.isFinite(capacity) ? { capacityBytesPerSec: capacity } : {}),
      ...(acceptance !== undefined ? { acceptanceRate: acceptance } : {}),
      ...(refused ? { refused } : {}),
    };
  };
  return chooseNeighbours(input.ids, {
    k: input.k,
    quality,
    previous: { get: input.currentNeighbours },
    seed: input.seed,
    round: input.round,
    measuredPeers: (from) => [
      ...(input.links.get(from)?.keys() ?? []),
      ...(input.previousLinks.get(from)?.keys() ?? []),
      ...(input.refusers?.get(from) ?? []),
    ],
  });
}

const stats = (peer: string, rng: Rng): LinkStats => ({
  peer,
  relayed: rng.next() < 0.2,
  goodputBytesPerSec: 0,
  backlogBytes: 0,
  blocksSent: 0,
  blocksReceived: 0,
  overwritten: 0,
  rejected: 0,
  skippedSends: 0,
  ...(rng.next() < 0.8 ? { rttMs: 5 + 150 * rng.next() } : {}),
});

/**
 * A tick of `n` workers (and some that left) with random link memories in both tables, some
 * links measured only last tick, some receivers refusing senders, some workers without a
 * capacity estimate.
 */
function randomInput(n: number, seed: number): NeighbourPlanInput {
  const rng = new Rng(seed);
  const ids = Array.from({ length: n }, (_, i) => `w${i}`);
  const everyone = [...ids, 'left-1', 'left-2'];
  const memories = () => {
    const table = new Map<string, Map<string, LinkMemory>>();
    for (const from of ids) {
      const row = new Map<string, LinkMemory>();
      for (let d = rng.int(9); d > 0; d--) {
        const peer = everyone[rng.int(everyone.length)]!;
        row.set(peer, {
          from,
          stats: stats(peer, rng),
          cap: rng.next() < 0.3 ? Infinity : 10_000 + 200_000 * rng.next(),
          queuedTicks: 0,
          ...(rng.next() < 0.7 ? { acceptance: rng.next() } : {}),
        });
      }
      if (row.size > 0) table.set(from, row);
    }
    return table;
  };
  const links = memories();
  const previousLinks = memories();
  const workers = new Map<string, WorkerMemory>();
  for (const id of ids) {
    workers.set(id, {
      settings: { communicationPeriod: 1, blocksPerMessage: 1, encoding: 'f32' },
      budget: 0,
      capacity: rng.next() < 0.2 ? null : 50_000 + 500_000 * rng.next(),
      speed: 100,
      pressure: 0,
      atS: 0,
      reason: 'capacity',
      congested: false,
      dropFrom: null,
    });
  }
  const current = new Map(
    ids.map((id) => [id, Array.from({ length: rng.int(6) }, () => everyone[rng.int(n + 2)]!)]),
  );
  const refusedBy = new Map<string, Set<string>>();
  for (const receiver of ids) {
    if (rng.next() < 0.1) {
      refusedBy.set(receiver, new Set([everyone[rng.int(n)]!, everyone[rng.int(n)]!]));
    }
  }
  const refusers = new Map<string, string[]>();
  for (const [receiver, senders] of refusedBy) {
    for (const sender of senders) refusers.set(sender, [...(refusers.get(sender) ?? []), receiver]);
  }
  return {
    ids: [...ids, ids[0]!],
    links,
    previousLinks,
    workers,
    currentNeighbours: (id) => current.get(id) ?? [],
    k: 4,
    seed: seed + 1,
    round: seed,
    refused: (from, to) => refusedBy.get(to)?.has(from) ?? false,
    refusers,
  };
}

describe('planNeighbours', () => {
  it('chooses what rule 9 asked pair by pair chooses, in small and large jobs', () => {
    // 40 workers weigh every candidate, 500 sample them (EXHAUSTIVE_NEIGHBOUR_SEARCH_MAX).
    for (const n of [3, 40, 500]) {
      for (let seed = 1; seed <= 4; seed++) {
        const input = randomInput(n, seed);
        const fast = runSteps(planNeighbours(input));
        expect([...fast]).toEqual([...byCallbacks(input)]);
        // Not a trivial choice: most workers got neighbours.
        expect([...fast.values()].filter((l) => l.length > 0).length).toBeGreaterThan(n / 2);
      }
    }
  });
});

describe('planNeighbours with a sender every receiver refuses', () => {
  it('chooses what rule 9 asked pair by pair chooses (its long row is looked up, not scanned)', () => {
    const base = randomInput(400, 9);
    const ids = [...new Set(base.ids)];
    const rng = new Rng(10);
    // Everyone refuses w0, and w0 keeps memories of links to a hundred of them, with
    // acceptance rates: w0's row holds all 399 (more than a scan takes).
    const links = new Map(base.links as Map<string, Map<string, LinkMemory>>);
    const row = new Map(links.get('w0') ?? []);
    for (const peer of ids.slice(1, 101)) {
      row.set(peer, {
        from: 'w0',
        stats: stats(peer, rng),
        cap: 90_000,
        queuedTicks: 0,
        acceptance: rng.next(),
      });
    }
    links.set('w0', row);
    // …and fifty of them have measured their link to w0: each asks w0's row for its reverse.
    for (const from of ids.slice(1, 51)) {
      const theirs = new Map(links.get(from) ?? []);
      theirs.set('w0', { from, stats: stats('w0', rng), cap: 80_000, queuedTicks: 0 });
      links.set(from, theirs);
    }
    const refusers = new Map(base.refusers);
    refusers.set('w0', ids.slice(1));
    const input: NeighbourPlanInput = {
      ...base,
      links,
      refusers,
      refused: (from, to) => from === 'w0' || (base.refused?.(from, to) ?? false),
    };
    const fast = runSteps(planNeighbours(input));
    expect([...fast]).toEqual([...byCallbacks(input)]);
    expect(fast.get('w0')).toEqual([]);
  });
});

describe('nthSmallest', () => {
  it('finds what sorting finds, with ties and NaN', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 200; trial++) {
      const length = 1 + rng.int(60);
      const values = Array.from({ length }, () =>
        rng.next() < 0.05 ? Number.NaN : Math.floor(rng.next() * 10),
      );
      const nth = rng.int(length);
      const sorted = Float64Array.from(values).sort();
      expect(nthSmallest([...values], nth)).toEqual(sorted[nth]);
    }
  });
});
