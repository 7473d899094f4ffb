import { describe, expect, it } from 'vitest';
import { NORM_BOUND_FACTOR } from '../../asgd/worker.ts';
import type { EngineView } from '../scale/asgd-engine.ts';
import { scaleLinks } from '../scale/links.ts';
import { streamedKMeans } from '../scale/streamed-kmeans.ts';
import { AttackHarness, attackerCount, SCALE_FACTOR, type AttackKind } from './attacks.ts';
import { runByzantine } from './run.ts';

const SIZE = 12;
const BLOCK = 4;
const WORKERS = 10;

/** A fixed view: worker i's state is (i + 1) · (1, 2, …), gradients all ones. */
function fakeView(): EngineView {
  const states = Array.from({ length: WORKERS }, (_, w) =>
    Float32Array.from({ length: SIZE }, (_, i) => (w + 1) * (i + 1) * (i % 2 ? 1 : -1)),
  );
  const grad = new Float32Array(SIZE).fill(1);
  return {
    workers: WORKERS,
    size: SIZE,
    blockSize: BLOCK,
    initialParams: new Float32Array(SIZE),
    learningRate: 0.5,
    state: (i) => states[i]!,
    gradient: () => grad,
    neighbours: (i) => Int32Array.from([(i + 1) % WORKERS, (i + 2) % WORKERS]),
  };
}

function harness(kind: AttackKind, fraction = 0.3) {
  const h = new AttackHarness({ kind, fraction, seed: 1 });
  const view = fakeView();
  h.attach(view);
  return { h, view, attacker: WORKERS - 1 };
}

const norm = (v: Float32Array, a = 0, b = v.length) => {
  let s = 0;
  for (let i = a; i < b; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
};

describe('AttackHarness', () => {
  it('makes the last round(f·N) workers attackers and leaves honest states alone', () => {
    const { h, view } = harness('sign-flip');
    expect(attackerCount(WORKERS, 0.3)).toBe(3);
    expect(h.honest()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const s = view.state(2);
    expect(h.outgoing(2, 3, s, 0)).toBe(s);
    expect(h.stats).toEqual({ attackers: 3, forged: 0 });
  });

  it('sign flip negates, scaling multiplies under the norm bound', () => {
    const flip = harness('sign-flip');
    const s = flip.view.state(flip.attacker);
    expect(Array.from(flip.h.outgoing(flip.attacker, 0, s, 0)!)).toEqual(Array.from(s, (x) => -x));
    const scale = harness('scale');
    const v = scale.h.outgoing(scale.attacker, 0, s, 0)!;
    expect(Array.from(v)).toEqual(Array.from(s, (x) => SCALE_FACTOR * x));
    expect(norm(v)).toBeLessThan(NORM_BOUND_FACTOR * norm(s));
  });

  it('same-norm noise keeps each block’s norm and is not the state', () => {
    const { h, view, attacker } = harness('noise');
    const s = view.state(attacker);
    const v = h.outgoing(attacker, 0, s, 0)!;
    for (let a = 0; a < SIZE; a += BLOCK)
      expect(norm(v, a, a + BLOCK)).toBeCloseTo(norm(s, a, a + BLOCK), 4);
    const cos = v.reduce((acc, x, i) => acc + x * s[i]!, 0) / (norm(v) * norm(s));
    expect(Math.abs(cos)).toBeLessThan(0.99);
  });

  it('stale replay sends its first state forever', () => {
    const { h, attacker } = harness('stale');
    const first = Float32Array.from({ length: SIZE }, (_, i) => i);
    expect(h.outgoing(attacker, 0, first, 0)).toBe(first);
    expect(h.outgoing(attacker, 1, new Float32Array(SIZE).fill(7), 5)).toBe(first);
  });

  it('"a little is enough" stays within the honest spread around the receiver', () => {
    const { h, view, attacker } = harness('little-is-enough');
    const v = h.outgoing(attacker, 0, view.state(attacker), 0)!;
    // Receiver 0 and its honest neighbours 1, 2: every coordinate within their range ± spread.
    for (let i = 0; i < SIZE; i++) {
      const xs = [0, 1, 2].map((j) => view.state(j)[i]!);
      const lo = Math.min(...xs);
      const hi = Math.max(...xs);
      expect(v[i]!).toBeGreaterThanOrEqual(lo - (hi - lo));
      expect(v[i]!).toBeLessThanOrEqual(hi);
    }
  });

  it('inner-product manipulation steps uphill from the honest mean', () => {
    const { h, view, attacker } = harness('inner-product');
    const v = h.outgoing(attacker, 0, view.state(attacker), 0)!;
    const mu = view
      .state(0)
      .map((_, i) => [0, 1, 2].reduce((a, j) => a + view.state(j)[i]!, 0) / 3);
    const g = view.gradient(0);
    // ⟨g, v − μ⟩ > 0: the implied update climbs the loss.
    expect(v.reduce((a, x, i) => a + g[i]! * (x - mu[i]!), 0)).toBeGreaterThan(0);
  });

  it('dissensus pushes the receiver away from its honest neighbours', () => {
    const { h, view, attacker } = harness('dissensus');
    const w = view.state(0);
    const v = h.outgoing(attacker, 0, view.state(attacker), 0)!;
    const mu = w.map((_, i) => (view.state(1)[i]! + view.state(2)[i]!) / 2);
    const dist = (a: Float32Array, b: Float32Array) => norm(a.map((x, i) => x - b[i]!));
    expect(dist(v, mu)).toBeGreaterThan(dist(w, mu));
  });

  it('coordinated and Sybil attackers all send one vector, downhill and under the bound', () => {
    for (const kind of ['coordinated', 'sybil'] as const) {
      const { h, view } = harness(kind);
      const a = h.outgoing(7, 0, view.state(7), 1)!;
      const b = h.outgoing(9, 3, view.state(9), 1)!;
      expect(b).toBe(a);
      const g = view.gradient(0);
      const mu = kind === 'sybil' ? view.state(7) : view.state(0);
      expect(a.reduce((acc, x, i) => acc + g[i]! * (x - mu[i]!), 0)).toBeLessThan(0);
      for (let s = 0; s < SIZE; s += BLOCK) {
        expect(norm(a, s, s + BLOCK)).toBeLessThan(NORM_BOUND_FACTOR * norm(mu, s, s + BLOCK));
      }
    }
  });
});

describe('runByzantine', () => {
  const base = {
    workload: streamedKMeans({ clusters: 20, dims: 8 }),
    workers: 10,
    links: scaleLinks('lan'),
    learningRate: 1,
    evalIntervalS: 0.5,
    maxTimeS: 3,
    stopAtTarget: false,
    seed: 1,
  };

  it('with no guard a sign-flip minority reaches honest merges and wrecks the objective', async () => {
    const clean = await runByzantine({ ...base, attack: 'none', fraction: 0, guard: 'off' });
    const hit = await runByzantine({ ...base, attack: 'sign-flip', fraction: 0.3, guard: 'off' });
    expect(clean.attackers).toBe(0);
    expect(hit.attackers).toBe(3);
    expect(hit.ledger.attackerMerged).toBeGreaterThan(0);
    expect(hit.honestQuality).toBeGreaterThan(1.5 * clean.honestQuality);
  });

  it('the adopted guard quarantines sign-flipping attackers and keeps the honest mean close', async () => {
    const clean = await runByzantine({ ...base, attack: 'none', fraction: 0, guard: 'off' });
    const hit = await runByzantine({
      ...base,
      attack: 'sign-flip',
      fraction: 0.2,
      guard: 'clip-trust',
    });
    expect(hit.attackersQuarantined).toBe(2);
    expect(hit.honestQuality).toBeLessThan(1.05 * clean.honestQuality);
  });
});
