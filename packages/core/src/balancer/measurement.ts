/**
 * What one worker's report says this tick (DESIGN §3): its counters summed over its links, its
 * smoothed speed, whether it is congested (rule 2) and how much of what it sent its receivers
 * overwrote unread (the measurement behind rule 5).
 */
import type { WorkerSettings } from '../protocol/events.ts';
import type { LinkStats } from '../protocol/schemas.ts';
import type { WorkerReport } from './report.ts';
import { messageBytes, type ModelTraffic } from './settings.ts';
import { counterDelta, type LinkMemories, type LinkMemory } from './state.ts';
import type { Slice, Steps } from './steps.ts';

/** Messages of m blocks a queue may hold before it counts as long, whatever their bytes. */
export const QUEUE_BURST_MESSAGES = 2;
/** Weight of a new speed measurement (exponential smoothing). */
export const SPEED_SMOOTHING = 0.5;

/** One reported link with what the balancer remembered of it. */
export interface LinkReading {
  readonly stats: LinkStats;
  readonly before: LinkMemory | undefined;
}

/** A worker's interval, summed over its links. */
export interface Measurement {
  /** Bytes/s that left the worker's buffers. */
  readonly goodput: number;
  /** Bytes buffered over all channels now. */
  readonly backlog: number;
  /** Sends the worker's valve skipped in the interval. */
  readonly skipped: number;
  /** Blocks sent in the interval. */
  readonly sent: number;
  readonly links: readonly LinkReading[];
  /** Bytes of `QUEUE_BURST_MESSAGES` messages of m blocks at the current settings. */
  readonly burst: number;
  /** Rule 2. */
  readonly congested: boolean;
}

/**
 * Training speed smoothed over intervals: steps land on either side of a tick, so one interval's
 * speed jitters by a batch or so. Zero on either side is no measurement to smooth with.
 */
export function smoothedSpeed(previous: number | undefined, measured: number): number {
  return previous !== undefined && previous > 0 && measured > 0
    ? previous + SPEED_SMOOTHING * (measured - previous)
    : measured;
}

/** Bytes a queue draining at `rateBytesPerSec` may hold before it counts as long (rule 2). */
export function queueAllowance(rateBytesPerSec: number, maxQueueDelayS: number, burst: number) {
  return Math.max(maxQueueDelayS * rateBytesPerSec, burst);
}

/**
 * Sums a worker's link counters and decides rule 2: congested when its valve skipped a send or
 * its queue holds more than `maxQueueDelayS` of its goodput. A message of m blocks sits in the
 * queue while it is transmitted, however short the target delay, so the queue may always hold
 * `QUEUE_BURST_MESSAGES` of them: on a slow link one alone takes seconds and is not congestion.
 */
export function measure(
  links: readonly LinkStats[],
  remembered: (peer: string) => LinkMemory | undefined,
  current: WorkerSettings,
  model: ModelTraffic,
  maxQueueDelayS: number,
): Measurement {
  let goodput = 0;
  let backlog = 0;
  let skipped = 0;
  let sent = 0;
  const readings: LinkReading[] = [];
  for (const l of links) {
    const before = remembered(l.peer);
    goodput += l.goodputBytesPerSec;
    backlog += l.backlogBytes;
    skipped += counterDelta(l.skippedSends, before?.stats.skippedSends);
    sent += counterDelta(l.blocksSent, before?.stats.blocksSent);
    readings.push({ stats: l, before });
  }
  const burst =
    QUEUE_BURST_MESSAGES *
    Math.min(current.blocksPerMessage, model.blockCount) *
    messageBytes(model, current.encoding);
  const congested = skipped > 0 || backlog > queueAllowance(goodput, maxQueueDelayS, burst);
  return { goodput, backlog, skipped, sent, links: readings, burst, congested };
}

/**
 * The tick's reports indexed once (in slices, steps.ts): the reporters numbered in report order
 * (the last report of an id listed twice), and each one's links (the first entry where a peer
 * is listed twice) in flat arrays by slot, reporter i's at `start[i]` .. `start[i + 1]`. What
 * one worker's rules need of another's report, the receiver's view of a link, is then a scan of
 * a few slots instead of a walk through another worker's map (docs/benchmarks.md, "Balancer
 * tick").
 */
export interface ReportedLinks {
  readonly indexOf: ReadonlyMap<string, number>;
  /** Each reporter's report (the one indexed). */
  readonly reports: readonly WorkerReport[];
  readonly start: Int32Array;
  /** Per slot: the link as reported, and its peer's number (-1: the peer did not report). */
  readonly stats: readonly LinkStats[];
  readonly peer: Int32Array;
  /**
   * Per slot: the fraction of the blocks the reporter received from the peer in the interval
   * that it overwrote unread (rule 5), NONE_RECEIVED when it received none.
   */
  readonly overwritten: Float64Array;
}

/** `ReportedLinks.overwritten` of a link that carried nothing in the interval. */
export const NONE_RECEIVED = -1;

/** The slot of reporter i's link to `peer` (by id), or -1 when its report lists none. */
export function reportedSlot(reported: ReportedLinks, i: number, peer: string): number {
  return slotOfPeer(reported.stats, reported.start[i]!, reported.start[i + 1]!, peer);
}

/** The first index in `from` .. `to` of `stats` that lists `peer`, or -1. */
function slotOfPeer(stats: readonly LinkStats[], from: number, to: number, peer: string): number {
  for (let s = from; s < to; s++) if (stats[s]!.peer === peer) return s;
  return -1;
}

/** Indexes the reports' links, once per tick, in slices (steps.ts); `previous`: the state's. */
export function* reportedLinks(
  reports: ReadonlyMap<string, WorkerReport>,
  previous: LinkMemories,
  slice: Slice,
): Steps<ReportedLinks> {
  const indexOf = new Map<string, number>();
  const byIndex: WorkerReport[] = [];
  for (const report of reports.values()) {
    indexOf.set(report.id, byIndex.length);
    byIndex.push(report);
  }
  const n = byIndex.length;
  const start = new Int32Array(n + 1);
  const stats: LinkStats[] = [];
  const peers: number[] = [];
  const overwritten: number[] = [];
  // Where a reporting peer was listed already in row i: stamp i + 1.
  const listed = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (slice.full()) yield;
    const first = (start[i] = stats.length);
    const report = byIndex[i]!;
    const before = previous.get(report.id);
    for (const l of report.links) {
      const j = indexOf.get(l.peer) ?? -1;
      if (j >= 0 ? listed[j] === i + 1 : slotOfPeer(stats, first, stats.length, l.peer) >= 0) {
        continue;
      }
      if (j >= 0) listed[j] = i + 1;
      stats.push(l);
      peers.push(j);
      const was = before?.get(l.peer)?.stats;
      const received = counterDelta(l.blocksReceived, was?.blocksReceived);
      overwritten.push(
        received > 0
          ? Math.min(1, counterDelta(l.overwritten, was?.overwritten) / received)
          : NONE_RECEIVED,
      );
    }
  }
  start[n] = stats.length;
  return {
    indexOf,
    reports: byIndex,
    start,
    stats,
    peer: Int32Array.from(peers),
    overwritten: Float64Array.from(overwritten),
  };
}

/**
 * The largest fraction of `sender`'s blocks that one of its receivers overwrote unread in the
 * interval, from the receivers' own reports (0 when none says).
 */
export function worstOverwriteFraction(
  sender: WorkerReport,
  links: readonly LinkReading[],
  reported: ReportedLinks,
): number {
  const i = reported.indexOf.get(sender.id);
  if (i === undefined) return 0;
  let worst = 0;
  const take = (j: number) => {
    for (let r = reported.start[j]!; r < reported.start[j + 1]!; r++) {
      if (reported.peer[r] === i) {
        const f = reported.overwritten[r]!;
        if (f !== NONE_RECEIVED) worst = Math.max(worst, f);
        return;
      }
    }
  };
  if (reported.reports[i] === sender) {
    // The indexed report: its receivers are numbered already (its duplicate peers add nothing).
    for (let s = reported.start[i]!; s < reported.start[i + 1]!; s++) {
      const j = reported.peer[s]!;
      if (j >= 0) take(j);
    }
  } else {
    for (const { stats } of links) {
      const j = reported.indexOf.get(stats.peer);
      if (j !== undefined) take(j);
    }
  }
  return worst;
}
