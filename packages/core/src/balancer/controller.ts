/**
 * The bandwidth-aware balancer (DESIGN §3), after Keuper & Pfreundt, "Balancing the
 * Communication Load of Asynchronously Parallelized Machine Learning Algorithms"
 * (arXiv:1510.01155): too much traffic saturates a link, messages queue and are overwritten
 * unread; too little and the workers drift apart. The balancer keeps every worker's sending
 * near a target utilisation of what its link can carry, with a short queue, and follows the
 * link when it changes.
 *
 * It is a pure function of measurements: `balance(state, input)` returns the new state and a
 * plan per worker (settings and neighbours). The server calls it once per second per job with
 * every worker's latest report; `Balancer` wraps the state for it.
 *
 * Each tick, per worker, the rules run in this order (each file says why it is as it is; the
 * incidents behind the numbers are in docs/balancer-history.md):
 *   2. congestion, from the summed link counters ............................ measurement.ts
 *   4. link memories: per-link caps and smoothed acceptance ...................... links.ts
 *   1. the send capacity estimate and drops ................................... capacity.ts
 *   3–6. the budget: target utilisation, draining, link caps, overwrites, ceiling .. budget.ts
 *   7. the encoding and (b, m) for the budget ......................... budget-settings.ts
 *   8. whether the wanted settings replace the current ones ................ confirmation.ts
 * and then, over all workers:
 *   9. neighbours ........................................... neighbour-plan.ts, neighbours.ts
 *
 * Zero is no measurement: a worker that reports no speed yet (paused, loading) keeps its
 * settings and is planned from its first report with a speed; a goodput of 0 (no open link, a
 * stalled interval) is neither a capacity sample nor a link cap; and growth starts from at
 * least `GROWTH_FLOOR_FRACTION` of the initial budget. A stale report (`fresh: false`, the
 * server has no new one since the last tick) changes nothing: counters have not moved, and
 * treating it as a new interval would repeat its last step (a raise each tick).
 */
import type { WorkerSettings } from '../protocol/events.ts';
import { planBudget } from './budget.ts';
import { initialSettings, settingsForBudget, ceilingBytesPerSec } from './budget-settings.ts';
import { estimateCapacity } from './capacity.ts';
import { confirmSettings } from './confirmation.ts';
import { nextLinkMemory } from './links.ts';
import {
  measure,
  queueAllowance,
  reportedLinks,
  reportedSlot,
  smoothedSpeed,
  worstOverwriteFraction,
  type ReportedLinks,
} from './measurement.ts';
import { refusesBlocks } from './neighbours.ts';
import { planNeighbours } from './neighbour-plan.ts';
import { resolveOptions, type BalancerOptions, type ResolvedBalancerOptions } from './options.ts';
import type { BalancerInput, WorkerPlan, WorkerReport } from './report.ts';
import { messageBytes, sendRateBytesPerSec } from './settings.ts';
import { runSteps, Slice, type Steps } from './steps.ts';
import {
  emptyBalancerState,
  type BalancerState,
  type LinkMemory,
  type WorkerMemory,
} from './state.ts';

export { DRAIN_HORIZON_S, DRAIN_MAX_CUT, GROWTH_FLOOR_FRACTION } from './budget.ts';
export {
  ceilingBytesPerSec,
  ENCODING_LEAVE_MARGIN,
  ENCODING_RETURN_MARGIN,
  initialSettings,
  settingsForBudget,
} from './budget-settings.ts';
export {
  BROWSER_TRUSTED_BUSY_FRACTION,
  CAPACITY_SMOOTHING,
  DROP_FRACTION,
  MIN_BUSY_FOR_SAMPLE,
  PROBE_GROWTH,
} from './capacity.ts';
export {
  CONFIRM_TICKS,
  LOWER_BAND_FACTOR,
  RAISE_BAND_FACTOR,
  RAISE_CONFIRM_TICKS,
} from './confirmation.ts';
export { ACCEPTANCE_SMOOTHING, LINK_CAP_CONFIRM_TICKS, LINK_CAP_RECOVERY } from './links.ts';
export { QUEUE_BURST_MESSAGES, SPEED_SMOOTHING } from './measurement.ts';
export { DEFAULT_BALANCER_OPTIONS, type BalancerOptions } from './options.ts';
export type { BalancerInput, BudgetReason, WorkerPlan, WorkerReport } from './report.ts';
export { emptyBalancerState, type BalancerState } from './state.ts';
export { runSteps, Slice, SLICE_WORKERS, type Steps } from './steps.ts';

/** Interval assumed for the first tick, seconds (the server's stats period). */
export const DEFAULT_INTERVAL_S = 1;

/** The plan of a worker's memory and its neighbours. */
function planFromMemory(memory: WorkerMemory, neighbours: readonly string[]): WorkerPlan {
  return {
    settings: memory.settings,
    neighbours,
    budgetBytesPerSec: memory.budget,
    capacityBytesPerSec: memory.capacity,
    reason: memory.reason,
    congested: memory.congested,
  };
}

/** No neighbours chosen (rule 9 off, or a worker it did not place). */
const NO_NEIGHBOURS: readonly string[] = Object.freeze([]);

/** A tick's outcome: the state to keep and a plan per reporting worker. */
export interface BalanceResult {
  readonly state: BalancerState;
  readonly plans: Map<string, WorkerPlan>;
}

/**
 * One balancer tick: new state and a plan for every reporting worker. Workers that did not
 * report are forgotten (they left). See the module comment for the rules.
 */
export function balance(
  state: BalancerState,
  input: BalancerInput,
  options: BalancerOptions = {},
): BalanceResult {
  return runSteps(balanceSteps(state, input, options));
}

/**
 * `balance` in slices (steps.ts): each worker counts in `slice` once per phase (indexing its
 * report, rules 1–8, rule 9's prior and choice, its plan); returns what `balance` returns.
 */
export function* balanceSteps(
  state: BalancerState,
  input: BalancerInput,
  options: BalancerOptions = {},
  slice = new Slice(),
): Steps<BalanceResult> {
  const o = resolveOptions(options);
  const intervalS =
    state.nowS !== null && input.nowS > state.nowS ? input.nowS - state.nowS : DEFAULT_INTERVAL_S;
  const reports = new Map(input.workers.map((w) => [w.id, w]));
  const reported = yield* reportedLinks(reports, state.links, slice);
  const currentNeighbours = (id: string): readonly string[] =>
    reports.get(id)?.neighbours ?? state.neighbours.get(id) ?? NO_NEIGHBOURS;
  const links = new Map<string, Map<string, LinkMemory>>();
  const rowOf = (id: string): Map<string, LinkMemory> => {
    let row = links.get(id);
    if (!row) links.set(id, (row = new Map()));
    return row;
  };
  const workers = new Map<string, WorkerMemory>();
  /** Each report's memory for its plan, in report order (a worker without a speed is not kept). */
  const planned: [string, WorkerMemory][] = [];

  for (const report of input.workers) {
    if (slice.full()) yield;
    const memory = state.workers.get(report.id);
    const before = state.links.get(report.id);
    if (memory && report.fresh === false) {
      // Stale: the same counters again. Keep everything, including the link memories, so the
      // next fresh report's deltas span its whole interval.
      for (const l of report.links) {
        const link = before?.get(l.peer);
        if (link) rowOf(report.id).set(l.peer, link);
      }
      workers.set(report.id, memory);
      planned.push([report.id, memory]);
      continue;
    }
    const next = planWorker(report, memory, before, {
      input,
      reported,
      currentNeighbours,
      intervalS,
      o,
      options,
    });
    const row = links.get(report.id);
    if (row) for (const [peer, link] of next.links) row.set(peer, link);
    else if (next.links.size > 0) links.set(report.id, next.links);
    // A worker without a speed yet is planned from its first report with one (rule 8's
    // first plan applies at once); until then it keeps the settings it has.
    if (memory || report.samplesPerSec > 0) workers.set(report.id, next.memory);
    planned.push([report.id, next.memory]);
  }

  // Rule 9.
  const refused =
    o.neighbours > 0
      ? yield* nextRefusals(state.refused, input.workers, reported, slice)
      : NO_REFUSALS;
  const neighbours =
    o.neighbours > 0
      ? yield* planNeighbours(
          {
            ids: input.workers.map((w) => w.id),
            links,
            previousLinks: state.links,
            workers,
            currentNeighbours,
            k: o.neighbours,
            seed: o.seed,
            round: state.tick,
            // Most ticks have no refusal: then no link's quality asks for one.
            ...(refused.size > 0
              ? {
                  refused: (from: string, to: string) => refused.get(to)?.has(from) ?? false,
                  refusers: yield* refusersBySender(refused, slice),
                }
              : {}),
          },
          slice,
        )
      : new Map<string, string[]>();
  const plans = new Map<string, WorkerPlan>();
  for (const [id, memory] of planned) {
    if (slice.full()) yield;
    plans.set(id, planFromMemory(memory, neighbours.get(id) ?? NO_NEIGHBOURS));
  }
  return {
    state: { nowS: input.nowS, workers, links, neighbours, refused, tick: state.tick + 1 },
    plans,
  };
}

const NO_REFUSALS: ReadonlyMap<string, ReadonlySet<string>> = new Map();
/** The senders one receiver's refusals keep; past it the earliest refused go first. */
export const MAX_REFUSED_PER_RECEIVER = 64;

/**
 * Each reporting receiver's refusals (`BalancerState.refused`), for the senders still in the
 * job (reporting this tick): those kept from before and those the report names (`refuses`),
 * then as the tick's index of its links says for each peer they list: refused
 * (`refusesBlocks`), or no longer (its counters, cumulative, now say it takes the sender's
 * blocks). A receiver that no longer reports has left the job: its refusals go with it. A
 * receiver that refuses no one gets no set.
 */
function* nextRefusals(
  before: ReadonlyMap<string, ReadonlySet<string>>,
  reports: readonly WorkerReport[],
  reported: ReportedLinks,
  slice: Slice,
): Steps<Map<string, ReadonlySet<string>>> {
  const out = new Map<string, ReadonlySet<string>>();
  const { indexOf, start, stats } = reported;
  for (const report of reports) {
    if (slice.full()) yield;
    const i = indexOf.get(report.id)!;
    let next: Set<string> | null = null;
    for (const sender of before.get(report.id) ?? []) {
      const s = reportedSlot(reported, i, sender);
      if (indexOf.has(sender) && (s < 0 || refusesBlocks(stats[s]!))) {
        (next ??= new Set()).add(sender);
      }
    }
    for (const sender of report.refuses ?? []) {
      if (reportedSlot(reported, i, sender) < 0 && indexOf.has(sender)) {
        (next ??= new Set()).add(sender);
      }
    }
    for (let s = start[i]!; s < start[i + 1]!; s++) {
      const l = stats[s]!;
      if (refusesBlocks(l) && indexOf.has(l.peer)) (next ??= new Set()).add(l.peer);
    }
    if (next) out.set(report.id, capRefusals(next));
  }
  return out;
}

/** Past MAX_REFUSED_PER_RECEIVER the earliest refused go first. */
function capRefusals(set: Set<string>): Set<string> {
  for (const sender of set) {
    if (set.size <= MAX_REFUSED_PER_RECEIVER) break;
    set.delete(sender);
  }
  return set;
}

/** The refusals by sender: the receivers that refuse each sender's blocks. */
function* refusersBySender(
  refused: ReadonlyMap<string, ReadonlySet<string>>,
  slice: Slice,
): Steps<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const [receiver, senders] of refused) {
    if (slice.full()) yield;
    for (const sender of senders) {
      const list = out.get(sender);
      if (list) list.push(receiver);
      else out.set(sender, [receiver]);
    }
  }
  return out;
}

/** What every worker's rules see of the tick. */
interface TickContext {
  readonly input: BalancerInput;
  /** The receivers' view of each link, for the overwrite rule. */
  readonly reported: ReportedLinks;
  readonly currentNeighbours: (id: string) => readonly string[];
  /** Seconds since the last tick. */
  readonly intervalS: number;
  readonly o: ResolvedBalancerOptions;
  /** The options as given (the settings rules resolve them themselves). */
  readonly options: BalancerOptions;
}

/** Rules 1 to 8 for one worker with a fresh report: its new memory and link memories by peer. */
function planWorker(
  report: WorkerReport,
  memory: WorkerMemory | undefined,
  before: ReadonlyMap<string, LinkMemory> | undefined,
  tick: TickContext,
): { memory: WorkerMemory; links: Map<string, LinkMemory> } {
  const { input, reported, currentNeighbours, o } = tick;
  const { model } = input;
  const atS = report.atS ?? input.nowS;
  const workerIntervalS = memory && atS > memory.atS ? atS - memory.atS : tick.intervalS;
  const speed = smoothedSpeed(memory?.speed, report.samplesPerSec);
  const current: WorkerSettings =
    memory?.settings ??
    report.settings ??
    initialSettings(model, report.batchSize, speed, tick.options);
  const measured = measure(
    report.links,
    (peer) => before?.get(peer),
    current,
    model,
    o.maxQueueDelayS,
  );
  const { goodput, congested } = measured;

  // Rule 4 (link memory is kept for every reported link, neighbour or not).
  const allowance = (rate: number) => queueAllowance(rate, o.maxQueueDelayS, measured.burst);
  const neighbours = currentNeighbours(report.id);
  const links = new Map<string, LinkMemory>();
  const linkCaps: number[] = [];
  for (const reading of measured.links) {
    const link = nextLinkMemory(
      report.id,
      reading,
      congested,
      allowance,
      o.relayCapacityBytesPerSec,
    );
    links.set(reading.stats.peer, link);
    if (neighbours.includes(reading.stats.peer) && link.cap < Infinity) linkCaps.push(link.cap);
  }

  // Rule 1.
  const estimate = estimateCapacity({
    previous: memory?.capacity ?? null,
    dropFrom: memory?.dropFrom ?? null,
    busyFraction: report.sendBusyFraction,
    goodput,
    congested,
    trustedBusyFraction: o.trustedBusyFraction,
    askedBytesPerSec: sendRateBytesPerSec(current, model, report.batchSize, report.samplesPerSec),
  });

  // Rules 3 to 6.
  const ceiling = ceilingBytesPerSec(model, report.batchSize, speed);
  const { budget, reason } = planBudget(
    {
      previousBudget: memory?.budget,
      capacity: estimate.capacity,
      sample: estimate.sample,
      inDrop: estimate.dropped || estimate.dropFrom !== null,
      congested,
      goodput,
      backlog: measured.backlog,
      burst: measured.burst,
      offeredBytesPerSec: (measured.sent * messageBytes(model, current.encoding)) / workerIntervalS,
      linkCaps,
      neighbourCount: Math.max(1, neighbours.length),
      worstOverwrite: worstOverwriteFraction(report, measured.links, reported),
      ceiling,
      samplesPerSec: report.samplesPerSec,
    },
    o,
  );

  // Rules 7 and 8.
  const { settings, pressure } =
    report.samplesPerSec > 0
      ? confirmSettings(
          {
            current,
            wanted: settingsForBudget(
              budget,
              model,
              report.batchSize,
              speed,
              current,
              tick.options,
            ),
            model,
            batchSize: report.batchSize,
            speed,
            previousPressure: memory?.pressure,
            dropped: estimate.dropped,
            congested,
          },
          o,
        )
      : { settings: current, pressure: 0 };
  return {
    memory: {
      settings,
      budget,
      capacity: estimate.capacity,
      speed,
      pressure,
      atS,
      reason,
      congested,
      dropFrom: estimate.dropFrom,
    },
    links,
  };
}

/** Keeps the balancer's state for a caller that ticks it (the server, the simulator). */
export class Balancer {
  private state: BalancerState = emptyBalancerState();

  constructor(readonly options: BalancerOptions = {}) {}

  /** One tick; returns a plan per reporting worker. */
  update(input: BalancerInput): Map<string, WorkerPlan> {
    return runSteps(this.updateSteps(input));
  }

  /**
   * One tick in slices (steps.ts); the state moves on when the last slice has run. Run one at a
   * time: two interleaved would both start from the same state.
   */
  *updateSteps(input: BalancerInput, slice?: Slice): Steps<Map<string, WorkerPlan>> {
    const { state, plans } = yield* balanceSteps(this.state, input, this.options, slice);
    this.state = state;
    return plans;
  }

  /** The current state (for inspection and tests). */
  snapshot(): BalancerState {
    return this.state;
  }
}
