/** What the balancer remembers between ticks (DESIGN §3). Plain data; treat as immutable. */
import type { WorkerSettings } from '../protocol/events.ts';
import type { LinkStats } from '../protocol/schemas.ts';
import type { BudgetReason } from './report.ts';

export interface WorkerMemory {
  readonly settings: WorkerSettings;
  readonly budget: number;
  readonly capacity: number | null;
  /** Smoothed training speed, samples/s. */
  readonly speed: number;
  /** Consecutive ticks the wanted traffic was beyond the hysteresis band: +n above, −n below. */
  readonly pressure: number;
  /** Time of the report the memory is from (`WorkerReport.atS`). */
  readonly atS: number;
  readonly reason: BudgetReason;
  readonly congested: boolean;
  /**
   * The capacity estimate before a congested sample under `DROP_FRACTION` of it, while that
   * drop waits for the next tick's sample to confirm it (capacity.ts); null otherwise.
   */
  readonly dropFrom: number | null;
}

export interface LinkMemory {
  /** The worker that reported the link (the sender of this direction). */
  readonly from: string;
  /** The reporter's cumulative counters for this peer at the last tick. */
  readonly stats: LinkStats;
  /** Cap of the reporter → peer direction, bytes/s (Infinity when unknown). */
  readonly cap: number;
  /** Smoothed acceptance rate the reporter gives the peer's blocks (undefined: none yet). */
  readonly acceptance?: number;
  /** Ticks in a row this link queued on its own (links.ts). */
  readonly queuedTicks: number;
}

/**
 * Link memories by reporter (the sender of the direction), then peer: nested rather than keyed
 * by a joined string, so a lookup builds no key (at 10,000 workers a tick has 80,000 links).
 */
export type LinkMemories = ReadonlyMap<string, ReadonlyMap<string, LinkMemory>>;

/** Everything the balancer remembers between ticks. */
export interface BalancerState {
  readonly nowS: number | null;
  readonly workers: ReadonlyMap<string, WorkerMemory>;
  /** By reporter, then peer. */
  readonly links: LinkMemories;
  readonly neighbours: ReadonlyMap<string, readonly string[]>;
  /**
   * By receiver: the senders whose blocks it refuses (`refusesBlocks` of its report of the
   * link), kept while the receiver is in the job, also after the link closed: otherwise the
   * sender would be given it again once the link's memory lapsed, two ticks later.
   */
  readonly refused: ReadonlyMap<string, ReadonlySet<string>>;
  readonly tick: number;
}

export function emptyBalancerState(): BalancerState {
  return {
    nowS: null,
    workers: new Map(),
    links: new Map(),
    neighbours: new Map(),
    refused: new Map(),
    tick: 0,
  };
}

/** Increase of a cumulative counter; a counter that went down restarted from zero. */
export function counterDelta(now: number, before: number | undefined): number {
  if (before === undefined) return now;
  return now >= before ? now - before : now;
}
