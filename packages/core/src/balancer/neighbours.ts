/**
 * Choosing each worker's neighbours (the peers it sends to) from what is known about the links
 * (DESIGN §3: the server chooses neighbours and treats relayed links as slow).
 */
import { Rng } from '../util/rng.ts';
import {
  HAS_ACCEPTANCE,
  HAS_CAPACITY,
  HAS_RTT,
  LinkTableBuilder,
  REFUSED,
  RELAYED,
  scoreOfParts,
  type LinkTable,
} from './link-table.ts';
import { runSteps, Slice, type Steps } from './steps.ts';

export { RELAYED_SCORE_FACTOR, RTT_HALF_SCORE_MS } from './link-table.ts';

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
  /**
   * The receiver refuses this link's blocks (`refusesBlocks`): its guard rejects most of what
   * the sender sends it. The sender is not given it as a neighbour while this holds.
   */
  readonly refused?: boolean;
}

/** A receiver refuses a sender once it rejected this many of its messages… */
export const REFUSED_MIN_REJECTED = 8;
/** …and at least this share of all it got from it (rejected over rejected + taken). */
export const REFUSED_SHARE = 0.5;

/**
 * Whether a receiver's counters for one sender (its report of the link, cumulative) say that it
 * refuses the sender's blocks: at least REFUSED_MIN_REJECTED rejected, and at least REFUSED_SHARE
 * of all it got. The receiver's word is taken: a receiver that lies about an honest sender only
 * cuts itself off from that sender's blocks (docs/design.md §8.1).
 */
export function refusesBlocks(counters: { rejected: number; blocksReceived: number }): boolean {
  return (
    counters.rejected >= REFUSED_MIN_REJECTED &&
    counters.rejected >= REFUSED_SHARE * (counters.rejected + counters.blocksReceived)
  );
}

export interface NeighbourOptions {
  /** Neighbours per worker (fewer when there are fewer other workers); default 4. */
  readonly k?: number;
  /** Quality of the link from → to, or undefined when never measured. */
  readonly quality: (from: string, to: string) => LinkQuality | undefined;
  /**
   * Current neighbours; kept unless a clearly better link exists (hysteresis). Only `get` is
   * asked, once per worker as it chooses.
   */
  readonly previous?: Pick<ReadonlyMap<string, readonly string[]>, 'get'>;
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
 * worth less; 0 when the receiver refuses the link's blocks.
 */
export function linkScore(quality: LinkQuality | undefined, prior: number): number {
  if (quality === undefined) return prior;
  return scoreOfParts(
    flagsOf(quality),
    quality.capacityBytesPerSec ?? 0,
    quality.rttMs ?? 0,
    quality.acceptanceRate ?? 0,
    prior,
  );
}

/** The `LinkTable` flags of a quality: which parts it has, relayed, refused. */
function flagsOf(q: LinkQuality): number {
  return (
    (q.capacityBytesPerSec !== undefined ? HAS_CAPACITY : 0) |
    (q.rttMs !== undefined ? HAS_RTT : 0) |
    (q.acceptanceRate !== undefined ? HAS_ACCEPTANCE : 0) |
    (q.relayed ? RELAYED : 0) |
    (q.refused ? REFUSED : 0)
  );
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
 * A receiver that refuses a worker's blocks (`LinkQuality.refused`) is never given it: not kept
 * or chosen in 1–3, even when that leaves the worker fewer than k neighbours; in 4 the edge
 * runs the other way instead (the receiver sends to the worker), and a stray component whose
 * every edge to the main one is refused both ways stays apart.
 * With more than `EXHAUSTIVE_NEIGHBOUR_SEARCH_MAX` workers, a worker's candidates (in 1, 3 and
 * 4) are its measured peers and `SAMPLED_CANDIDATES` others drawn at random instead of every
 * worker, and each candidate is weighed once per worker: O(N log N) per call, given
 * `measuredPeers`, which also bounds `quality` to one call per measured pair (it is undefined
 * elsewhere, by its contract). A worker listed twice chooses once.
 */
export function chooseNeighbours(
  workers: readonly string[],
  options: NeighbourOptions,
): Map<string, string[]> {
  return runSteps(chooseNeighboursSteps(workers, options));
}

/**
 * `chooseNeighbours` in slices (steps.ts): each worker counts once in `slice` as its measured
 * links are weighed for the prior and once as it chooses.
 */
export function* chooseNeighboursSteps(
  workers: readonly string[],
  options: NeighbourOptions,
  slice = new Slice(),
): Steps<Map<string, string[]>> {
  const ids = [...new Set(workers)];
  const n = ids.length;
  const indexOf = new Map<string, number>();
  for (let i = 0; i < n; i++) indexOf.set(ids[i]!, i);
  const measuredPeersOf = options.measuredPeers;
  // Each worker's measured links (present, not itself, each once), or without `measuredPeers`
  // every pair whose quality is known.
  const table = new LinkTableBuilder(ids, indexOf);
  const stamp = new Int32Array(n);
  let epoch = 0;
  for (let i = 0; i < n; i++) {
    if (slice.full()) yield;
    table.beginRow(i);
    if (!measuredPeersOf) {
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const q = options.quality(ids[i]!, ids[j]!);
        if (q !== undefined) addQuality(table, j, q);
      }
      continue;
    }
    epoch++;
    for (const b of measuredPeersOf(ids[i]!)) {
      const j = indexOf.get(b);
      if (j === undefined || j === i || stamp[j] === epoch) continue;
      stamp[j] = epoch;
      addQuality(table, j, options.quality(ids[i]!, b));
    }
  }
  return yield* chooseFromTable(
    table.build(),
    options,
    slice,
    undefined,
    measuredPeersOf !== undefined,
  );
}

function addQuality(table: LinkTableBuilder, peer: number, q: LinkQuality | undefined): void {
  if (q === undefined) table.add(peer, 0);
  else {
    table.add(peer, flagsOf(q), q.capacityBytesPerSec, q.rttMs, q.acceptanceRate);
  }
}

/**
 * `chooseNeighbours` on links numbered beforehand (link-table.ts): the caller that has the
 * tick's links at hand (the balancer, neighbour-plan.ts) builds the table without a lookup per
 * pair. Links not in the table score the prior; `options.quality` and `measuredPeers` are not
 * asked. `previousByIndex`, when given, holds each worker's current neighbours by number
 * instead of `options.previous`. In a large job a worker's row is among its candidates unless
 * `rowsAreCandidates` is false (a table of every known pair, built without `measuredPeers`, is
 * for scoring only). Counts each worker once in `slice` as it chooses.
 */
export function* chooseFromTable(
  table: LinkTable,
  options: Omit<NeighbourOptions, 'quality' | 'measuredPeers'>,
  slice = new Slice(),
  previousByIndex?: readonly (readonly string[] | undefined)[],
  rowsAreCandidates = true,
): Steps<Map<string, string[]>> {
  const { ids, indexOf, start, peer: peers, flags } = table;
  const n = ids.length;
  const k = Math.max(0, Math.min(options.k ?? DEFAULT_NEIGHBOURS, n - 1));
  const switchGain = options.switchGain ?? 2;
  const rng = new Rng(options.seed ?? 1);

  // Unmeasured links score the median of the measured ones.
  const measured: number[] = [];
  for (let s = 0; s < peers.length; s++) {
    const f = flags[s]!;
    if (f & HAS_CAPACITY && !(f & REFUSED)) {
      measured.push(scoreOfParts(f, table.capacity[s]!, table.rttMs[s]!, table.acceptance[s]!, 0));
    }
  }
  const prior = measured.length ? nthSmallest(measured, Math.floor(measured.length / 2)) : 1;
  const slotScore = new Float64Array(peers.length);
  for (let s = 0; s < peers.length; s++) {
    slotScore[s] = scoreOfParts(
      flags[s]!,
      table.capacity[s]!,
      table.rttMs[s]!,
      table.acceptance[s]!,
      prior,
    );
  }

  // The links of the worker `score` was last asked about, marked for O(1) lookups.
  const slotOf = new Int32Array(n);
  const slotStamp = new Int32Array(n);
  let marked = -1;
  let markEpoch = 0;
  const score = (i: number, j: number): number => {
    if (marked !== i) {
      marked = i;
      markEpoch++;
      for (let s = start[i]!; s < start[i + 1]!; s++) {
        slotStamp[peers[s]!] = markEpoch;
        slotOf[peers[s]!] = s;
      }
    }
    return slotStamp[j] === markEpoch ? slotScore[slotOf[j]!]! : prior;
  };
  /** Whether j refuses i's blocks; right after `score(i, j)`, which marks i's links. */
  const refused = (_i: number, j: number): boolean =>
    slotStamp[j] === markEpoch && (flags[slotOf[j]!]! & REFUSED) !== 0;

  const exhaustive = n <= EXHAUSTIVE_NEIGHBOUR_SEARCH_MAX;
  const everyone = Array.from({ length: n }, (_, i) => i);
  // Its own generator, so that the choosing order and the jitter do not depend on the sampling.
  const sampler = new Rng(((options.seed ?? 1) * 0x9e3779b1 + (options.round ?? 0)) >>> 0);
  const seen = new Int32Array(n);
  let seenEpoch = 0;
  /** A large job's candidates for `i`: its measured peers and `count` others drawn from `from`. */
  const sampled = (i: number, count: number, from: readonly number[]): number[] => {
    seenEpoch++;
    const candidates: number[] = [];
    if (rowsAreCandidates) {
      for (let s = start[i]!; s < start[i + 1]!; s++) {
        seen[peers[s]!] = seenEpoch;
        candidates.push(peers[s]!);
      }
    }
    for (let draw = 0; draw < count; draw++) {
      const j = from[sampler.int(from.length)]!;
      if (j !== i && seen[j] !== seenEpoch) {
        seen[j] = seenEpoch;
        candidates.push(j);
      }
    }
    return candidates;
  };

  const inDegree = new Int32Array(n);
  const chosenBy: number[][] = [];
  const order = rng.shuffle([...everyone]);
  // A tiny seeded jitter breaks ties so equal links do not all pick the same first worker.
  const jitter = new Float64Array(n);
  for (let i = 0; i < n; i++) jitter[i] = 1 + 1e-6 * rng.next();
  // The weight of each candidate for the worker choosing now (in-degrees change only once it has
  // chosen, so each candidate is weighed once), valid where weighedStamp is that worker's turn.
  const weight = new Float64Array(n);
  const weighedStamp = new Int32Array(n);
  /** Where weighedStamp is the turn: whether that candidate refuses the choosing worker. */
  const refusing = new Int32Array(n);
  const inChosen = new Int32Array(n);
  let turn = 0;
  /** The worker choosing now. */
  let a = -1;
  /** Weighs j for `a` once per turn (its weight, and whether it refuses a's blocks). */
  const weigh = (j: number): void => {
    if (weighedStamp[j] !== turn) {
      weighedStamp[j] = turn;
      weight[j] = (score(a, j) * jitter[j]!) / (1 + inDegree[j]! / k);
      refusing[j] = refused(a, j) ? turn : 0;
    }
  };
  /** Whether j may be a's neighbour: it does not refuse a's blocks (weighs j). */
  const allowed = (j: number): boolean => {
    weigh(j);
    return refusing[j] !== turn;
  };
  /** Heaviest first, among candidates weighed this turn (stable, as `Array.sort`). */
  const byWeight = (list: number[]): number[] => sortByWeight(list, weight);
  for (const next of order) {
    if (slice.full()) yield;
    turn++;
    a = next;
    const kept: number[] = [];
    seenEpoch++;
    for (const b of (previousByIndex ? previousByIndex[a] : options.previous?.get(ids[a]!)) ?? []) {
      const j = indexOf.get(b);
      if (j === undefined || j === a || seen[j] === seenEpoch) continue;
      seen[j] = seenEpoch;
      if (allowed(j)) kept.push(j);
    }
    const chosen = byWeight(kept).slice(0, k);
    for (const j of chosen) inChosen[j] = turn;
    const others: number[] = [];
    for (const j of exhaustive ? everyone : sampled(a, SAMPLED_CANDIDATES, everyone)) {
      if (j !== a && inChosen[j] !== turn && allowed(j)) others.push(j);
    }
    byWeight(others);
    while (chosen.length < k && others.length) chosen.push(others.shift()!);
    // Swap the worst kept neighbour for the best outsider while that clearly pays.
    for (;;) {
      const best = others[0];
      if (best === undefined || chosen.length === 0) break;
      let worstIndex = 0;
      for (let i = 1; i < chosen.length; i++) {
        if (weight[chosen[i]!]! < weight[chosen[worstIndex]!]!) worstIndex = i;
      }
      if (weight[best]! <= switchGain * weight[chosen[worstIndex]!]!) break;
      others.shift();
      others.push(chosen[worstIndex]!);
      byWeight(others);
      chosen[worstIndex] = best;
    }
    for (const j of chosen) inDegree[j] = inDegree[j]! + 1;
    chosenBy[a] = chosen;
  }
  if (k > 0) {
    yield* connectComponents(
      order,
      chosenBy,
      score,
      refused,
      exhaustive ? null : (a, main) => sampled(a, SAMPLED_CANDIDATES, main),
      slice,
    );
  }
  const result = new Map<string, string[]>();
  for (const a of order) {
    if (slice.full()) yield;
    result.set(
      ids[a]!,
      chosenBy[a]!.map((j) => ids[j]!),
    );
  }
  return result;
}

/**
 * Sorts `list` by `weight`, heaviest first, in place, in the order `Array.sort` gives. Insertion
 * sort (stable, as `Array.sort`): a worker's candidates are a few dozen, where it beats
 * `Array.sort` with a comparator (bench:tick).
 */
function sortByWeight(list: number[], weight: Float64Array): number[] {
  // With a NaN weight the order is the one Array.sort gives (its comparisons are not a total
  // order then, and insertion sort would settle differently).
  for (const j of list) {
    if (Number.isNaN(weight[j])) return list.sort((x, y) => weight[y]! - weight[x]!);
  }
  for (let i = 1; i < list.length; i++) {
    const item = list[i]!;
    const w = weight[item]!;
    let j = i - 1;
    while (j >= 0 && weight[list[j]!]! < w) {
      list[j + 1] = list[j]!;
      j--;
    }
    list[j + 1] = item;
  }
  return list;
}

/**
 * The value that would sit at index `nth` of `values` sorted ascending (as a Float64Array sorts:
 * NaN last), found by selection in O(n) on average; reorders `values`.
 */
export function nthSmallest(values: number[], nth: number): number {
  if (values.some(Number.isNaN)) return Float64Array.from(values).sort()[nth]!;
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    // Hoare partition around the middle element.
    const pivot = values[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i] = values[j]!;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (nth <= j) hi = j;
    else if (nth >= i) lo = i;
    else return values[nth]!;
  }
  return values[nth]!;
}

/**
 * Joins every stray component to the largest one through the best link between them: from a
 * stray worker `a` to a main one `b`, or from `b` to `a` where `b` refuses a's blocks, and not at
 * all where both refuse each other's. The links weighed from a stray worker `a` are all of the
 * main component's, or, when `candidates`
 * is given (a large job), those it returns for `a`, so the work stays linear in the workers.
 * Workers are numbers 0 .. order.length − 1; `chosenBy[a]` is a's list, extended in place. Each
 * worker counts in `slice` as its edges are joined, as it is grouped, and as a stray one.
 */
function* connectComponents(
  order: readonly number[],
  chosenBy: number[][],
  score: (a: number, b: number) => number,
  refused: (a: number, b: number) => boolean,
  candidates: ((a: number, main: readonly number[]) => readonly number[]) | null,
  slice: Slice,
): Steps<void> {
  const n = order.length;
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => {
    let root = x;
    while (parent[root] !== root) root = parent[root]!;
    // Full path compression keeps later finds short, whatever the union order.
    for (let node = x; node !== root;) {
      const next = parent[node]!;
      parent[node] = root;
      node = next;
    }
    return root;
  };
  for (const a of order) {
    if (slice.full()) yield;
    for (const b of chosenBy[a]!) parent[find(a)] = find(b);
  }
  // Components in the order of their first worker, each in worker order.
  const groupOfRoot = new Map<number, number[]>();
  for (let w = 0; w < n; w++) {
    if (slice.full()) yield;
    const root = find(w);
    const g = groupOfRoot.get(root);
    if (g) g.push(w);
    else groupOfRoot.set(root, [w]);
  }
  if (groupOfRoot.size < 2) return;
  const [main, ...rest] = [...groupOfRoot.values()].sort((x, y) => y.length - x.length);
  const inMain = new Uint8Array(n);
  for (const w of main!) inMain[w] = 1;
  for (const group of rest) {
    let best: [number, number] | null = null;
    let bestScore = -Infinity;
    for (const a of group) {
      if (slice.full()) yield;
      const targets = candidates ? candidates(a, main!).filter((b) => inMain[b] === 1) : main!;
      for (const b of targets) {
        // a sends to b, unless b refuses a's blocks; then b sends to a, unless a refuses b's.
        let s = score(a, b);
        let edge: [number, number] = [a, b];
        if (refused(a, b)) {
          s = score(b, a);
          edge = [b, a];
          if (refused(b, a)) continue;
        }
        if (s > bestScore) {
          bestScore = s;
          best = edge;
        }
      }
    }
    if (best) {
      chosenBy[best[0]]!.push(best[1]);
      main!.push(...group);
      for (const w of group) inMain[w] = 1;
    }
  }
}
