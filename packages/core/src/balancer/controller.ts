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
 * The rules, per worker, each tick (constants below name the defaults):
 *
 * 1. Send capacity. The worker reports the fraction of the interval during which it had bytes
 *    buffered on any channel (`sendBusyFraction`). Bytes only leave the buffer while it is
 *    non-empty, so goodput / busy fraction is what the link carries when pushed: a capacity sample
 *    that needs no probing and no saturation. Without the busy fraction, only a congested interval
 *    gives a sample (goodput itself). A drop replaces the estimate: a sample under `DROP_FRACTION`
 *    of it while the worker is congested, confirmed by the next tick's sample under `DROP_FRACTION`
 *    of the same estimate (congested or not: the valve may have held back enough sends to clear the
 *    queue). One low sample alone is smoothed in like any other: SCTP in a browser on a real 2
 *    Mbit/s uplink gives single congested seconds at a fifth of the estimate and less
 *    (balance-netns e2e: taken as a drop at once, one cut the slow volunteer's settings to a third
 *    of their median and the test failed in CI). Other samples move the estimate by
 *    `CAPACITY_SMOOTHING` (samples scatter as receivers' downlinks and relays are shared with other
 *    senders, and one short busy spell can overstate the capacity). A low sample without congestion
 *    starts no drop: the busy fraction counts any channel, so a standing queue towards one slow
 *    peer makes goodput / busy understate what the uplink carries. A busy fraction under the option
 *    `trustedBusyFraction` counts as that fraction (off by default, as in the simulator, whose
 *    measurement is exact): a browser's `bufferedAmount` holds only what SCTP has not yet taken
 *    into its congestion window, so every busy spell ends while its last window of bytes is still
 *    on the wire, and a lightly used link looks far faster than it is (on a 2 Mbit/s uplink,
 *    samples of 600 kB/s from 146 kB/s of goodput). The floor applies to samples that would raise
 *    the estimate; it keeps them low, yet above the goodput, so an estimate that is too low still
 *    grows until the link is used enough to be measured. A congested worker's sample never raises
 *    the estimate: the worker already sends more than the link takes.
 * 2. Congestion. The worker is congested when its safety valve skipped a send, or when its
 *    buffered bytes exceed `maxQueueDelayS` seconds of its goodput (and `QUEUE_BURST_MESSAGES`
 *    messages of m blocks: on a slow link one message alone takes that long). A congested worker
 *    with an unknown busy fraction takes its goodput as the capacity.
 * 3. Budget (bytes/s the worker may send) = `targetUtilisation` × capacity. Utilisation below
 *    one leaves room for bursts (a message of m blocks lands in the queue at once) and for other
 *    traffic, so the queue stays short and blocks arrive fresh. While the queue is above target
 *    and still growing, the budget also gives up what drains it within `DRAIN_HORIZON_S` (at
 *    most `DRAIN_MAX_CUT` of it); a queue that already shrinks is left to the worker's valve
 *    (`localValveBytes`), so the settings do not dip and come back. Nor do the two ticks of a
 *    drop (rule 1) drain: that queue is the old settings', which the new ones replace.
 * 4. Per-link limits. A link whose own queue is long while the worker as a whole is not
 *    congested, for `LINK_CAP_CONFIRM_TICKS` ticks in a row, has a bottleneck of its own (the
 *    receiver's downlink, a relay): its goodput caps it, and since sends pick a neighbour at
 *    random, the worker's budget is at most k times that cap. Relayed links are capped at
 *    `relayCapacityBytesPerSec`: they share the server's pipe.
 * 5. Overwrites. When a congested sender's blocks are overwritten unread at a receiver beyond
 *    `overwriteTolerance`, part of what queued was wasted: its budget drops to its goodput times
 *    the fraction that was read. An uncongested sender's overwrites cost nothing (the newer block
 *    supersedes the older, and the link had room), so they do not slow it down; nor do those
 *    in the two ticks of a drop, which were queued under the old settings. (Both cuts at a drop
 *    made the settings fall below the new capacity and come back up seconds later.)
 * 6. Ceiling. More than the whole model per step buys nothing, so the traffic stops at one
 *    full model per minibatch. Without a capacity estimate yet, the budget grows by at most
 *    `maxGrowth` per tick from `initialBudgetBytesPerSec`.
 * 7. Encoding. The most precise encoding in `encodings` is used while it reaches the ceiling;
 *    below it, float16 halves the bytes at a relative error of 2⁻¹¹, far under the noise of an
 *    SGD step, so it is the better trade. int8 (error up to max|w| / 254 per value) only when
 *    even float16 reaches less than `int8BelowFraction` of the ceiling. Switching back to a
 *    more precise encoding needs `ENCODING_RETURN_MARGIN` times the threshold, and leaving the
 *    current one for a coarser one a reach under the threshold / `ENCODING_LEAVE_MARGIN`, so a
 *    budget on the boundary does not flip the encoding.
 * 8. Settings. The budget becomes a block rate per sample (at the smoothed speed), then (b, m)
 *    with b a whole number of batches (see `periodAndBlocks`). New settings are applied when
 *    they have pointed the same way for `CONFIRM_TICKS` ticks (a traffic cut beyond
 *    `LOWER_BAND_FACTOR` × `hysteresis`, or an encoding switch, counted by precision), or at
 *    once after a drop (rule 1), or when the worker is congested and they switch to a coarser
 *    encoding or send less than `DROP_FRACTION` of the current traffic (a smaller congested cut
 *    waits for confirmation like any other: the worker's valve holds the queue meanwhile).
 *    Raises need `RAISE_BAND_FACTOR` × `hysteresis` and `RAISE_CONFIRM_TICKS`. So one noisy
 *    sample moves nothing, a steady link keeps steady settings, a drop is followed within two
 *    ticks and the settings are then held: on shared bottlenecks every sender's share moves as
 *    the others adapt, and following each move kept the settings wandering for 10 s and more
 *    after a 10× drop (bench:balance).
 * 9. Neighbours. `chooseNeighbours` with the links' measured capacity, RTT, relay flag and
 *    acceptance rate; it keeps current neighbours unless a candidate is clearly better. The
 *    acceptance rate is smoothed per link (`ACCEPTANCE_SMOOTHING`) and the workers choose in
 *    the same order every tick: with the raw rate of one interval and a new order each tick, a
 *    quarter of the workers changed neighbours every tick on steady links (bench:balance).
 *
 * Zero is no measurement: a worker that reports no speed yet (paused, loading) keeps its
 * settings and is planned from its first report with a speed; a goodput of 0 (no open link, a
 * stalled interval) is neither a capacity sample nor a link cap; and growth starts from at
 * least `GROWTH_FLOOR_FRACTION` of the initial budget. A stale report (`fresh: false`, the
 * server has no new one since the last tick) changes nothing: counters have not moved, and
 * treating it as a new interval would repeat its last step (a raise each tick).
 */
import type { Encoding } from '../codec/encoding.ts';
import type { WorkerSettings } from '../protocol/events.ts';
import type { LinkStats } from '../protocol/schemas.ts';
import { chooseNeighbours, DEFAULT_NEIGHBOURS, type LinkQuality } from './neighbours.ts';
import {
  messageBytes,
  periodAndBlocks,
  sendRateBytesPerSec,
  type ModelTraffic,
} from './settings.ts';

/** Time within which a growing queue above the target should drain, seconds. */
export const DRAIN_HORIZON_S = 2;
/** Messages of m blocks a queue may hold before it counts as long, whatever their bytes. */
export const QUEUE_BURST_MESSAGES = 2;
/** The drain term takes at most this fraction of the budget. */
export const DRAIN_MAX_CUT = 0.5;
/** Weight of a new capacity sample that is not a drop (exponential smoothing). */
export const CAPACITY_SMOOTHING = 0.3;
/**
 * Capacity samples under this fraction of the estimate on two ticks in a row, the first while
 * congested, are a drop and replace it (rule 1); a wanted traffic under this fraction of the
 * current one is applied at once (rule 8). A 10× drop gives samples of 0.1–0.15; a receiver's
 * downlink that other senders fill for a moment gives congested samples of 0.4–0.5 of the
 * estimate while the uplink is as before (bench:balance: at 0.5, such a sample cut a sender to a
 * third 6 s after a drop and the raise back came 6 s later). Smoothing and confirmation (rule 8)
 * still follow a real halving within a few ticks, and the valve holds the queue meanwhile.
 */
export const DROP_FRACTION = 0.35;
/**
 * Weight of a new acceptance rate in a link's memory (exponential smoothing): one interval's
 * rate comes from a handful of blocks and jumps by ±0.3, which alone would swap neighbours.
 */
export const ACCEPTANCE_SMOOTHING = 0.2;
/** Weight of a new speed measurement (exponential smoothing). */
export const SPEED_SMOOTHING = 0.5;
/** Ticks in a row a lower wanted traffic must lie beyond the hysteresis band to be applied. */
export const CONFIRM_TICKS = 2;
/**
 * Lowering traffic without a drop needs a band this many times the hysteresis: samples on
 * shared bottlenecks (receivers' downlinks, relays) scatter by ±20–30%, and moving with them
 * keeps the settings wandering long after a bandwidth change.
 */
export const LOWER_BAND_FACTOR = 1.5;
/**
 * Raising traffic needs a band this many times wider and RAISE_CONFIRM_TICKS ticks: when a
 * shared bottleneck (a receiver's downlink, a relay) frees up, every sender sees it at once, and
 * quick raises would make them overshoot together and back off together.
 */
export const RAISE_BAND_FACTOR = 1.75;
export const RAISE_CONFIRM_TICKS = 6;
/**
 * Budget relative to the threshold needed to go back to a more precise encoding: capacity
 * samples scatter by ±20% on shared links, and each switch changes the bytes per block 2×.
 */
export const ENCODING_RETURN_MARGIN = 2;
/**
 * Reach relative to the threshold under which the current encoding is left for a coarser one:
 * an estimate drifting around the threshold would otherwise flip the encoding (and halve the
 * bytes per block) on noise.
 */
export const ENCODING_LEAVE_MARGIN = 1.5;
/** Interval assumed for the first tick, seconds (the server's stats period). */
export const DEFAULT_INTERVAL_S = 1;
/** Busy fraction below which goodput / busy is too noisy to be a capacity sample. */
export const MIN_BUSY_FOR_SAMPLE = 0.02;
/** `trustedBusyFraction` for browsers' reports (rule 1). */
export const BROWSER_TRUSTED_BUSY_FRACTION = 0.5;
/** Without busy fractions, the capacity estimate grows by this factor per uncongested tick. */
export const PROBE_GROWTH = 1.1;
/**
 * Ticks in a row a link must queue on its own before its goodput caps it (rule 4): with sends to
 * random neighbours, two messages now and then land on the same link at once, and on a slow
 * uplink that alone is a queue for a tick (balance-netns e2e: a one-tick cap cut the slow
 * volunteer to 40% for 10 s).
 */
export const LINK_CAP_CONFIRM_TICKS = 2;
/** A link cap is relaxed by this factor per tick once the link stops queueing. */
export const LINK_CAP_RECOVERY = 1.25;
/**
 * Growth starts from at least this fraction of `initialBudgetBytesPerSec`, so a budget that
 * reached 0 (nothing measured yet) can grow again.
 */
export const GROWTH_FLOOR_FRACTION = 1 / 16;

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
   * estimate (rule 1); default 0 (the busy fraction is exact, as in the simulator). For
   * browsers, whose `bufferedAmount` misses the bytes in SCTP's window, the server sets
   * `BROWSER_TRUSTED_BUSY_FRACTION`.
   */
  readonly trustedBusyFraction?: number;
}

type Required_ = { readonly [K in keyof BalancerOptions]-?: NonNullable<BalancerOptions[K]> };

/** The defaults of `BalancerOptions`. */
export const DEFAULT_BALANCER_OPTIONS: Required_ = {
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

interface WorkerMemory {
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
   * drop waits for the next tick's sample to confirm it (rule 1); null otherwise.
   */
  readonly dropFrom: number | null;
}

interface LinkMemory {
  /** The reporter's cumulative counters for this peer at the last tick. */
  readonly stats: LinkStats;
  /** Cap of the reporter → peer direction, bytes/s (Infinity when unknown). */
  readonly cap: number;
  /** Smoothed acceptance rate the reporter gives the peer's blocks (undefined: none yet). */
  readonly acceptance?: number;
  /** Ticks in a row this link queued on its own (rule 4). */
  readonly queuedTicks: number;
}

/** Everything the balancer remembers between ticks. Plain data; treat as immutable. */
export interface BalancerState {
  readonly nowS: number | null;
  readonly workers: ReadonlyMap<string, WorkerMemory>;
  /** Keyed `reporter→peer`. */
  readonly links: ReadonlyMap<string, LinkMemory>;
  readonly neighbours: ReadonlyMap<string, readonly string[]>;
  readonly tick: number;
}

export function emptyBalancerState(): BalancerState {
  return { nowS: null, workers: new Map(), links: new Map(), neighbours: new Map(), tick: 0 };
}

const linkKey = (from: string, to: string) => `${from}\u2192${to}`;

/** Increase of a cumulative counter; a counter that went down restarted from zero. */
function delta(now: number, before: number | undefined): number {
  if (before === undefined) return now;
  return now >= before ? now - before : now;
}

/** Full-model-per-step traffic of a worker in float32, bytes/s (rule 6). */
export function ceilingBytesPerSec(
  model: ModelTraffic,
  batchSize: number,
  samplesPerSec: number,
): number {
  return (model.blockCount * messageBytes(model, 'f32') * samplesPerSec) / batchSize;
}

/**
 * Settings for a budget (rules 7 and 8 without the hysteresis on traffic): the encoding for the
 * budget given the current one, then (b, m), keeping the current m when it fits as well.
 */
export function settingsForBudget(
  budgetBytesPerSec: number,
  model: ModelTraffic,
  batchSize: number,
  samplesPerSec: number,
  current: Encoding | WorkerSettings | null,
  options: BalancerOptions = {},
): WorkerSettings {
  const currentEncoding =
    typeof current === 'string' || current === null ? current : current.encoding;
  const currentBlocks =
    typeof current === 'object' && current !== null ? current.blocksPerMessage : undefined;
  const o = { ...DEFAULT_BALANCER_OPTIONS, ...options };
  const ceiling = ceilingBytesPerSec(model, batchSize, samplesPerSec);
  // Fraction of the full-model-per-step traffic each encoding reaches with this budget.
  const reach = (e: Encoding) =>
    ceiling > 0
      ? (budgetBytesPerSec / messageBytes(model, e)) * (messageBytes(model, 'f32') / ceiling)
      : 1;
  const threshold = (e: Encoding, i: number): number =>
    // To leave encoding i for a less precise one, encoding i must fall short of this reach.
    e === 'f16' && i + 1 < o.encodings.length && o.encodings[i + 1] === 'int8'
      ? o.int8BelowFraction
      : 1;
  let encoding = o.encodings[0] ?? 'f32';
  for (let i = 0; i + 1 < o.encodings.length; i++) {
    const e = o.encodings[i]!;
    const needed =
      currentEncoding !== null && o.encodings.indexOf(currentEncoding) > i
        ? threshold(e, i) * ENCODING_RETURN_MARGIN // currently coarser: come back with margin
        : currentEncoding === e
          ? threshold(e, i) / ENCODING_LEAVE_MARGIN // currently this one: leave with margin
          : threshold(e, i);
    if (reach(e) >= needed) break;
    encoding = o.encodings[i + 1]!;
  }
  const blocksPerSecond = budgetBytesPerSec / messageBytes(model, encoding);
  const blocksPerStep = samplesPerSec > 0 ? (blocksPerSecond * batchSize) / samplesPerSec : 0;
  const { communicationPeriod, blocksPerMessage } = periodAndBlocks(
    blocksPerStep,
    batchSize,
    model.blockCount,
    o.maxPeriodBatches,
    encoding === currentEncoding ? currentBlocks : undefined,
  );
  return { communicationPeriod, blocksPerMessage, encoding };
}

/** Settings for a worker the balancer has not heard from: the initial budget (rule 6). */
export function initialSettings(
  model: ModelTraffic,
  batchSize: number,
  samplesPerSec: number,
  options: BalancerOptions = {},
): WorkerSettings {
  const o = { ...DEFAULT_BALANCER_OPTIONS, ...options };
  const ceiling = ceilingBytesPerSec(model, batchSize, samplesPerSec);
  // A ceiling at zero speed says nothing about the link.
  const budget =
    ceiling > 0 ? Math.min(o.initialBudgetBytesPerSec, ceiling) : o.initialBudgetBytesPerSec;
  return settingsForBudget(budget, model, batchSize, samplesPerSec, null, options);
}

/**
 * One balancer tick: new state and a plan for every reporting worker. Workers that did not
 * report are forgotten (they left). See the module comment for the rules.
 */
export function balance(
  state: BalancerState,
  input: BalancerInput,
  options: BalancerOptions = {},
): { state: BalancerState; plans: Map<string, WorkerPlan> } {
  const o = { ...DEFAULT_BALANCER_OPTIONS, ...options };
  const intervalS =
    state.nowS !== null && input.nowS > state.nowS ? input.nowS - state.nowS : DEFAULT_INTERVAL_S;
  const reports = new Map(input.workers.map((w) => [w.id, w]));
  const currentNeighbours = (id: string): readonly string[] =>
    reports.get(id)?.neighbours ?? state.neighbours.get(id) ?? [];
  const links = new Map<string, LinkMemory>();
  const workers = new Map<string, WorkerMemory>();
  const plans = new Map<string, WorkerPlan>();

  // Receiver-side view of each sender: blocks received and overwritten at the peer, per interval.
  const overwriteFraction = (from: string, to: string): number | undefined => {
    const atReceiver = reports.get(to)?.links.find((l) => l.peer === from);
    if (!atReceiver) return undefined;
    const before = state.links.get(linkKey(to, from))?.stats;
    const received = delta(atReceiver.blocksReceived, before?.blocksReceived);
    const overwritten = delta(atReceiver.overwritten, before?.overwritten);
    return received > 0 ? Math.min(1, overwritten / received) : undefined;
  };

  for (const report of input.workers) {
    const memory = state.workers.get(report.id);
    const atS = report.atS ?? input.nowS;
    if (memory && report.fresh === false) {
      // Stale: the same counters again. Keep everything, including the link memories, so the
      // next fresh report's deltas span its whole interval.
      for (const l of report.links) {
        const key = linkKey(report.id, l.peer);
        const before = state.links.get(key);
        if (before) links.set(key, before);
      }
      workers.set(report.id, memory);
      plans.set(report.id, {
        settings: memory.settings,
        neighbours: [],
        budgetBytesPerSec: memory.budget,
        capacityBytesPerSec: memory.capacity,
        reason: memory.reason,
        congested: memory.congested,
      });
      continue;
    }
    const workerIntervalS = memory && atS > memory.atS ? atS - memory.atS : intervalS;
    // Steps land on either side of a tick, so one interval's speed jitters by a batch or so.
    const speed =
      memory && memory.speed > 0 && report.samplesPerSec > 0
        ? memory.speed + SPEED_SMOOTHING * (report.samplesPerSec - memory.speed)
        : report.samplesPerSec;
    const current =
      memory?.settings ??
      report.settings ??
      initialSettings(input.model, report.batchSize, speed, options);
    let goodput = 0;
    let backlog = 0;
    let skipped = 0;
    let sent = 0;
    const linkCaps: number[] = [];
    const perLink: { stats: LinkStats; before: LinkMemory | undefined }[] = [];
    for (const l of report.links) {
      const before = state.links.get(linkKey(report.id, l.peer));
      goodput += l.goodputBytesPerSec;
      backlog += l.backlogBytes;
      skipped += delta(l.skippedSends, before?.stats.skippedSends);
      sent += delta(l.blocksSent, before?.stats.blocksSent);
      perLink.push({ stats: l, before });
    }
    // Rule 2. A message of m blocks sits in the queue while it is transmitted, however short
    // the target delay: on a slow link that alone can be seconds, and is not congestion.
    const burst =
      QUEUE_BURST_MESSAGES *
      Math.min(current.blocksPerMessage, input.model.blockCount) *
      messageBytes(input.model, current.encoding);
    const allowance = (rate: number) => Math.max(o.maxQueueDelayS * rate, burst);
    const congested = skipped > 0 || backlog > allowance(goodput);

    // Rule 4 (link memory is kept for every reported link, neighbour or not).
    for (const { stats: l, before } of perLink) {
      let cap = before?.cap ?? Infinity;
      const linkCongested =
        delta(l.skippedSends, before?.stats.skippedSends) > 0 ||
        l.backlogBytes > allowance(l.goodputBytesPerSec);
      // A link that carried nothing (not open yet, stalled) gives no cap.
      const queuedTicks =
        linkCongested && !congested && l.goodputBytesPerSec > 0
          ? (before?.queuedTicks ?? 0) + 1
          : 0;
      if (queuedTicks >= LINK_CAP_CONFIRM_TICKS) {
        cap = Math.min(cap, l.goodputBytesPerSec);
      } else if (!linkCongested && cap !== Infinity && l.goodputBytesPerSec >= 0.5 * cap) {
        cap *= LINK_CAP_RECOVERY;
      }
      if (l.relayed) cap = Math.min(cap, o.relayCapacityBytesPerSec);
      const acceptance =
        l.acceptanceRate === undefined
          ? before?.acceptance
          : before?.acceptance === undefined
            ? l.acceptanceRate
            : before.acceptance + ACCEPTANCE_SMOOTHING * (l.acceptanceRate - before.acceptance);
      links.set(linkKey(report.id, l.peer), {
        stats: l,
        cap,
        queuedTicks,
        ...(acceptance !== undefined ? { acceptance } : {}),
      });
      const isNeighbour = currentNeighbours(report.id).includes(l.peer);
      if (isNeighbour && cap < Infinity) linkCaps.push(cap);
    }

    // Rule 1.
    let capacity = memory?.capacity ?? null;
    let sample: number | null = null;
    const busy = report.sendBusyFraction;
    if (busy !== undefined && busy >= MIN_BUSY_FOR_SAMPLE && goodput > 0) {
      sample = goodput / busy;
      // Only a raise is held back: a low busy fraction overstates, it never understates.
      if (busy < o.trustedBusyFraction && (capacity === null || sample > capacity)) {
        sample = Math.max(capacity ?? 0, goodput / o.trustedBusyFraction);
      }
    } else if (busy === undefined && congested) sample = goodput;
    // A congested worker already sends more than its link takes: no evidence of more room.
    if (
      busy !== undefined &&
      congested &&
      capacity !== null &&
      sample !== null &&
      sample > capacity
    ) {
      sample = null;
    }
    let dropped = false;
    let dropFrom: number | null = null;
    if (sample !== null && sample > 0) {
      // A low sample is measured against the estimate before the first of a run of low ones.
      const reference = memory?.dropFrom ?? capacity;
      const pending = (memory?.dropFrom ?? null) !== null;
      // The second sample of a run need not be congested: the valve may have cleared the queue.
      const low =
        reference !== null && (congested || pending) && sample < DROP_FRACTION * reference;
      if (capacity === null || (low && pending)) {
        dropped = capacity !== null;
        capacity = sample;
      } else {
        capacity += CAPACITY_SMOOTHING * (sample - capacity);
        if (low) dropFrom = reference;
      }
    } else if (capacity !== null && busy === undefined) {
      // The link kept up with what the current settings ask: it may carry more, so probe.
      const asked = sendRateBytesPerSec(
        current,
        input.model,
        report.batchSize,
        report.samplesPerSec,
      );
      capacity = Math.max(capacity, goodput);
      if (goodput >= 0.9 * asked) capacity *= PROBE_GROWTH;
    }

    // Rules 3 to 6.
    const ceiling = ceilingBytesPerSec(input.model, report.batchSize, speed);
    const previousBudget =
      memory?.budget ??
      (ceiling > 0 ? Math.min(o.initialBudgetBytesPerSec, ceiling) : o.initialBudgetBytesPerSec);
    const growthBase = Math.max(previousBudget, GROWTH_FLOOR_FRACTION * o.initialBudgetBytesPerSec);
    let budget: number;
    let reason: BudgetReason;
    if (capacity === null) {
      budget = congested
        ? goodput > 0
          ? goodput * o.targetUtilisation
          : previousBudget
        : growthBase * o.maxGrowth;
      reason = congested ? 'congested' : memory ? 'growth' : 'initial';
    } else {
      budget = o.targetUtilisation * capacity;
      reason = congested ? 'congested' : 'capacity';
      if (budget > growthBase * o.maxGrowth && sample === null) {
        budget = growthBase * o.maxGrowth;
        reason = 'growth';
      }
    }
    // Drain a queue that is still growing; a shrinking one drains by itself (and the worker's
    // valve holds back sends meanwhile), and cutting the budget for it would only make the
    // settings jump down and back up.
    const offered = (sent * messageBytes(input.model, current.encoding)) / workerIntervalS;
    const queueTarget = Math.max(0.5 * o.maxQueueDelayS * Math.max(goodput, budget), burst);
    // The two ticks of a drop (rule 1) cut neither for the queue nor for overwrites.
    const inDrop = dropped || dropFrom !== null;
    if (backlog > queueTarget && offered > goodput && !inDrop) {
      budget -= Math.min((backlog - queueTarget) / DRAIN_HORIZON_S, DRAIN_MAX_CUT * budget);
    }
    const neighbourCount = Math.max(1, currentNeighbours(report.id).length);
    if (linkCaps.length) {
      const linkBudget = o.targetUtilisation * neighbourCount * Math.min(...linkCaps);
      if (linkBudget < budget) {
        budget = linkBudget;
        reason = 'link-limit';
      }
    }
    let worstOverwrite = 0;
    for (const { stats: l } of perLink) {
      worstOverwrite = Math.max(worstOverwrite, overwriteFraction(report.id, l.peer) ?? 0);
    }
    if (
      congested &&
      !inDrop &&
      worstOverwrite > o.overwriteTolerance &&
      goodput > 0 &&
      goodput * (1 - worstOverwrite) < budget
    ) {
      budget = goodput * (1 - worstOverwrite);
      reason = 'overwrites';
    }
    // The budget may exceed the float32 ceiling by the margin the encoding rule needs to come
    // back to float32; more than that would only let it grow without bound while unused.
    const budgetLimit = ceiling * ENCODING_RETURN_MARGIN * 1.01;
    if (budget >= ceiling) reason = 'ceiling';
    budget = Math.min(budget, budgetLimit);
    if (report.samplesPerSec <= 0) {
      budget = previousBudget;
      reason = 'idle';
    }
    budget = Math.max(budget, 0);

    // Rules 7 and 8.
    let settings = current;
    let pressure = 0;
    if (report.samplesPerSec > 0) {
      const wanted = settingsForBudget(
        budget,
        input.model,
        report.batchSize,
        speed,
        current,
        options,
      );
      const rate = (s: WorkerSettings) =>
        sendRateBytesPerSec(s, input.model, report.batchSize, speed);
      const change = rate(wanted) / Math.max(rate(current), Number.MIN_VALUE) - 1;
      // Direction of the wanted change: an encoding switch counts by precision, since fewer
      // bytes per value may come with more traffic in blocks.
      const precision = (e: Encoding) => -o.encodings.indexOf(e);
      const direction =
        wanted.encoding !== current.encoding
          ? Math.sign(precision(wanted.encoding) - precision(current.encoding))
          : change > o.hysteresis * RAISE_BAND_FACTOR
            ? 1
            : change < -o.hysteresis * LOWER_BAND_FACTOR
              ? -1
              : 0;
      const previous = memory?.pressure ?? 0;
      if (direction > 0) pressure = Math.max(previous, 0) + 1;
      else if (direction < 0) pressure = Math.min(previous, 0) - 1;
      if (
        !memory ||
        pressure >= RAISE_CONFIRM_TICKS ||
        pressure <= -CONFIRM_TICKS ||
        (dropped && pressure < 0) ||
        (congested &&
          pressure < 0 &&
          (change < DROP_FRACTION - 1 || wanted.encoding !== current.encoding))
      ) {
        settings = wanted;
        pressure = 0;
      }
    }
    // A worker without a speed yet is planned from its first report with one (rule 8's
    // first plan applies at once); until then it keeps the settings it has.
    if (memory || report.samplesPerSec > 0) {
      workers.set(report.id, {
        settings,
        budget,
        capacity,
        speed,
        pressure,
        atS,
        reason,
        congested,
        dropFrom,
      });
    }
    plans.set(report.id, {
      settings,
      neighbours: [],
      budgetBytesPerSec: budget,
      capacityBytesPerSec: capacity,
      reason,
      congested,
    });
  }

  // Rule 9.
  let neighbours: ReadonlyMap<string, readonly string[]> = new Map();
  if (o.neighbours > 0) {
    const ids = input.workers.map((w) => w.id);
    const quality = (from: string, to: string): LinkQuality | undefined => {
      const memory = links.get(linkKey(from, to)) ?? state.links.get(linkKey(from, to));
      if (!memory) return undefined;
      const acceptance = (links.get(linkKey(to, from)) ?? state.links.get(linkKey(to, from)))
        ?.acceptance;
      const sender = workers.get(from);
      const senderCapacity = sender?.capacity ?? null;
      const share =
        senderCapacity !== null
          ? senderCapacity / Math.max(1, currentNeighbours(from).length)
          : Infinity;
      const capacity = Math.min(memory.cap, share);
      return {
        relayed: memory.stats.relayed,
        ...(memory.stats.rttMs !== undefined ? { rttMs: memory.stats.rttMs } : {}),
        ...(Number.isFinite(capacity) ? { capacityBytesPerSec: capacity } : {}),
        ...(acceptance !== undefined ? { acceptanceRate: acceptance } : {}),
      };
    };
    neighbours = chooseNeighbours(ids, {
      k: o.neighbours,
      quality,
      previous: new Map(ids.map((id) => [id, currentNeighbours(id)])),
      seed: o.seed,
    });
    for (const [id, plan] of plans)
      plans.set(id, { ...plan, neighbours: neighbours.get(id) ?? [] });
  }

  return {
    state: { nowS: input.nowS, workers, links, neighbours, tick: state.tick + 1 },
    plans,
  };
}

/** Keeps the balancer's state for a caller that ticks it (the server, the simulator). */
export class Balancer {
  private state: BalancerState = emptyBalancerState();

  constructor(readonly options: BalancerOptions = {}) {}

  /** One tick; returns a plan per reporting worker. */
  update(input: BalancerInput): Map<string, WorkerPlan> {
    const { state, plans } = balance(this.state, input, this.options);
    this.state = state;
    return plans;
  }

  /** The current state (for inspection and tests). */
  snapshot(): BalancerState {
    return this.state;
  }
}
