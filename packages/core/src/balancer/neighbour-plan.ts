/**
 * Rule 9 of the balancer (DESIGN §3): neighbours from the links' measured capacity, RTT, relay
 * flag and acceptance rate (`chooseNeighbours` keeps current neighbours unless a candidate is
 * clearly better), and never a receiver that refuses the sender's blocks (`refused`, from the
 * receivers' reports, `refusesBlocks`). A link's capacity is at most its sender's capacity
 * shared among its current neighbours. The acceptance rate is the smoothed one of the link memory (links.ts), and the
 * workers choose in the same seeded order every tick, so steady links keep steady neighbours.
 */
import { chooseNeighboursSteps, type LinkQuality } from './neighbours.ts';
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

/** A link with no memory whose receiver refuses its sender (its old link closed). */
const REFUSED_UNMEASURED: LinkQuality = { relayed: false, refused: true };

/** Rule 9: every reporting worker's neighbours, in slices (steps.ts). */
export function* planNeighbours(
  input: NeighbourPlanInput,
  slice?: Slice,
): Steps<Map<string, string[]>> {
  // The link memories are kept by sender, then receiver: this tick's first, then the last
  // tick's for links not reported now. They are the only pairs `quality` knows, so the choice
  // need not ask every pair.
  const { links, previousLinks } = input;
  const memoryOf = (from: string, to: string): LinkMemory | undefined =>
    links.get(from)?.get(to) ?? previousLinks.get(from)?.get(to);
  // `chooseNeighbours` asks for one sender's links in a row: its share is worked out once.
  let shareFrom: string | null = null;
  let share = Infinity;
  const quality = (from: string, to: string): LinkQuality | undefined => {
    const memory = memoryOf(from, to);
    if (!memory) return input.refused?.(from, to) ? REFUSED_UNMEASURED : undefined;
    if (from !== shareFrom) {
      shareFrom = from;
      const senderCapacity = input.workers.get(from)?.capacity ?? null;
      share =
        senderCapacity !== null
          ? senderCapacity / Math.max(1, input.currentNeighbours(from).length)
          : Infinity;
    }
    const acceptance = memoryOf(to, from)?.acceptance;
    const capacity = Math.min(memory.cap, share);
    const q: { -readonly [K in keyof LinkQuality]: LinkQuality[K] } = {
      relayed: memory.stats.relayed,
    };
    if (memory.stats.rttMs !== undefined) q.rttMs = memory.stats.rttMs;
    if (Number.isFinite(capacity)) q.capacityBytesPerSec = capacity;
    if (acceptance !== undefined) q.acceptanceRate = acceptance;
    // The tick's refusals already hold what the receiver's reports of this link say.
    if (input.refused?.(from, to)) q.refused = true;
    return q;
  };
  const measuredPeers = (from: string): Iterable<string> => {
    const now = links.get(from);
    const before = previousLinks.get(from);
    const refusers = input.refusers?.get(from);
    if (!before && !refusers) return now?.keys() ?? [];
    if (!now && !refusers) return before!.keys();
    // chooseNeighbours takes each peer once, at its first mention: this tick's links first.
    return [...(now?.keys() ?? []), ...(before?.keys() ?? []), ...(refusers ?? [])];
  };
  return yield* chooseNeighboursSteps(
    input.ids,
    {
      k: input.k,
      quality,
      previous: { get: input.currentNeighbours },
      seed: input.seed,
      measuredPeers,
      round: input.round,
    },
    slice,
  );
}
