/** What the balancer is given each tick and what it answers (DESIGN §3). */
import type { WorkerSettings } from '../protocol/events.ts';
import type { LinkStats } from '../protocol/schemas.ts';
import type { ModelTraffic } from './settings.ts';

/** One worker's report, as the server has it from the worker's `stats`. */
export interface WorkerReport {
  readonly id: string;
  /** Measured training speed over the last interval. */
  readonly samplesPerSec: number;
  readonly batchSize: number;
  /**
   * Fraction of the interval during which any of the worker's channels had bytes buffered
   * (`bufferedAmount` > 0). Optional: without it the balancer has to probe for capacity.
   */
  readonly sendBusyFraction?: number;
  /** One entry per peer; counters are cumulative, as workers report them. */
  readonly links: readonly LinkStats[];
  /** The worker's current neighbours; default: the ones the balancer chose last. */
  readonly neighbours?: readonly string[];
  /**
   * Whether this is a new report since the last tick; default true. A stale one (the worker's
   * stats are late) keeps the worker's plan and memory as they are: forgetting it would mean
   * the worker left.
   */
  readonly fresh?: boolean;
  /**
   * When the report arrived, seconds on the clock of `BalancerInput.nowS`: the interval since
   * the worker's previous report is then its own, not the time between ticks. Default `nowS`.
   */
  readonly atS?: number;
  /**
   * The settings the worker runs now, when the caller knows them; used for a worker the
   * balancer has no memory of (instead of `initialSettings`), e.g. after a switch from fixed
   * settings back to automatic.
   */
  readonly settings?: WorkerSettings;
  /**
   * Senders whose blocks this worker refused in earlier reports whose links are closed now
   * (the server keeps them, `WorkerEntry.refusals`), so that a balancer made afresh (a switch
   * of mode, a restart of the job) knows them too. The links of this report decide for the
   * peers they list.
   */
  readonly refuses?: readonly string[];
}

export interface BalancerInput {
  /** Time of the reports, seconds on any monotonic clock. */
  readonly nowS: number;
  readonly model: ModelTraffic;
  readonly workers: readonly WorkerReport[];
}

/** Which rule set a worker's budget this tick. */
export type BudgetReason =
  | 'initial'
  | 'capacity'
  | 'congested'
  | 'link-limit'
  | 'overwrites'
  | 'ceiling'
  | 'growth'
  | 'idle';

/** What the balancer wants one worker to do. */
export interface WorkerPlan {
  readonly settings: WorkerSettings;
  readonly neighbours: readonly string[];
  /** Bytes/s the worker may send. */
  readonly budgetBytesPerSec: number;
  /** Estimated send capacity, bytes/s, or null while unknown. */
  readonly capacityBytesPerSec: number | null;
  readonly reason: BudgetReason;
  readonly congested: boolean;
}
