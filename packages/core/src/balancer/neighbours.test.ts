import { describe, expect, it } from 'vitest';
import { Rng } from '../util/rng.ts';
import {
  chooseNeighbours,
  EXHAUSTIVE_NEIGHBOUR_SEARCH_MAX,
  linkScore,
  REFUSED_MIN_REJECTED,
  refusesBlocks,
  SAMPLED_CANDIDATES,
  RELAYED_SCORE_FACTOR,
  type LinkQuality,
} from './neighbours.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`);

/** Undirected connectivity of a neighbour map. */
function connected(workers: string[], map: Map<string, string[]>): boolean {
  const adjacent = new Map(workers.map((w) => [w, new Set<string>()]));
  for (const [a, list] of map)
    for (const b of list) {
      adjacent.get(a)!.add(b);
      adjacent.get(b)!.add(a);
    }
  const seen = new Set([workers[0]!]);
  const stack = [workers[0]!];
  while (stack.length)
    for (const n of adjacent.get(stack.pop()!)!)
      if (!seen.has(n)) {
        seen.add(n);
        stack.push(n);
      }
  return seen.size === workers.length;
}

describe('linkScore', () => {
  it('ranks relayed, slow, distant and rejected links lower', () => {
    const base: LinkQuality = { relayed: false, capacityBytesPerSec: 1000 };
    expect(linkScore({ ...base, relayed: true }, 1)).toBeCloseTo(1000 * RELAYED_SCORE_FACTOR);
    expect(linkScore({ ...base, rttMs: 200 }, 1)).toBeCloseTo(500);
    expect(linkScore({ ...base, acceptanceRate: 0 }, 1)).toBeCloseTo(500);
    expect(linkScore(undefined, 42)).toBe(42);
  });
});

describe('chooseNeighbours', () => {
  it('in a large job without measured peers, weighs sampled candidates, not every known pair', () => {
    // Every link to w0 is a thousand times better. Without `measuredPeers` the callback is
    // asked for every pair (for the prior and the scores), but each worker's candidates are
    // still SAMPLED_CANDIDATES drawn at random: most never see w0.
    const n = 4 * EXHAUSTIVE_NEIGHBOUR_SEARCH_MAX;
    const workers = ids(n);
    const quality = (_from: string, to: string): LinkQuality => ({
      relayed: false,
      capacityBytesPerSec: to === 'w0' ? 1_000_000 : 1_000,
    });
    const map = chooseNeighbours(workers, { k: 4, quality, seed: 2 });
    const toW0 = [...map.values()].filter((list) => list.includes('w0')).length;
    expect(toW0).toBeGreaterThan(0);
    expect(toW0).toBeLessThan(n / 2);
  });

  it('gives every worker k distinct other workers and keeps the graph connected', () => {
    const workers = ids(12);
    const map = chooseNeighbours(workers, { k: 3, quality: () => undefined, seed: 5 });
    for (const w of workers) {
      const list = map.get(w)!;
      expect(list.length).toBeGreaterThanOrEqual(3);
      expect(new Set(list).size).toBe(list.length);
      expect(list).not.toContain(w);
    }
    expect(connected(workers, map)).toBe(true);
  });

  it('caps k at the number of other workers', () => {
    const map = chooseNeighbours(['a', 'b'], { k: 4, quality: () => undefined });
    expect(map.get('a')).toEqual(['b']);
    expect(map.get('b')).toEqual(['a']);
  });

  it('prefers good links and avoids relayed ones', () => {
    const workers = ids(8);
    // Links into w7 are relayed; links into w6 are ten times faster than the rest.
    const quality = (_from: string, to: string): LinkQuality => ({
      relayed: to === 'w7',
      capacityBytesPerSec: to === 'w6' ? 10_000 : 1_000,
    });
    const map = chooseNeighbours(workers, { k: 2, quality, seed: 3 });
    let intoFast = 0;
    let intoRelayed = 0;
    for (const [from, list] of map) {
      if (from !== 'w6' && list.includes('w6')) intoFast++;
      if (list.includes('w7')) intoRelayed++;
    }
    expect(intoFast).toBeGreaterThanOrEqual(4);
    // w7 is only reached if connectivity needs it: at most one edge in.
    expect(intoRelayed).toBeLessThanOrEqual(1);
  });

  it('spreads in-degree instead of piling everyone onto the best receiver', () => {
    const workers = ids(16);
    const quality = (_from: string, to: string): LinkQuality => ({
      relayed: false,
      capacityBytesPerSec: to === 'w0' ? 1_100 : 1_000,
    });
    const map = chooseNeighbours(workers, { k: 4, quality, seed: 9 });
    const inDegree = new Map<string, number>();
    for (const list of map.values())
      for (const b of list) inDegree.set(b, (inDegree.get(b) ?? 0) + 1);
    expect(Math.max(...inDegree.values())).toBeLessThanOrEqual(8);
  });

  it('keeps current neighbours unless a candidate is clearly better (hysteresis)', () => {
    const workers = ids(6);
    const previous = new Map(
      workers.map((w, i) => [w, [workers[(i + 1) % 6]!, workers[(i + 2) % 6]!]]),
    );
    const slightlyBetter = (_from: string, to: string): LinkQuality => ({
      relayed: false,
      capacityBytesPerSec: to === 'w5' ? 1_500 : 1_000,
    });
    const kept = chooseNeighbours(workers, { k: 2, quality: slightlyBetter, previous, seed: 1 });
    for (const w of workers)
      expect(kept.get(w)!.slice(0, 2).sort()).toEqual([...previous.get(w)!].sort());

    const muchBetter = (_from: string, to: string): LinkQuality => ({
      relayed: false,
      capacityBytesPerSec: to === 'w5' ? 5_000 : 1_000,
    });
    const switched = chooseNeighbours(workers, { k: 2, quality: muchBetter, previous, seed: 1 });
    expect(switched.get('w0')).toContain('w5');
  });

  it('replaces a neighbour that left', () => {
    const previous = new Map([['a', ['gone', 'b']]]);
    const map = chooseNeighbours(['a', 'b', 'c'], { k: 2, quality: () => undefined, previous });
    expect(map.get('a')!.sort()).toEqual(['b', 'c']);
  });
});

describe('refused links', () => {
  it('a receiver refuses a sender once it rejected 8 of its messages and half of all it got', () => {
    expect(refusesBlocks({ rejected: REFUSED_MIN_REJECTED, blocksReceived: 0 })).toBe(true);
    expect(refusesBlocks({ rejected: REFUSED_MIN_REJECTED - 1, blocksReceived: 0 })).toBe(false);
    expect(refusesBlocks({ rejected: 40, blocksReceived: 40 })).toBe(true);
    expect(refusesBlocks({ rejected: 40, blocksReceived: 41 })).toBe(false);
    expect(linkScore({ relayed: false, capacityBytesPerSec: 1000, refused: true }, 1)).toBe(0);
  });

  // Attackers w8 and w9 are refused by every honest receiver; they are refused by nobody else,
  // and honest links are equal. Their previous neighbours were honest workers.
  const attackers = new Set(['w8', 'w9']);
  const quality = (from: string, to: string): LinkQuality => ({
    relayed: false,
    capacityBytesPerSec: 1_000,
    refused: attackers.has(from) && !attackers.has(to),
  });

  it.each([
    ['all-pairs', 10, undefined],
    [
      'sampled',
      EXHAUSTIVE_NEIGHBOUR_SEARCH_MAX + 26,
      (from: string) => ids(90).filter((p) => p !== from),
    ],
  ] as const)(
    'gives a sender no receiver that refuses its blocks (%s search)',
    (_name, n, measuredPeers) => {
      const workers = ids(n);
      const previous = new Map([...attackers].map((a) => [a, ['w0', 'w1', 'w2']]));
      const map = chooseNeighbours(workers, {
        k: 3,
        quality,
        previous,
        seed: 4,
        ...(measuredPeers ? { measuredPeers } : {}),
      });
      // Each attacker keeps only the receivers that take its blocks: the other attacker.
      for (const a of attackers) {
        expect(
          map.get(a)!.filter((b) => !attackers.has(b)),
          a,
        ).toEqual([]);
        expect(map.get(a)).toEqual([...attackers].filter((b) => b !== a));
      }
      // Every honest worker still has k neighbours, and the graph is still connected.
      for (const w of workers.filter((w) => !attackers.has(w))) expect(map.get(w)).toHaveLength(3);
      expect(connected(workers, map)).toBe(true);
    },
  );

  it('joins a refused stray worker from the main component, the edge running the other way', () => {
    // k = 1; every honest worker refuses w5, whose links are also too slow for anyone to pick.
    const workers = ids(6);
    const one =
      (refusedBack: boolean) =>
      (from: string, to: string): LinkQuality => ({
        relayed: false,
        capacityBytesPerSec: from === 'w5' || to === 'w5' ? 1 : 1_000,
        refused: (from === 'w5' && to !== 'w5') || (refusedBack && to === 'w5'),
      });
    const map = chooseNeighbours(workers, { k: 1, quality: one(false), seed: 3 });
    expect(map.get('w5')).toEqual([]);
    expect([...map.values()].filter((l) => l.includes('w5'))).toHaveLength(1);
    expect(connected(workers, map)).toBe(true);
    // Refused both ways, w5 stays apart: no edge of it would carry a block anyone takes.
    const apart = chooseNeighbours(workers, { k: 1, quality: one(true), seed: 3 });
    expect(apart.get('w5')).toEqual([]);
    expect([...apart.values()].some((l) => l.includes('w5'))).toBe(false);
    expect(connected(workers, apart)).toBe(false);
    expect(connected(workers.slice(0, 5), apart)).toBe(true);
  });

  it('a receiver that refuses an honest sender only loses that sender', () => {
    // w0 lies about w1: w1 stops sending to w0, and nothing else changes for anyone.
    const workers = ids(6);
    const lying = (from: string, to: string): LinkQuality => ({
      relayed: false,
      capacityBytesPerSec: 1_000,
      refused: from === 'w1' && to === 'w0',
    });
    const map = chooseNeighbours(workers, { k: 3, quality: lying, seed: 2 });
    expect(map.get('w1')).not.toContain('w0');
    expect(map.get('w1')).toHaveLength(3);
    for (const w of workers) expect(map.get(w)).toHaveLength(3);
    expect([...map.values()].filter((l) => l.includes('w0')).length).toBeGreaterThanOrEqual(2);
  });
});

describe('chooseNeighbours in a large job', () => {
  /**
   * N workers each with measured links to 4 random others (as a running job has), the quality
   * function counting its calls: the work of one choice.
   */
  function choose(n: number, round = 0) {
    const workers = ids(n);
    const rng = new Rng(7);
    const peers = new Map(workers.map((w) => [w, new Set<string>()]));
    for (const w of workers)
      for (let j = 0; j < 4; j++) {
        const other = workers[rng.int(n)]!;
        if (other !== w) peers.get(w)!.add(other);
      }
    let calls = 0;
    const quality = (from: string, to: string): LinkQuality | undefined => {
      calls++;
      return peers.get(from)!.has(to)
        ? { relayed: false, capacityBytesPerSec: 1000 + from.length * to.length }
        : undefined;
    };
    const previous = new Map(workers.map((w) => [w, [...peers.get(w)!]]));
    const map = chooseNeighbours(workers, {
      k: 4,
      quality,
      previous,
      measuredPeers: (w) => peers.get(w)!,
      round,
    });
    return { workers, map, calls };
  }

  it('asks for a bounded number of link qualities per worker, whatever N', () => {
    const small = choose(EXHAUSTIVE_NEIGHBOUR_SEARCH_MAX + 1);
    const large = choose(4000);
    // Per worker: its measured peers for the prior, then at most current + measured + sampled
    // candidates, each weighed once (and the same again to join a stray component).
    const bound = 4 + 2 * (4 + 4 + SAMPLED_CANDIDATES);
    expect(large.calls / large.workers.length).toBeLessThanOrEqual(bound);
    expect(small.calls / small.workers.length).toBeLessThanOrEqual(bound);
    // All-pairs would ask N − 1 per worker for the prior alone.
    expect(large.calls).toBeLessThan(large.workers.length * (large.workers.length - 1));
  });

  it('still gives every worker k distinct neighbours and a connected graph', () => {
    const { workers, map } = choose(1000);
    for (const w of workers) {
      const list = map.get(w)!;
      expect(list.length).toBeGreaterThanOrEqual(4);
      expect(new Set(list).size).toBe(list.length);
      expect(list).not.toContain(w);
    }
    expect(connected(workers, map)).toBe(true);
  });

  it('samples other candidates from one round to the next', () => {
    // Without measured links every candidate beyond the current ones is a sampled one.
    const workers = ids(500);
    const pick = (round: number) =>
      chooseNeighbours(workers, {
        k: 4,
        quality: () => undefined,
        measuredPeers: () => [],
        round,
      });
    const a = pick(1);
    const b = pick(2);
    const same = workers.filter((w) => a.get(w)!.join() === b.get(w)!.join()).length;
    expect(same).toBeLessThan(workers.length / 2);
  });
});
