/**
 * Rule 9 of the balancer (DESIGN §3): neighbours from the links' measured capacity, RTT, relay
 * flag and acceptance rate (`chooseNeighbours` keeps current neighbours unless a candidate is
 * clearly better), and never a receiver that refuses the sender's blocks (`refused`, from the
 * receivers' reports, `refusesBlocks`). A link's capacity is at most its sender's capacity
 * shared among its current neighbours. The acceptance rate is the smoothed one of the link memory (links.ts), and the
 * workers choose in the same seeded order every tick, so steady links keep steady neighbours.
 */
import {
  HAS_ACCEPTANCE,
  HAS_CAPACITY,
  HAS_RTT,
  LinkTableBuilder,
  REFUSED,
  RELAYED,
} from './link-table.ts';
import { chooseFromTable } from './neighbours.ts';
import type { LinkMemories, LinkMemory, WorkerMemory } from './state.ts';
import type { Slice, Steps } from './steps.ts';

export interface NeighbourPlanInput {
  /** The reporting workers, in report order. */
  readonly ids: readonly string[];
  /** Link memories after this tick, then those of the last tick for links not reported now. */
  readonly links: LinkMemories;
  readonly previousLinks: LinkMemories;
  /** Worker memories after this tick. */
  readonly workers: ReadonlyMap<string, WorkerMemory>;
  readonly currentNeighbours: (id: string) => readonly string[];
  readonly k: number;
  readonly seed: number;
  /** The tick, which varies the candidates sampled in a large job. */
  readonly round: number;
  /** Whether `to` refuses the blocks of `from` (`BalancerState.refused`). */
  readonly refused?: (from: string, to: string) => boolean;
  /** By sender, the receivers that refuse its blocks: weighed as its measured peers are. */
  readonly refusers?: ReadonlyMap<string, readonly string[]>;
}

/**
 * A receiver's row longer than this is not scanned for the reverse link: a sender that many
 * receivers refuse has them all in its row, and a scan per link to it would be O(N) each.
 */
const MAX_SCANNED_ROW = 256;

/** Rule 9: every reporting worker's neighbours, in slices (steps.ts). */
export function* planNeighbours(
  input: NeighbourPlanInput,
  slice?: Slice,
): Steps<Map<string, string[]>> {
  const { links, previousLinks } = input;
  const ids = [...new Set(input.ids)];
  const n = ids.length;
  const indexOf = new Map<string, number>();
  for (let i = 0; i < n; i++) indexOf.set(ids[i]!, i);
  // First each worker's measured peers, numbered (link-table.ts): the links of its memories,
  // this tick's first, then the last tick's for links not reported now, then the receivers
  // that refuse it. They are the only pairs with a quality, so the choice need not ask every
  // pair. Each slot keeps its link's memory.
  let expected = 0;
  for (const id of ids) {
    expected +=
      (links.get(id)?.size ?? 0) +
      (previousLinks.get(id)?.size ?? 0) +
      (input.refusers?.get(id)?.length ?? 0);
  }
  // At most this many slots: the arrays below are sized for it.
  const builder = new LinkTableBuilder(ids, indexOf, expected);
  // Per slot, what the second pass needs of the link's memory: whether there is one, its cap,
  // and the acceptance rate its reporter gives the peer, if any.
  const hasMemory = new Uint8Array(expected);
  const caps = new Float64Array(hasMemory.length);
  const acceptances = new Float64Array(hasMemory.length);
  const hasAcceptance = new Uint8Array(hasMemory.length);
  const current: (readonly string[])[] = [];
  const stamp = new Int32Array(n);
  let epoch = 0;
  let i = 0;
  const addPeer = (peer: string, memory: LinkMemory | undefined) => {
    const j = indexOf.get(peer);
    if (j === undefined || j === i || stamp[j] === epoch) return;
    stamp[j] = epoch;
    const s = memory
      ? builder.add(
          j,
          (memory.stats.relayed ? RELAYED : 0) | (memory.stats.rttMs !== undefined ? HAS_RTT : 0),
          0,
          memory.stats.rttMs,
        )
      : builder.add(j, 0);
    hasMemory[s] = memory ? 1 : 0;
    caps[s] = memory?.cap ?? 0;
    hasAcceptance[s] = memory?.acceptance !== undefined ? 1 : 0;
    acceptances[s] = memory?.acceptance ?? 0;
  };
  for (i = 0; i < n; i++) {
    if (slice?.full()) yield;
    builder.beginRow(i);
    epoch++;
    const from = ids[i]!;
    current[i] = input.currentNeighbours(from);
    const now = links.get(from);
    if (now) for (const [peer, memory] of now) addPeer(peer, memory);
    // A peer of this tick's links was taken (or passed over) already.
    for (const [peer, memory] of previousLinks.get(from) ?? []) {
      if (!now?.has(peer)) addPeer(peer, memory);
    }
    for (const peer of input.refusers?.get(from) ?? []) addPeer(peer, undefined);
  }
  const table = builder.build();
  const { start, peer: peers, flags } = table;
  // Then each link's capacity, at most its sender's share of its capacity, and its acceptance
  // rate, the one the receiver's memory of the reverse link gives (the receiver's row holds
  // the same kinds of memories).
  for (i = 0; i < n; i++) {
    if (slice?.full()) yield;
    const from = ids[i]!;
    const senderCapacity = input.workers.get(from)?.capacity ?? null;
    const share =
      senderCapacity !== null ? senderCapacity / Math.max(1, current[i]!.length) : Infinity;
    for (let s = start[i]!; s < start[i + 1]!; s++) {
      // The tick's refusals already hold what the receiver's reports of this link say.
      const refused = input.refused?.(from, ids[peers[s]!]!) ? REFUSED : 0;
      if (!hasMemory[s]) {
        flags[s] = refused;
        continue;
      }
      const j = peers[s]!;
      let acceptance: number | undefined;
      if (start[j + 1]! - start[j]! <= MAX_SCANNED_ROW) {
        for (let r = start[j]!; r < start[j + 1]!; r++) {
          if (peers[r] === i) {
            if (hasAcceptance[r] === 1) acceptance = acceptances[r]!;
            break;
          }
        }
      } else {
        // A row this long (a sender many receivers refuse) is looked up, not scanned.
        const to = ids[j]!;
        acceptance = (links.get(to)?.get(from) ?? previousLinks.get(to)?.get(from))?.acceptance;
      }
      const known = acceptance !== undefined;
      const capacity = Math.min(caps[s]!, share);
      flags[s]! |=
        refused | (Number.isFinite(capacity) ? HAS_CAPACITY : 0) | (known ? HAS_ACCEPTANCE : 0);
      table.capacity[s] = capacity;
      table.acceptance[s] = acceptance ?? 0;
    }
  }
  return yield* chooseFromTable(
    table,
    {
      k: input.k,
      seed: input.seed,
      round: input.round,
    },
    slice,
    current,
  );
}
