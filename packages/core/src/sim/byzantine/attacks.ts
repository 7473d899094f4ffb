/**
 * Malicious volunteers for the scaling simulator: a set of attacker workers whose outgoing
 * states are rewritten on the way out (`OutgoingHook` of `runScaleAsgd`). Every attack sends a
 * well-formed state of the right length under the receiver's norm bound, as a tab that
 * rewrites its messages and recomputes their checksums would. Attackers train like anyone else;
 * only what they send is forged. The informed attacks are omniscient (they read the honest
 * states they target), the usual worst case of the robust-aggregation literature.
 */
import { Rng } from '../../util/rng.ts';
import type { EngineView, OutgoingHook } from '../scale/asgd-engine.ts';

export type AttackKind =
  | 'sign-flip'
  | 'scale'
  | 'noise'
  | 'stale'
  | 'little-is-enough'
  | 'inner-product'
  | 'dissensus'
  | 'coordinated'
  | 'sybil';

export const ATTACKS: readonly AttackKind[] = [
  'sign-flip',
  'scale',
  'noise',
  'stale',
  'little-is-enough',
  'inner-product',
  'dissensus',
  'coordinated',
  'sybil',
];

/** Attacker fractions the bench runs (issue: f ∈ {0, 10, 20, 30, 40%}). */
export const ATTACK_FRACTIONS: readonly number[] = [0, 0.1, 0.2, 0.3, 0.4];

/** The scaling attack's factor: well under the receiver's norm bound, so every block passes. */
export const SCALE_FACTOR = 4;
/**
 * "A little is enough" (Baruch, Baruch & Goldberg 2019): every coordinate shifted by z of the
 * honest standard deviations, small enough to hide among honest values. z = 1 is about the
 * paper's z_max for 20 to 50 workers with a fifth to a third of them malicious.
 */
export const LITTLE_Z = 1;
/**
 * Inner-product manipulation (Xie, Koyejo & Gupta 2020): the state implies an update of −ε
 * times the honest one, so the merged update's inner product with the true gradient turns
 * negative. ε = 0.5 is the paper's "small ε" regime that evades distance-based filters.
 */
export const IPM_EPSILON = 0.5;
/**
 * Dissensus (He, Karimireddy & Jaggi 2022): the receiver is pushed away from its honest
 * neighbours' mean by this multiple of its distance to it.
 */
export const DISSENSUS_EPSILON = 1;
/**
 * The coordinated and Sybil attacks send one state overshooting along the descent direction by
 * this multiple of the block's norm: the Parzen test accepts any block far enough downhill, and
 * the result stays at about three block norms, inside the norm bound.
 */
export const OVERSHOOT = 2;
/** How often per simulated second the coordinated attackers agree on a new shared vector. */
const SHARED_REFRESH_PER_S = 25;

export interface AttackHarnessOptions {
  readonly kind: AttackKind;
  /** Fraction of the workers that attack, in [0, 1); they are the last indices. */
  readonly fraction: number;
  readonly seed: number;
}

/** Attackers for `fraction` of `workers` (rounded to the nearest whole worker). */
export function attackerCount(workers: number, fraction: number): number {
  return Math.round(workers * fraction);
}

/** Counts of what the harness sent. */
export interface AttackStats {
  attackers: number;
  /** States the attackers sent (each rewritten). */
  forged: number;
}

/** The outgoing hook that makes the last `fraction` of the workers attack. */
export class AttackHarness implements OutgoingHook {
  readonly stats: AttackStats = { attackers: 0, forged: 0 };
  private view: EngineView | null = null;
  private firstAttacker = 0;
  private readonly rng: Rng;
  /** Each attacker's first sent state, for the stale replay. */
  private readonly firstSent = new Map<number, Float32Array>();
  private sharedKey = -1;
  private shared: Float32Array | null = null;

  constructor(readonly options: AttackHarnessOptions) {
    this.rng = new Rng(options.seed * 7_727 + 11);
  }

  attach(view: EngineView): void {
    this.view = view;
    const count = attackerCount(view.workers, this.options.fraction);
    this.firstAttacker = view.workers - count;
    this.stats.attackers = count;
  }

  /** Whether worker `i` is an attacker (valid after `attach`). */
  isAttacker(i: number): boolean {
    return this.view !== null && i >= this.firstAttacker;
  }

  /** Indices of the honest workers. */
  honest(): number[] {
    return Array.from({ length: this.firstAttacker }, (_, i) => i);
  }

  outgoing(from: number, to: number, state: Float32Array, nowS: number): Float32Array | null {
    const view = this.view;
    if (view === null || from < this.firstAttacker) return state;
    this.stats.forged++;
    const { kind } = this.options;
    switch (kind) {
      case 'sign-flip':
        return state.map((x) => -x);
      case 'scale':
        return state.map((x) => SCALE_FACTOR * x);
      case 'noise':
        return this.sameNormNoise(view, state);
      case 'stale': {
        let first = this.firstSent.get(from);
        if (!first) this.firstSent.set(from, (first = state));
        return first;
      }
      case 'little-is-enough':
        return this.littleIsEnough(view, to);
      case 'inner-product':
        return this.innerProduct(view, to);
      case 'dissensus':
        return this.dissensus(view, to);
      case 'coordinated':
      case 'sybil':
        return this.sharedVector(view, kind, nowS);
    }
  }

  /** Gaussian noise scaled per block to the norm of the state's block. */
  private sameNormNoise(view: EngineView, state: Float32Array): Float32Array {
    const out = new Float32Array(state.length);
    for (let start = 0; start < out.length; start += view.blockSize) {
      const end = Math.min(start + view.blockSize, out.length);
      let nn = 0;
      let ss = 0;
      for (let i = start; i < end; i++) {
        const r = this.rng.normal();
        out[i] = r;
        nn += r * r;
        ss += state[i]! * state[i]!;
      }
      const f = nn > 0 ? Math.sqrt(ss / nn) : 0;
      for (let i = start; i < end; i++) out[i]! *= f;
    }
    return out;
  }

  /** The honest workers `to` sees or is: itself and its honest neighbours. */
  private honestAround(view: EngineView, to: number): number[] {
    const set = to < this.firstAttacker ? [to] : [];
    for (const j of view.neighbours(to)) if (j < this.firstAttacker) set.push(j);
    return set.length > 0 ? set : [0];
  }

  private mean(view: EngineView, of: readonly number[], read: (i: number) => Float32Array) {
    const out = new Float32Array(view.size);
    for (const j of of) {
      const v = read(j);
      for (let i = 0; i < out.length; i++) out[i]! += v[i]! / of.length;
    }
    return out;
  }

  private littleIsEnough(view: EngineView, to: number): Float32Array {
    const set = this.honestAround(view, to);
    const mu = this.mean(view, set, (j) => view.state(j));
    const out = new Float32Array(view.size);
    for (let i = 0; i < out.length; i++) {
      let v = 0;
      for (const j of set) v += (view.state(j)[i]! - mu[i]!) ** 2;
      out[i] = mu[i]! - LITTLE_Z * Math.sqrt(v / set.length);
    }
    return out;
  }

  private innerProduct(view: EngineView, to: number): Float32Array {
    const set = this.honestAround(view, to);
    const mu = this.mean(view, set, (j) => view.state(j));
    const g = this.mean(view, set, (j) => view.gradient(j));
    const step = IPM_EPSILON * view.learningRate;
    return mu.map((m, i) => m + step * g[i]!);
  }

  private dissensus(view: EngineView, to: number): Float32Array {
    const set = this.honestAround(view, to).filter((j) => j !== to);
    const w = view.state(to);
    if (set.length === 0) return w.slice();
    const mu = this.mean(view, set, (j) => view.state(j));
    return w.map((x, i) => x - DISSENSUS_EPSILON * (mu[i]! - x));
  }

  /**
   * One vector for every attacker: a state overshooting downhill. Coordinated: from the mean
   * honest state and gradient (omniscient). Sybil: one attacker's own state and gradient, sent
   * by every identity it holds.
   */
  private sharedVector(view: EngineView, kind: AttackKind, nowS: number): Float32Array {
    const key = Math.floor(nowS * SHARED_REFRESH_PER_S);
    if (this.shared !== null && key === this.sharedKey) return this.shared;
    const set = kind === 'sybil' ? [this.firstAttacker] : this.honest();
    const mu = this.mean(view, set, (j) => view.state(j));
    const g = this.mean(view, set, (j) => view.gradient(j));
    for (let start = 0; start < mu.length; start += view.blockSize) {
      const end = Math.min(start + view.blockSize, mu.length);
      let mm = 0;
      let gg = 0;
      for (let i = start; i < end; i++) {
        mm += mu[i]! * mu[i]!;
        gg += g[i]! * g[i]!;
      }
      if (gg === 0) continue;
      const f = (OVERSHOOT * Math.sqrt(mm)) / Math.sqrt(gg);
      for (let i = start; i < end; i++) mu[i]! -= f * g[i]!;
    }
    this.sharedKey = key;
    this.shared = mu;
    return mu;
  }
}
