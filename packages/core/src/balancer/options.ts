/** The balancer's knobs and their defaults (DESIGN §3). */
import type { Encoding } from '../codec/encoding.ts';
import { DEFAULT_NEIGHBOURS } from './neighbours.ts';

export interface BalancerOptions {
  /** Fraction of the estimated send capacity a worker fills; default 0.8. */
  readonly targetUtilisation?: number;
  /** Buffered bytes beyond this many seconds of goodput count as congestion; default 0.5. */
  readonly maxQueueDelayS?: number;
  /** Relative traffic change below which settings stay; default 0.2. */
  readonly hysteresis?: number;
  /** Most the budget grows per tick while the capacity is unknown; default 2. */
  readonly maxGrowth?: number;
  /** Budget of a worker without measurements, bytes/s; default 64 KiB/s. */
  readonly initialBudgetBytesPerSec?: number;
  /** Longest communication period, in batches; default 256. */
  readonly maxPeriodBatches?: number;
  /** Encodings the balancer may use, most precise first; default ['f32', 'f16', 'int8']. */
  readonly encodings?: readonly Encoding[];
  /** int8 only below this fraction of the ceiling at float16; default 0.1. */
  readonly int8BelowFraction?: number;
  /** Assumed ceiling of a relayed link, bytes/s; default 128 KiB/s. */
  readonly relayCapacityBytesPerSec?: number;
  /** Tolerated fraction of a sender's blocks overwritten unread; default 0.25. */
  readonly overwriteTolerance?: number;
  /** Neighbours per worker; default DEFAULT_NEIGHBOURS (4). 0 turns neighbour choice off. */
  readonly neighbours?: number;
  /** Seeds neighbour choice; default 1. */
  readonly seed?: number;
  /**
   * A busy fraction under this counts as this much in a capacity sample that would raise the
   * estimate (capacity.ts); default 0 (the busy fraction is exact, as in the simulator). For
   * browsers, whose `bufferedAmount` misses the bytes in SCTP's window, the server sets
   * `BROWSER_TRUSTED_BUSY_FRACTION`.
   */
  readonly trustedBusyFraction?: number;
}

/** `BalancerOptions` with every default filled in. */
export type ResolvedBalancerOptions = {
  readonly [K in keyof BalancerOptions]-?: NonNullable<BalancerOptions[K]>;
};

/** The defaults of `BalancerOptions`. */
export const DEFAULT_BALANCER_OPTIONS: ResolvedBalancerOptions = {
  targetUtilisation: 0.8,
  maxQueueDelayS: 0.5,
  hysteresis: 0.2,
  maxGrowth: 2,
  initialBudgetBytesPerSec: 64 * 1024,
  maxPeriodBatches: 256,
  encodings: ['f32', 'f16', 'int8'],
  int8BelowFraction: 0.1,
  relayCapacityBytesPerSec: 128 * 1024,
  overwriteTolerance: 0.25,
  neighbours: DEFAULT_NEIGHBOURS,
  seed: 1,
  trustedBusyFraction: 0,
};

/** The options with the defaults under them. */
export function resolveOptions(options: BalancerOptions = {}): ResolvedBalancerOptions {
  return { ...DEFAULT_BALANCER_OPTIONS, ...options };
}
