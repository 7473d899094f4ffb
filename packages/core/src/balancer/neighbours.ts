/**
 * Choosing each worker's neighbours (the peers it sends to) from what is known about the links
 * (DESIGN §3: the server chooses neighbours and treats relayed links as slow).
 */
import { Rng } from '../util/rng.ts';

/** What is known about the link from one worker to another. */
export interface LinkQuality {
  /** The path goes through the server's relay. */
  readonly relayed: boolean;
  /** Measured round-trip time, ms. */
  readonly rttMs?: number;
  /** Estimated bytes/s this link can carry. */
  readonly capacityBytesPerSec?: number;
  /** Fraction of this link's blocks that passed the receiver's Parzen test. */
  readonly acceptanceRate?: number;
}

/** A relayed link scores this fraction of an equal direct one: it shares the server's pipe. */
export const RELAYED_SCORE_FACTOR = 0.1;
/** RTT at which a link's score halves, ms: latency makes every block it carries staler. */
export const RTT_HALF_SCORE_MS = 200;

export interface NeighbourOptions {
  /** Neighbours per worker (fewer when there are fewer other workers); default 4. */
  readonly k?: number;
  /** Quality of the link from → to, or undefined when never measured. */
  readonly quality: (from: string, to: string) => LinkQuality | undefined;
  /** Current neighbours; kept unless a clearly better link exists (hysteresis). */
  readonly previous?: ReadonlyMap<string, readonly string[]>;
  /**
   * A current neighbour is replaced only by a candidate scoring this many times more; default
   * 2. Every change costs a new data channel (ICE, DTLS) and resets its measurements, so it has
   * to buy something.
   */
  readonly switchGain?: number;
  /** Seeds tie-breaking and the order workers choose in; default 1. */
  readonly seed?: number;
  /**
   * The workers `from` has a measured link to (those for which `quality` may be defined). With
   * it, the prior and the candidates come from these links instead of from every pair, which is
   * what keeps the choice O(N log N); without it every pair is asked (O(N²)).
   */
  readonly measuredPeers?: (from: string) => Iterable<string>;
  /**
   * Varies the sampled candidates from one call to the next (the balancer passes its tick), so
   * over time every worker gets to try others; default 0.
   */
  readonly round?: number;
}

/**
 * Up to this many workers, every worker weighs every other one as a candidate. Above it each
 * weighs its current neighbours, its measured peers and `SAMPLED_CANDIDATES` others drawn at
 * random: weighing all of them cost 15–22 s per tick at 1,000 workers (docs/balancer-history.md).
 * At or under 64 it changes nothing in bench:balance, whose largest run has 64 workers.
 */
export const EXHAUSTIVE_NEIGHBOUR_SEARCH_MAX = 64;
/** Random candidates per worker beyond its current and measured peers, in a large job. */
export const SAMPLED_CANDIDATES = 16;

/** Default neighbours per worker. */
export const DEFAULT_NEIGHBOURS = 4;

/**
 * Score of a link, higher is better: capacity (or `prior` when unknown), divided by
 * 1 + rtt / RTT_HALF_SCORE_MS, times RELAYED_SCORE_FACTOR when relayed, times
 * (0.5 + acceptance rate) when known, so a peer whose blocks the receiver keeps rejecting is
 * worth less.
 */
export function linkScore(quality: LinkQuality | undefined, prior: number): number {
  if (quality === undefined) return prior;
  let score = quality.capacityBytesPerSec ?? prior;
  if (quality.rttMs !== undefined) score /= 1 + quality.rttMs / RTT_HALF_SCORE_MS;
  if (quality.relayed) score *= RELAYED_SCORE_FACTOR;
  if (quality.acceptanceRate !== undefined) score *= 0.5 + quality.acceptanceRate;
  return score;
}

/**
 * Picks up to k neighbours per worker, preferring good links:
 * 1. Workers choose in a seeded random order. Each keeps its previous neighbours that are still
 *    there, then fills up with the best-scoring candidates. Unmeasured links score the median
 *    of the measured ones, so they are tried but do not displace good known links.
 * 2. A candidate's score is divided by 1 + (its in-degree so far) / k, so the best-connected
 *    workers do not end up receiving from everyone (their downlink would saturate).
 * 3. A kept neighbour is swapped for a better candidate only when the candidate scores
 *    `switchGain` times more (hysteresis: measurements are noisy and changes are costly).
 * 4. If the resulting graph (edges taken as undirected, since a data channel carries both ways)
 *    falls apart, each stray component gets one extra edge to the main component through the
 *    best link between them, so every block can still reach every worker.
 * With more than `EXHAUSTIVE_NEIGHBOUR_SEARCH_MAX` workers, a worker's candidates (in 1, 3 and
 * 4) are its measured peers and `SAMPLED_CANDIDATES` others drawn at random instead of every
 * worker, and each candidate is weighed once per worker: O(N log N) per call, given
 * `measuredPeers`, with a bounded number of `quality` calls per worker.
 */
export function chooseNeighbours(
  workers: readonly string[],
  options: NeighbourOptions,
): Map<string, string[]> {
  const k = Math.max(0, Math.min(options.k ?? DEFAULT_NEIGHBOURS, workers.length - 1));
  const switchGain = options.switchGain ?? 2;
  const rng = new Rng(options.seed ?? 1);
  const present = new Set(workers);
  const measuredPeersOf = options.measuredPeers;
  /** Present workers other than `a` with a measured link from `a`, each once. */
  const measuredPeers = (a: string): string[] => {
    if (!measuredPeersOf) return [];
    const peers = new Set<string>();
    for (const b of measuredPeersOf(a)) if (b !== a && present.has(b)) peers.add(b);
    return [...peers];
  };

  const measured: number[] = [];
  for (const a of workers) {
    for (const b of measuredPeersOf ? measuredPeers(a) : workers) {
      if (a === b) continue;
      const q = options.quality(a, b);
      if (q?.capacityBytesPerSec !== undefined) measured.push(linkScore(q, 0));
    }
  }
  measured.sort((x, y) => x - y);
  const prior = measured.length ? measured[Math.floor(measured.length / 2)]! : 1;
  const score = (a: string, b: string) => linkScore(options.quality(a, b), prior);

  const exhaustive = workers.length <= EXHAUSTIVE_NEIGHBOUR_SEARCH_MAX;
  // Its own generator, so that the choosing order and the jitter do not depend on the sampling.
  const sampler = new Rng(((options.seed ?? 1) * 0x9e3779b1 + (options.round ?? 0)) >>> 0);
  /** A large job's candidates for `a`: its measured peers and `count` others at random. */
  const sampled = (a: string, count: number, from: readonly string[]): string[] => {
    const candidates = new Set(measuredPeers(a));
    for (let draw = 0; draw < count; draw++) {
      const b = from[sampler.int(from.length)]!;
      if (b !== a) candidates.add(b);
    }
    return [...candidates];
  };

  const inDegree = new Map<string, number>(workers.map((w) => [w, 0]));
  const result = new Map<string, string[]>();
  const order = rng.shuffle([...workers]);
  // A tiny seeded jitter breaks ties so equal links do not all pick the same first worker.
  const jitter = new Map<string, number>(workers.map((w) => [w, 1 + 1e-6 * rng.next()]));
  for (const a of order) {
    // In-degrees change only once `a` has chosen, so each candidate is weighed once.
    const weighed = new Map<string, number>();
    const effective = (b: string) => {
      let value = weighed.get(b);
      if (value === undefined) {
        value = (score(a, b) * jitter.get(b)!) / (1 + inDegree.get(b)! / k);
        weighed.set(b, value);
      }
      return value;
    };
    const kept = (options.previous?.get(a) ?? []).filter((b) => b !== a && present.has(b));
    const chosen = [...new Set(kept)].sort((x, y) => effective(y) - effective(x)).slice(0, k);
    const others = (exhaustive ? workers : sampled(a, SAMPLED_CANDIDATES, workers))
      .filter((b) => b !== a && !chosen.includes(b))
      .sort((x, y) => effective(y) - effective(x));
    while (chosen.length < k && others.length) chosen.push(others.shift()!);
    // Swap the worst kept neighbour for the best outsider while that clearly pays.
    for (;;) {
      const best = others[0];
      if (best === undefined || chosen.length === 0) break;
      let worstIndex = 0;
      for (let i = 1; i < chosen.length; i++) {
        if (effective(chosen[i]!) < effective(chosen[worstIndex]!)) worstIndex = i;
      }
      if (effective(best) <= switchGain * effective(chosen[worstIndex]!)) break;
      others.shift();
      others.push(chosen[worstIndex]!);
      others.sort((x, y) => effective(y) - effective(x));
      chosen[worstIndex] = best;
    }
    for (const b of chosen) inDegree.set(b, inDegree.get(b)! + 1);
    result.set(a, chosen);
  }
  if (k > 0) {
    connectComponents(
      workers,
      result,
      score,
      exhaustive ? null : (a, main) => sampled(a, SAMPLED_CANDIDATES, main),
    );
  }
  return result;
}

/**
 * Joins every stray component to the largest one through the best link between them. The
 * links weighed from a stray worker `a` are all of the main component's, or, when `candidates`
 * is given (a large job), those it returns for `a`, so the work stays linear in the workers.
 */
function connectComponents(
  workers: readonly string[],
  result: Map<string, string[]>,
  score: (a: string, b: string) => number,
  candidates: ((a: string, main: readonly string[]) => readonly string[]) | null,
): void {
  const parent = new Map<string, string>(workers.map((w) => [w, w]));
  const find = (x: string): string => {
    let root = x;
    while (parent.get(root) !== root) root = parent.get(root)!;
    // Full path compression keeps later finds short, whatever the union order.
    for (let node = x; node !== root;) {
      const next = parent.get(node)!;
      parent.set(node, root);
      node = next;
    }
    return root;
  };
  for (const [a, list] of result) for (const b of list) parent.set(find(a), find(b));
  const groups = new Map<string, string[]>();
  for (const w of workers) {
    const root = find(w);
    const g = groups.get(root);
    if (g) g.push(w);
    else groups.set(root, [w]);
  }
  if (groups.size < 2) return;
  const [main, ...rest] = [...groups.values()].sort((x, y) => y.length - x.length);
  const inMain = new Set(main);
  for (const group of rest) {
    let best: [string, string] | null = null;
    let bestScore = -Infinity;
    for (const a of group) {
      const targets = candidates ? candidates(a, main!).filter((b) => inMain.has(b)) : main!;
      for (const b of targets) {
        const s = score(a, b);
        if (s > bestScore) {
          bestScore = s;
          best = [a, b];
        }
      }
    }
    if (best) {
      result.get(best[0])!.push(best[1]);
      main!.push(...group);
      for (const w of group) inMain.add(w);
    }
  }
}
