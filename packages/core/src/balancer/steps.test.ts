import { describe, expect, it } from 'vitest';
import type { LinkStats } from '../protocol/schemas.ts';
import { Rng } from '../util/rng.ts';
import { balance, balanceSteps, type BalancerInput, type WorkerReport } from './controller.ts';
import { chooseNeighboursSteps, type LinkQuality } from './neighbours.ts';
import { emptyBalancerState } from './state.ts';
import { Slice, type Steps } from './steps.ts';

const MODEL = { blockCount: 8, parameterCount: 2048 };
const SLICE = 50;

/**
 * A tick's input for `n` workers, each linked to 4 random others in both directions, whose
 * `links` reads are counted: every rule that looks at a worker reads them.
 */
function countedInput(n: number, t: number) {
  const rng = new Rng(3);
  const ids = Array.from({ length: n }, (_, i) => `w${i}`);
  const peers = ids.map(() => new Set<string>());
  ids.forEach((_, i) => {
    for (let j = 0; j < 4; j++) {
      const other = rng.int(n);
      if (other === i) continue;
      peers[i]!.add(ids[other]!);
      peers[other]!.add(ids[i]!);
    }
  });
  const reads = { links: 0 };
  const workers: WorkerReport[] = ids.map((id, i) => {
    const links: LinkStats[] = [...peers[i]!].map((peer) => ({
      peer,
      relayed: false,
      goodputBytesPerSec: 50_000 + 1_000 * i,
      rttMs: 20,
      backlogBytes: 0,
      blocksSent: 10 * t,
      blocksReceived: 10 * t,
      overwritten: 0,
      rejected: 0,
      skippedSends: 0,
      acceptanceRate: 0.9,
    }));
    return {
      id,
      samplesPerSec: 300 + i,
      batchSize: 32,
      sendBusyFraction: 0.5,
      get links() {
        reads.links++;
        return links;
      },
    };
  });
  const input: BalancerInput = { nowS: t, model: MODEL, workers };
  return { input, reads };
}

/** Runs `steps` to the end; the growth of `count()` over each slice. */
function perSlice<T>(steps: Steps<T>, count: () => number): { result: T; slices: number[] } {
  const slices: number[] = [];
  for (;;) {
    const before = count();
    const next = steps.next();
    slices.push(count() - before);
    if (next.done) return { result: next.value, slices };
  }
}

describe('balanceSteps', () => {
  it('looks at a bounded number of workers per slice, whatever N', () => {
    for (const n of [4 * SLICE, 40 * SLICE]) {
      const { input, reads } = countedInput(n, 1);
      const { slices } = perSlice(
        balanceSteps(emptyBalancerState(), input, {}, new Slice(SLICE)),
        () => reads.links,
      );
      // Each report's links are read once to index them and once by its rules.
      expect(reads.links).toBe(2 * n);
      expect(Math.max(...slices)).toBeLessThanOrEqual(SLICE);
      // Five phases (index, rules 1–8, prior, choice, plans) of n / SLICE slices each.
      expect(slices.length).toBeGreaterThanOrEqual((5 * n) / SLICE);
    }
  });

  it('decides what the whole tick decides', () => {
    let whole = emptyBalancerState();
    let sliced = emptyBalancerState();
    for (let t = 1; t <= 3; t++) {
      const a = balance(whole, countedInput(6 * SLICE, t).input);
      const b = perSlice(
        balanceSteps(sliced, countedInput(6 * SLICE, t).input, {}, new Slice(SLICE)),
        () => 0,
      ).result;
      expect([...b.plans]).toEqual([...a.plans]);
      whole = a.state;
      sliced = b.state;
    }
  });
});

describe('chooseNeighboursSteps', () => {
  it('weighs a bounded number of links and choosers per slice, whatever N', () => {
    for (const n of [4 * SLICE, 40 * SLICE]) {
      const workers = Array.from({ length: n }, (_, i) => `w${i}`);
      const rng = new Rng(5);
      const measured = new Map(
        workers.map((w) => [w, new Set(Array.from({ length: 4 }, () => workers[rng.int(n)]!))]),
      );
      let calls = 0;
      const quality = (from: string, to: string): LinkQuality | undefined => {
        calls++;
        return measured.get(from)!.has(to)
          ? { relayed: false, capacityBytesPerSec: 1000 + to.length }
          : undefined;
      };
      // Each worker asks for its previous neighbours once, as it chooses.
      let choosers = 0;
      const previous = {
        get: () => {
          choosers++;
          return [];
        },
      };
      const steps = chooseNeighboursSteps(
        workers,
        { k: 4, quality, previous, measuredPeers: (w) => measured.get(w)! },
        new Slice(SLICE),
      );
      const { slices } = perSlice(steps, () => calls + 4 * choosers);
      expect(calls).toBeGreaterThan(n);
      expect(choosers).toBe(n);
      // Up to 4 measured links weighed for the prior, or one chooser (as 4), per worker.
      expect(Math.max(...slices)).toBeLessThanOrEqual(4 * SLICE);
      expect(slices.length).toBeGreaterThanOrEqual((2 * n) / SLICE);
    }
  });
});
