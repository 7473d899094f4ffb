/**
 * The links that neighbour choice weighs (rule 9, DESIGN §3), numbered once per tick: workers are
 * 0 .. n − 1, and each worker's measured links sit in flat arrays by slot, worker i's at
 * `start[i]` .. `start[i + 1]`. At 10,000 workers a tick weighs some 80,000 links; kept as
 * string-keyed maps of objects, their lookups (each a walk through another worker's map) and
 * the quality objects built for them were most of the tick (docs/benchmarks.md, "Balancer
 * tick").
 */

/** Which of a slot's optional parts are known, and its flags. */
export const HAS_CAPACITY = 1;
export const HAS_RTT = 2;
export const HAS_ACCEPTANCE = 4;
export const RELAYED = 8;
export const REFUSED = 16;

/** A relayed link scores this fraction of an equal direct one: it shares the server's pipe. */
export const RELAYED_SCORE_FACTOR = 0.1;
/** RTT at which a link's score halves, ms: latency makes every block it carries staler. */
export const RTT_HALF_SCORE_MS = 200;

/**
 * Score of a link from its parts (`flags` says which are known), higher is better: capacity (or
 * `prior` when unknown), divided by 1 + rtt / RTT_HALF_SCORE_MS, times RELAYED_SCORE_FACTOR when
 * relayed, times (0.5 + acceptance rate) when known; 0 when the receiver refuses the link.
 */
export function scoreOfParts(
  flags: number,
  capacity: number,
  rttMs: number,
  acceptance: number,
  prior: number,
): number {
  if (flags & REFUSED) return 0;
  let score = flags & HAS_CAPACITY ? capacity : prior;
  if (flags & HAS_RTT) score /= 1 + rttMs / RTT_HALF_SCORE_MS;
  if (flags & RELAYED) score *= RELAYED_SCORE_FACTOR;
  if (flags & HAS_ACCEPTANCE) score *= 0.5 + acceptance;
  return score;
}

/** The numbered links of one choice; filled by `LinkTableBuilder`. */
export interface LinkTable {
  /** The workers, each once; a worker's number is its index here. */
  readonly ids: readonly string[];
  readonly indexOf: ReadonlyMap<string, number>;
  /** Worker i's slots are start[i] .. start[i + 1]; length n + 1. */
  readonly start: Int32Array;
  /** Per slot: the peer's number, the parts' flags, and the known parts. */
  readonly peer: Int32Array;
  readonly flags: Uint8Array;
  readonly capacity: Float64Array;
  readonly rttMs: Float64Array;
  readonly acceptance: Float64Array;
}

/** Builds a `LinkTable` row by row, in worker order; the arrays grow as slots are added. */
export class LinkTableBuilder {
  private readonly start: Int32Array;
  private peer: Int32Array;
  private flags: Uint8Array;
  private capacity: Float64Array;
  private rttMs: Float64Array;
  private acceptance: Float64Array;
  private size = 0;
  private row = 0;

  /** `expectedSlots`: room to begin with (a good guess saves regrowing). */
  constructor(
    readonly ids: readonly string[],
    readonly indexOf: ReadonlyMap<string, number>,
    expectedSlots = 64,
  ) {
    this.start = new Int32Array(ids.length + 1);
    const room = Math.max(16, expectedSlots);
    this.peer = new Int32Array(room);
    this.flags = new Uint8Array(room);
    this.capacity = new Float64Array(room);
    this.rttMs = new Float64Array(room);
    this.acceptance = new Float64Array(room);
  }

  /** Slots added from now on belong to worker `i`; rows are begun in order 0, 1, … */
  beginRow(i: number): void {
    while (this.row <= i) this.start[this.row++] = this.size;
  }

  /** Adds a slot for the link from the current row's worker to `peer`; returns the slot. */
  add(peer: number, flags: number, capacity = 0, rttMs = 0, acceptance = 0): number {
    if (this.size === this.peer.length) this.grow();
    const s = this.size++;
    this.peer[s] = peer;
    this.flags[s] = flags;
    this.capacity[s] = capacity;
    this.rttMs[s] = rttMs;
    this.acceptance[s] = acceptance;
    return s;
  }

  build(): LinkTable {
    this.beginRow(this.ids.length);
    return {
      ids: this.ids,
      indexOf: this.indexOf,
      start: this.start,
      peer: this.peer.subarray(0, this.size),
      flags: this.flags.subarray(0, this.size),
      capacity: this.capacity.subarray(0, this.size),
      rttMs: this.rttMs.subarray(0, this.size),
      acceptance: this.acceptance.subarray(0, this.size),
    };
  }

  private grow(): void {
    const size = this.peer.length * 2;
    const widen = <T extends Int32Array | Uint8Array | Float64Array>(
      a: T,
      make: new (n: number) => T,
    ) => {
      const b = new make(size);
      b.set(a);
      return b;
    };
    this.peer = widen(this.peer, Int32Array);
    this.flags = widen(this.flags, Uint8Array);
    this.capacity = widen(this.capacity, Float64Array);
    this.rttMs = widen(this.rttMs, Float64Array);
    this.acceptance = widen(this.acceptance, Float64Array);
  }
}
