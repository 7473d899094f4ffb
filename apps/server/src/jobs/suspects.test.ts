import { describe, expect, it } from 'vitest';
import { REFUSED_MIN_REJECTED, type LinkStats } from '@meshgrad/core';
import { keepRefusals, MAX_KEPT_REFUSALS, suspicions } from './suspects.ts';

/** A link report from a tab about `peer`: what it took from it and what it rejected. */
function link(peer: string, blocksReceived: number, rejected: number): LinkStats {
  return {
    peer,
    relayed: false,
    goodputBytesPerSec: 0,
    backlogBytes: 0,
    blocksSent: 10,
    blocksReceived,
    overwritten: 0,
    rejected,
    skippedSends: 0,
  };
}

describe('suspicions', () => {
  it('makes a suspect of a worker most of its reporting neighbours reject, with the evidence', () => {
    const s = suspicions([
      { id: 'a', links: [link('bad', 0, 40), link('b', 30, 0)] },
      { id: 'b', links: [link('bad', 2, 35), link('a', 30, 0)] },
      { id: 'c', links: [link('bad', 25, 0), link('a', 30, 0)] },
      { id: 'bad', links: [link('a', 30, 0), link('b', 30, 0)] },
    ]);
    expect(s.get('bad')).toEqual({
      reporters: 3,
      rejecting: 2,
      rejected: 75,
      received: 27,
      suspected: true,
    });
    expect(s.get('a')?.suspected).toBe(false);
    expect(s.get('b')?.suspected).toBe(false);
  });

  it('keeps the evidence of a refusal after the link closed and reports stop listing the peer', () => {
    // a and b refused bad's blocks; the balancer then gave bad other receivers, the links closed,
    // and a's and b's later reports list only each other.
    const a = { id: 'a', links: [link('bad', 0, 40), link('b', 30, 0)], refusals: new Map() };
    const b = { id: 'b', links: [link('bad', 2, 35), link('a', 30, 0)], refusals: new Map() };
    for (const w of [a, b]) keepRefusals(w.refusals, w.links);
    a.links = [link('b', 60, 0)];
    b.links = [link('a', 60, 0)];
    for (const w of [a, b]) keepRefusals(w.refusals, w.links);
    const c = { id: 'c', links: [link('bad', 25, 0)] };
    expect(suspicions([a, b, c]).get('bad')).toEqual({
      reporters: 3,
      rejecting: 2,
      rejected: 75,
      received: 27,
      suspected: true,
    });
    // Without the kept refusals only c reports bad, and takes its blocks.
    expect(
      suspicions([{ ...a, refusals: new Map() }, { ...b, refusals: new Map() }, c]).get('bad'),
    ).toMatchObject({ reporters: 1, rejecting: 0, suspected: false });
    // A peer the latest report lists again is judged by that report, not by the kept one, and
    // a report that takes its blocks after all withdraws the kept refusal.
    a.links = [link('bad', 200, 40)];
    expect(suspicions([a]).get('bad')).toMatchObject({ reporters: 1, rejecting: 0, received: 200 });
    keepRefusals(a.refusals, a.links);
    a.links = [];
    expect(a.refusals.has('bad')).toBe(false);
    expect(suspicions([a]).get('bad')).toBeUndefined();
  });

  it('keeps at most MAX_KEPT_REFUSALS refusals per worker, the newest', () => {
    const refusals = new Map<string, LinkStats>();
    for (let i = 0; i < MAX_KEPT_REFUSALS + 10; i++) {
      keepRefusals(refusals, [link(`p${i}`, 0, REFUSED_MIN_REJECTED), link(`ok${i}`, 30, 0)]);
    }
    expect(refusals.size).toBe(MAX_KEPT_REFUSALS);
    expect(refusals.has('p9')).toBe(false);
    expect(refusals.has('p10')).toBe(true);
    expect([...refusals.keys()].some((p) => p.startsWith('ok'))).toBe(false);
  });

  it('takes one lying reporter for no suspect, nor a minority of rejecting ones', () => {
    const liar = suspicions([
      { id: 'liar', links: [link('honest', 0, 1_000)] },
      { id: 'b', links: [link('honest', 40, 0)] },
    ]);
    expect(liar.get('honest')).toMatchObject({ reporters: 2, rejecting: 1, suspected: false });
    // Two of five reject: not most of them.
    const minority = suspicions(
      ['r1', 'r2', 'r3', 'r4', 'r5'].map((id, i) => ({
        id,
        links: [i < 2 ? link('x', 0, 50) : link('x', 50, 0)],
      })),
    );
    expect(minority.get('x')).toMatchObject({ reporters: 5, rejecting: 2, suspected: false });
  });

  it('needs a few rejected messages and half of what a reporter got before it counts', () => {
    const few = REFUSED_MIN_REJECTED - 1;
    const s = suspicions([
      { id: 'a', links: [link('p', 0, few), link('q', few + 2, few + 1)] },
      { id: 'b', links: [link('p', 0, few), link('q', few + 2, few + 1)] },
    ]);
    expect(s.get('p')).toMatchObject({ rejecting: 0, suspected: false });
    // Rejected under half of all it sent: the rest were taken.
    expect(s.get('q')).toMatchObject({ rejecting: 0, suspected: false });
    const half = suspicions([
      { id: 'a', links: [link('q', 8, 8)] },
      { id: 'b', links: [link('q', 8, 8)] },
    ]);
    expect(half.get('q')).toMatchObject({ rejecting: 2, suspected: true });
  });

  it('ignores a link a tab reports to itself', () => {
    const s = suspicions([
      { id: 'self', links: [link('self', 0, 100)] },
      { id: 'b', links: [link('self', 0, 100)] },
    ]);
    expect(s.get('self')).toMatchObject({ reporters: 1, rejecting: 1, suspected: false });
  });
});
