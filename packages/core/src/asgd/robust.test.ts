import { describe, expect, it } from 'vitest';
import {
  BlockGuard,
  blockDistance,
  CLIP_FACTOR,
  clipToward,
  DROP,
  QUARANTINE_STEPS,
  RELATIVE_RADIUS,
  SPREAD_WARMUP,
} from './robust.ts';

/** Feeds `count` honest distances 1.0 … 1.0 + (count−1)·0.01 to block 0 from `peer`. */
function warm(guard: BlockGuard<string>, count = SPREAD_WARMUP, peer = 'h') {
  for (let i = 0; i < count; i++) guard.judge(peer, 0, 1 + 0.01 * i);
}

describe('BlockGuard', () => {
  it('off passes everything unchanged', () => {
    const g = new BlockGuard<string>('off', 1);
    expect(g.judge('a', 0, 1e9)).toBe(1);
  });

  it('drops blocks until the spread is known, then clips far blocks onto the radius', () => {
    const g = new BlockGuard<string>('clip', 2);
    for (let i = 0; i < SPREAD_WARMUP - 1; i++) expect(g.judge('h', 0, 1)).toBe(DROP);
    g.judge('h', 0, 1);
    const r = g.radius(0);
    expect(r).toBeCloseTo(CLIP_FACTOR, 6);
    expect(g.judge('h', 0, 0.5 * r)).toBe(1);
    expect(g.judge('x', 0, 10 * r)).toBeCloseTo(0.1, 6);
    // Block 1 has its own history.
    expect(g.radius(1)).toBe(Infinity);
  });

  it('a far minority does not widen the radius', () => {
    const g = new BlockGuard<string>('clip', 1);
    warm(g, 24);
    const before = g.radius(0);
    for (let i = 0; i < 8; i++) g.judge('x', 0, 1e6);
    expect(g.radius(0)).toBeLessThan(1.1 * before);
  });

  it("the radius is at least RELATIVE_RADIUS × the local block's norm, however close the peers were", () => {
    const g = new BlockGuard<string>('clip', 1);
    warm(g);
    const spread = g.radius(0);
    // A local block of norm 100: a peer 10 × the spread away is inside the floor of 50, so it
    // passes unchanged, where with no local norm given it is clipped.
    const localNorm = 100;
    const lagging = 10 * spread;
    expect(lagging).toBeLessThan(RELATIVE_RADIUS * localNorm);
    expect(g.judge('h', 0, lagging, localNorm)).toBe(1);
    expect(g.judge('h', 0, lagging)).toBeLessThan(1);
    // A sign-flipped block, 2 × the norm away, is clipped onto the floor.
    expect(g.judge('x', 0, 2 * localNorm, localNorm)).toBeCloseTo(RELATIVE_RADIUS / 2, 6);
  });

  it('trim drops what clip would clip', () => {
    const g = new BlockGuard<string>('trim', 1);
    warm(g);
    expect(g.judge('x', 0, 100)).toBe(DROP);
    expect(g.judge('h', 0, 1)).toBe(1);
  });

  it('quarantines a peer that keeps sending far blocks, with back-off on repeat', () => {
    const g = new BlockGuard<string>('clip-trust', 1);
    warm(g, 24);
    let verdicts: number[] = [];
    for (let i = 0; i < 16; i++) verdicts.push(g.judge('x', 0, 100));
    // On probation its far blocks are dropped, never clipped, until it is quarantined.
    expect(verdicts.every((v) => v === DROP)).toBe(true);
    expect(g.quarantined('x')).toBe(true);
    expect(g.distrusted()).toEqual(['x']);
    expect(g.trustOf('x')!.quarantines).toBe(1);
    // Even a close block is dropped while in quarantine.
    expect(g.judge('x', 0, 1)).toBe(DROP);
    for (let t = 0; t < QUARANTINE_STEPS; t++) g.tick();
    expect(g.quarantined('x')).toBe(false);
    // Released, still far: back in quarantine within three blocks, for twice as long.
    verdicts = [g.judge('x', 0, 100), g.judge('x', 0, 100), g.judge('x', 0, 100)];
    expect(verdicts).toContain(DROP);
    expect(g.trustOf('x')!.quarantines).toBe(2);
    for (let t = 0; t < QUARANTINE_STEPS; t++) g.tick();
    expect(g.quarantined('x')).toBe(true);
    for (let t = 0; t < QUARANTINE_STEPS; t++) g.tick();
    expect(g.quarantined('x')).toBe(false);
    // An honest peer with the usual spread is never quarantined.
    warm(g, 200, 'h2');
    expect(g.quarantined('h2')).toBe(false);
  });
});

describe('clipToward / blockDistance', () => {
  it('clipping lands on the sphere of the radius around the local block', () => {
    const local = Float32Array.from([1, 1, 1]);
    const peer = Float32Array.from([4, 5, 1]);
    const d = blockDistance(local, peer);
    expect(d).toBeCloseTo(5, 6);
    clipToward(local, peer, 2 / d);
    expect(blockDistance(local, peer)).toBeCloseTo(2, 5);
    expect(Array.from(peer)).toEqual([expect.closeTo(2.2, 5), expect.closeTo(2.6, 5), 1]);
  });
});
