/**
 * The robust receive path (docs/design.md §8): every peer block that passed the header and norm
 * checks is judged by its distance to the receiver's own copy of that block before it reaches
 * the merge. The radius comes from the recent spread of the peer blocks this worker received for
 * the same index, so it follows training without a tuned constant per model; a peer whose blocks
 * keep landing outside it loses trust and is quarantined with back-off. Per block this costs one
 * reduction (the distance) and, for a clipped block, one scaled add: the Parzen test's class.
 * The radius needs a local majority of honest senders to mean anything: a worker most of whose
 * incoming links are forged is judged against forged distances (docs/design.md §8).
 */

/**
 * - `off`: every block passes unchanged (the merge as before this guard).
 * - `clip`: self-centred clipping (He, Karimireddy & Jaggi 2022): a block farther than the
 *   radius from the local block is pulled onto the sphere around it, v ← r + τ·(v − r)/‖v − r‖.
 * - `trim`: a block farther than the radius is dropped instead (the history stands in for the
 *   set a trimmed mean would sort: a worker's inbox holds about one block per index per step).
 * - `clip-trust`: clipping, plus per-peer trust with quarantine and back-off.
 */
export type GuardMode = 'off' | 'clip' | 'trim' | 'clip-trust';

export const GUARD_MODES: readonly GuardMode[] = ['off', 'clip', 'trim', 'clip-trust'];

/**
 * The guards a job spec's `training.guard` may choose (the bench's `clip` and `trim` are steps
 * toward the last).
 */
export const JOB_GUARD_MODES = ['off', 'clip-trust'] as const satisfies readonly GuardMode[];
export type JobGuardMode = (typeof JOB_GUARD_MODES)[number];

/** The guard `npm run bench:byzantine` chose (docs/design.md §8.1). */
export const ADOPTED_GUARD: GuardMode = 'clip-trust';

/**
 * The guard `AsgdWorker` and a job spec's `training.guard` default to: the adopted one. Its radius
 * has a floor relative to the local block (`RELATIVE_RADIUS`), without which it quarantined
 * honest peers of p2p.spec's exchange in real pages (docs/design.md §8.1).
 */
export const DEFAULT_GUARD: JobGuardMode = 'clip-trust';

/** Recent distances kept per block index; the radius is a multiple of their lower quartile. */
export const SPREAD_HISTORY = 32;
/** No clipping until this many distances were seen for the block: no spread is known yet. */
export const SPREAD_WARMUP = 8;
/**
 * The radius is CLIP_FACTOR × this quantile of the recent distances. A low quantile, because
 * forged blocks are far and must not widen the radius: with a quarter of a worker's incoming
 * blocks honest the quantile is still an honest distance. Chosen by `npm run bench:byzantine`'s
 * exploration: the median let a 30% sign-flip attack through at every factor tried (1, 2).
 */
export const SPREAD_QUANTILE = 0.25;
/**
 * Three times the lower-quartile distance leaves the bulk of honest blocks untouched (at 1.5
 * every peer looked far and trust isolated every worker; the no-attack cost at 3 is measured
 * by the bench) while a far block moves the merge no more than a typical honest one.
 */
export const CLIP_FACTOR = 3;
/**
 * The radius is never below this fraction of the local block's norm. In real tabs honest peers
 * differ in progress by factors (duty cycles, devices), and a radius from the closest peers'
 * distances alone called the slower ones far: their blocks were dropped, so they drifted
 * farther, and the guard quarantined honest peers. At 0.5 p2p.spec's honest exchange rejected
 * nothing, at 0.1 and 0.05 it rejected honest blocks again (docs/design.md §8.1). The loud
 * forgeries sit far beyond it: a sign-flipped block is about 2‖w‖ from the local one, noise of
 * the same norm √2‖w‖, a block scaled ×4 3‖w‖; a stale replay can fall inside it.
 */
export const RELATIVE_RADIUS = 0.5;
/** Weight of the newest verdict in a peer's smoothed outside-the-radius rate. */
export const TRUST_SMOOTHING = 1 / 16;
/** A peer whose smoothed rate of blocks outside the radius exceeds this is quarantined. */
export const QUARANTINE_RATE = 0.5;
/** A peer above this rate is suspect: its far blocks are dropped, not clipped. */
export const SUSPECT_RATE = 0.25;
/** Blocks judged from a peer before its rate can quarantine it (one bad block is noise). */
export const TRUST_MIN_BLOCKS = 8;
/** First quarantine, in steps of the receiving worker; each repeat doubles it. */
export const QUARANTINE_STEPS = 100;
/** Doublings of the quarantine at most (100 · 2^6 steps). */
export const MAX_QUARANTINE_DOUBLINGS = 6;
/**
 * A released peer's rate restarts here, under the bar: a reformed peer clears it, one still
 * sending far blocks is back in quarantine after three of them.
 */
export const RELEASE_RATE = 0.4;

/** `judge`'s answer for a block that must not reach the merge. */
export const DROP = -1;

/** What the guard remembers of one peer. */
export interface PeerTrust {
  /** Smoothed rate of this peer's blocks that fell outside the radius. */
  rate: number;
  judged: number;
  /** Blocks that fell outside the radius (clipped or trimmed). */
  outside: number;
  /** Blocks dropped because the peer was quarantined. */
  dropped: number;
  /** Times quarantined. */
  quarantines: number;
  /** Step until which its blocks are dropped; −1 when not quarantined. */
  quarantinedUntil: number;
}

/** Euclidean distance between a local block and a peer block of the same length. */
export function blockDistance(local: Float32Array, peer: Float32Array): number {
  let s = 0;
  for (let i = 0; i < local.length; i++) {
    const d = peer[i]! - local[i]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

/**
 * Moves `peer` in place onto `local + scale · (peer − local)`, the clipped block `judge` asked
 * for (scale in (0, 1)).
 */
export function clipToward(local: Float32Array, peer: Float32Array, scale: number): void {
  for (let i = 0; i < peer.length; i++) peer[i] = local[i]! + scale * (peer[i]! - local[i]!);
}

/** One worker's guard; `K` is how peers are named (a link id, a simulator index). */
export class BlockGuard<K> {
  private readonly history: Float64Array;
  private readonly seen: Int32Array;
  private readonly sorted = new Float64Array(SPREAD_HISTORY);
  private readonly radii: Float64Array;
  private readonly peers = new Map<K, PeerTrust>();
  private now = 0;

  constructor(
    readonly mode: GuardMode,
    blockCount: number,
  ) {
    this.history = new Float64Array(blockCount * SPREAD_HISTORY);
    this.seen = new Int32Array(blockCount);
    this.radii = new Float64Array(blockCount).fill(Infinity);
  }

  /** Advances the guard's clock by one step of its worker (quarantines count steps). */
  tick(): void {
    this.now++;
  }

  /**
   * The verdict on a block of `peer` for index `block` at `distance` from the local copy, whose
   * norm is `localNorm` (the radius is at least `RELATIVE_RADIUS` × it): `DROP`, or the factor
   * in (0, 1] to scale (v − local) by (1: unchanged).
   */
  judge(peer: K, block: number, distance: number, localNorm = 0): number {
    if (this.mode === 'off') return 1;
    const trust = this.mode === 'clip-trust' ? this.trust(peer) : null;
    if (trust !== null && trust.quarantinedUntil >= 0) {
      if (this.now < trust.quarantinedUntil) {
        trust.dropped++;
        return DROP;
      }
      trust.quarantinedUntil = -1;
      trust.rate = RELEASE_RATE;
    }
    if (!Number.isFinite(distance)) return DROP;
    const radius = Math.max(this.radii[block]!, RELATIVE_RADIUS * localNorm);
    this.record(block, distance);
    // No spread known yet: nothing to judge against, so nothing is merged (a few blocks per
    // index at the start, where a forged block would do the most harm).
    if (radius === Infinity) return DROP;
    const outside = distance > radius;
    if (trust !== null) {
      trust.judged++;
      if (outside) trust.outside++;
      trust.rate += TRUST_SMOOTHING * ((outside ? 1 : 0) - trust.rate);
      if (trust.judged >= TRUST_MIN_BLOCKS && trust.rate > QUARANTINE_RATE) {
        const doublings = Math.min(trust.quarantines, MAX_QUARANTINE_DOUBLINGS);
        trust.quarantines++;
        trust.quarantinedUntil = this.now + QUARANTINE_STEPS * 2 ** doublings;
        trust.dropped++;
        return DROP;
      }
    }
    if (!outside) return 1;
    // A far block is clipped only from a trusted peer. From a newcomer, or a peer whose rate
    // is climbing towards quarantine, it is dropped: those are exactly the blocks in which
    // clipped forged blocks would pile up before the rate can convict their sender.
    if (
      this.mode === 'trim' ||
      (trust !== null && (trust.judged < TRUST_MIN_BLOCKS || trust.rate > SUSPECT_RATE))
    ) {
      return DROP;
    }
    return radius / distance;
  }

  /** Whether `peer` is in quarantine now. */
  quarantined(peer: K): boolean {
    const t = this.peers.get(peer);
    return t !== undefined && t.quarantinedUntil > this.now;
  }

  /** Peers in quarantine now (for reports: the evidence is `trustOf`). */
  distrusted(): K[] {
    const out: K[] = [];
    for (const [peer, t] of this.peers) if (t.quarantinedUntil > this.now) out.push(peer);
    return out;
  }

  /** What the guard knows of `peer`, or undefined before its first block. */
  trustOf(peer: K): Readonly<PeerTrust> | undefined {
    return this.peers.get(peer);
  }

  /** The radius block `block` is judged against now (Infinity during warm-up). */
  radius(block: number): number {
    return this.radii[block]!;
  }

  private trust(peer: K): PeerTrust {
    let t = this.peers.get(peer);
    if (!t) {
      t = { rate: 0, judged: 0, outside: 0, dropped: 0, quarantines: 0, quarantinedUntil: -1 };
      this.peers.set(peer, t);
    }
    return t;
  }

  /**
   * Adds a distance to the block's ring and refreshes its radius. Every judged distance counts,
   * a far one too: the lower quartile ignores far blocks however far they are, and a radius
   * that only honest-looking blocks could widen would never follow training.
   */
  private record(block: number, distance: number): void {
    const count = this.seen[block]!;
    const base = block * SPREAD_HISTORY;
    this.history[base + (count % SPREAD_HISTORY)] = distance;
    this.seen[block] = count + 1;
    const filled = Math.min(count + 1, SPREAD_HISTORY);
    if (filled < SPREAD_WARMUP) return;
    const ring = this.sorted.subarray(0, filled);
    ring.set(this.history.subarray(base, base + filled));
    ring.sort();
    const at = Math.min(filled - 1, Math.floor(SPREAD_QUANTILE * filled));
    this.radii[block] = CLIP_FACTOR * ring[at]!;
  }
}
