import { describe, expect, it } from 'vitest';
import type { WorkerSettings } from '@meshgrad/core';
import { TEST_DEVICE } from '../server.test-support.ts';
import type { RemoteWorker } from './cluster-link.ts';
import type { JobOutbox } from './outbox.ts';
import { Roster } from './roster.ts';

const SETTINGS: WorkerSettings = { communicationPeriod: 8, blocksPerMessage: 1, encoding: 'f32' };

/** An outbox that counts the neighbour lists sent. */
function countingOutbox(): { outbox: JobOutbox; sent: () => number } {
  let sent = 0;
  const outbox: JobOutbox = {
    neighbours: () => void sent++,
    settings: () => undefined,
    requestState: () => undefined,
    control: () => undefined,
  };
  return { outbox, sent: () => sent };
}

/** The ring rule written out plainly: the next and previous ⌈k/2⌉ of the sorted ids, k at most. */
function expectedRing(ids: readonly string[], id: string, k: number): string[] {
  const sorted = [...ids].sort();
  const n = sorted.length;
  const i = sorted.indexOf(id);
  const out = new Set<string>();
  const size = Math.min(k, n - 1);
  for (let d = 1; d <= Math.ceil(k / 2) && out.size < size; d++) {
    out.add(sorted[(i + d) % n]!);
    if (out.size < size) out.add(sorted[(i - d + n) % n]!);
  }
  out.delete(id);
  return [...out].sort();
}

/** A seeded generator (mulberry32), so a failure replays. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Roster neighbours', () => {
  for (const k of [1, 3, 4, 8]) {
    it(`after every join and leave, every worker holds its ring neighbours (k = ${k})`, () => {
      const roster = new Roster(4, k);
      const { outbox } = countingOutbox();
      const next = random(k);
      const live: string[] = [];
      for (let step = 0; step < 400; step++) {
        // Grow to about 40 workers, then churn; through the small sizes where windows wrap.
        if (live.length === 0 || (next() < 0.6 && live.length < 40)) {
          const id = `w-${Math.floor(next() * 1e9).toString(16)}`;
          if (roster.has(id)) continue;
          roster.add(id, `s-${id}`, TEST_DEVICE, { ...SETTINGS }, new Map());
          live.push(id);
        } else {
          const [id] = live.splice(Math.floor(next() * live.length), 1);
          roster.remove(id!);
        }
        roster.renewTouched(false, outbox);
        for (const id of live) {
          expect(roster.get(id)?.neighbours, `step ${step}, ${id}`).toEqual(
            expectedRing(live, id, k),
          );
        }
      }
    });
  }

  it('keeps the balancer’s choice of a reporting worker, minus a worker that left', () => {
    const roster = new Roster(4, 4);
    const { outbox, sent } = countingOutbox();
    const ids = Array.from({ length: 20 }, (_, i) => `w-${String(i).padStart(2, '0')}`);
    for (const id of ids) roster.add(id, `s-${id}`, TEST_DEVICE, { ...SETTINGS }, new Map());
    roster.renewTouched(true, outbox);
    // The balancer chose far-away neighbours for w-00 (not on its ring window).
    const w0 = roster.get('w-00')!;
    w0.reported = true;
    roster.tellNeighbours(w0, ['w-07', 'w-10', 'w-13'], outbox);
    const before = sent();
    roster.remove('w-10');
    roster.renewTouched(true, outbox);
    expect(w0.neighbours).toEqual(['w-07', 'w-13']);
    // w-00 and w-10's four ring neighbours' lists changed, nobody else's.
    expect(sent() - before).toBe(5);
  });

  it('counts a worker that failed over from another process once on its shard', () => {
    const roster = new Roster(2, 4);
    const remote = new Map([
      ['w-a', { id: 'w-a', server: 'other', shard: 0 }],
      ['w-b', { id: 'w-b', server: 'other', shard: 0 }],
    ]);
    // w-a is still listed on the other process: without it shard 0 has one worker, shard 1 none.
    expect(roster.add('w-a', 's', TEST_DEVICE, { ...SETTINGS }, remote).shard).toBe(1);
    expect(roster.add('w-c', 's', TEST_DEVICE, { ...SETTINGS }, remote).shard).toBe(1);
    expect(roster.add('w-d', 's', TEST_DEVICE, { ...SETTINGS }, new Map()).shard).toBe(0);
  });

  it('follows a change of the cluster’s other workers with the ring a whole renewal would give, renewing only workers near the change', () => {
    const k = 4;
    const roster = new Roster(4, k);
    const { outbox, sent } = countingOutbox();
    const next = random(7);
    const idOf = () => `w-${Math.floor(next() * 1e9).toString(16)}`;
    const local: string[] = [];
    for (let i = 0; i < 300; i++) {
      const id = idOf();
      if (roster.has(id)) continue;
      roster.add(id, `s-${id}`, TEST_DEVICE, { ...SETTINGS }, new Map());
      local.push(id);
    }
    roster.renewTouched(false, outbox);
    /** `n` new workers of another process. */
    const otherProcess = (n: number): Map<string, RemoteWorker> =>
      new Map(
        Array.from({ length: n }, () => {
          const id = idOf();
          return [id, { id, server: 'other', shard: 0 }] as const;
        }),
      );
    let remote = otherProcess(300);
    roster.renewAll(remote, false, outbox);
    for (let round = 0; round < 20; round++) {
      // A few remote workers come and go (another process's joins and leaves), and one of ours
      // is listed on another process too (a failover in flight).
      const changed = new Map(remote);
      for (const id of [...changed.keys()].slice(0, 3)) changed.delete(id);
      for (const [id, w] of otherProcess(4)) changed.set(id, w);
      const failover = local[round]!;
      changed.set(failover, { id: failover, server: 'other', shard: 0 });
      remote = changed;
      const renewalsBefore = roster.work.renewals;
      const sentBefore = sent();
      expect(roster.remoteChanged(remote)).toBe(true);
      roster.renewTouched(false, outbox);
      const all = [...new Set([...local, ...remote.keys()])];
      for (const id of local) {
        expect(roster.get(id)?.neighbours, `round ${round}, ${id}`).toEqual(
          expectedRing(all, id, k),
        );
      }
      // Eight ids changed: the workers within reach of each, not all 300.
      expect(roster.work.renewals - renewalsBefore).toBeLessThanOrEqual(8 * (2 * (k / 2 + 1) + 1));
      expect(sent() - sentBefore).toBeLessThanOrEqual(8 * k + 8);
    }
    // A change of most of the ring is left to a whole renewal.
    expect(roster.remoteChanged(otherProcess(300))).toBe(false);
  });
});
