/**
 * Rules 3 to 6 of the balancer (DESIGN §3): the bytes/s a worker may send this tick.
 * 3. `targetUtilisation` × capacity, leaving room for bursts (a message of m blocks lands in the
 *    queue at once) and other traffic, so the queue stays short and blocks arrive fresh. A queue
 *    above target that still grows also takes what drains it within `DRAIN_HORIZON_S`; a
 *    shrinking one is left to the worker's valve, so the settings do not dip and come back.
 * 4. A link with a cap of its own (links.ts) limits the budget to k times that cap, since sends
 *    pick a neighbour at random.
 * 5. Blocks of a congested sender overwritten unread beyond `overwriteTolerance` were wasted:
 *    the budget falls to the goodput times the fraction read. An uncongested sender's
 *    overwrites cost nothing (the newer block supersedes the older and the link had room).
 * 6. More than the whole model per step buys nothing (the ceiling); without a capacity estimate
 *    the budget grows by at most `maxGrowth` per tick from `initialBudgetBytesPerSec`.
 * The two ticks of a drop (capacity.ts) cut neither for the queue nor for overwrites: that
 * queue is the old settings', which the new ones replace.
 */
import { ENCODING_RETURN_MARGIN, initialBudget } from './budget-settings.ts';
import type { ResolvedBalancerOptions } from './options.ts';
import type { BudgetReason } from './report.ts';

/** Time within which a growing queue above the target should drain, seconds. */
export const DRAIN_HORIZON_S = 2;
/** The drain term takes at most this fraction of the budget. */
export const DRAIN_MAX_CUT = 0.5;
/**
 * Growth starts from at least this fraction of `initialBudgetBytesPerSec`, so a budget that
 * reached 0 (nothing measured yet) can grow again.
 */
export const GROWTH_FLOOR_FRACTION = 1 / 16;

export interface BudgetInput {
  /** Last tick's budget; undefined for a worker the balancer has no memory of. */
  readonly previousBudget: number | undefined;
  readonly capacity: number | null;
  /** This tick's capacity sample (capacity.ts); null when there was none. */
  readonly sample: number | null;
  /** This tick is one of the two ticks of a drop. */
  readonly inDrop: boolean;
  readonly congested: boolean;
  readonly goodput: number;
  readonly backlog: number;
  /** The queue the worker may always hold (measurement.ts). */
  readonly burst: number;
  /** Bytes/s the worker put into its queue in the interval. */
  readonly offeredBytesPerSec: number;
  /** Caps of the links to current neighbours (links.ts), bytes/s. */
  readonly linkCaps: readonly number[];
  readonly neighbourCount: number;
  /** Largest fraction of the worker's blocks a receiver overwrote unread. */
  readonly worstOverwrite: number;
  /** Full-model-per-step traffic in float32, bytes/s (budget-settings.ts). */
  readonly ceiling: number;
  readonly samplesPerSec: number;
}

export interface Budget {
  readonly budget: number;
  readonly reason: BudgetReason;
}

/** Rules 3 to 6 in order; the reason names the last rule that set the budget. */
export function planBudget(input: BudgetInput, o: ResolvedBalancerOptions): Budget {
  const { capacity, congested, goodput, backlog, ceiling } = input;
  const previousBudget = input.previousBudget ?? initialBudget(ceiling, o.initialBudgetBytesPerSec);
  const growthBase = Math.max(previousBudget, GROWTH_FLOOR_FRACTION * o.initialBudgetBytesPerSec);
  let budget: number;
  let reason: BudgetReason;
  if (capacity === null) {
    budget = congested
      ? goodput > 0
        ? goodput * o.targetUtilisation
        : previousBudget
      : growthBase * o.maxGrowth;
    reason = congested ? 'congested' : input.previousBudget !== undefined ? 'growth' : 'initial';
  } else {
    budget = o.targetUtilisation * capacity;
    reason = congested ? 'congested' : 'capacity';
    if (budget > growthBase * o.maxGrowth && input.sample === null) {
      budget = growthBase * o.maxGrowth;
      reason = 'growth';
    }
  }
  // Drain a queue that is still growing; a shrinking one drains by itself (and the worker's
  // valve holds back sends meanwhile).
  const queueTarget = Math.max(0.5 * o.maxQueueDelayS * Math.max(goodput, budget), input.burst);
  if (backlog > queueTarget && input.offeredBytesPerSec > goodput && !input.inDrop) {
    budget -= Math.min((backlog - queueTarget) / DRAIN_HORIZON_S, DRAIN_MAX_CUT * budget);
  }
  if (input.linkCaps.length) {
    const linkBudget = o.targetUtilisation * input.neighbourCount * Math.min(...input.linkCaps);
    if (linkBudget < budget) {
      budget = linkBudget;
      reason = 'link-limit';
    }
  }
  const read = 1 - input.worstOverwrite;
  if (
    congested &&
    !input.inDrop &&
    input.worstOverwrite > o.overwriteTolerance &&
    goodput > 0 &&
    goodput * read < budget
  ) {
    budget = goodput * read;
    reason = 'overwrites';
  }
  // The budget may exceed the float32 ceiling by the margin the encoding rule needs to come
  // back to float32; more than that would only let it grow without bound while unused.
  const budgetLimit = ceiling * ENCODING_RETURN_MARGIN * 1.01;
  if (budget >= ceiling) reason = 'ceiling';
  budget = Math.min(budget, budgetLimit);
  if (input.samplesPerSec <= 0) {
    budget = previousBudget;
    reason = 'idle';
  }
  return { budget: Math.max(budget, 0), reason };
}
