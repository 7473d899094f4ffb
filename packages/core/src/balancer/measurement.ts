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

/** Each reporter's links by peer (the first entry where a peer is listed twice). */
export type ReportedLinks = ReadonlyMap<string, ReadonlyMap<string, LinkStats>>;

/** Indexes the reports' links by reporter and peer, once per tick, in slices (steps.ts). */
export function* reportedLinks(
  reports: Iterable<WorkerReport>,
  slice: Slice,
): Steps<ReportedLinks> {
  const index = new Map<string, Map<string, LinkStats>>();
  for (const report of reports) {
    if (slice.full()) yield;
    let row = index.get(report.id);
    if (!row) index.set(report.id, (row = new Map()));
    for (const l of report.links) if (!row.has(l.peer)) row.set(l.peer, l);
  }
  return index;
}

/**
 * The largest fraction of `sender`'s blocks that one of its receivers overwrote unread in the
 * interval, from the receivers' own reports (0 when none says).
 */
export function worstOverwriteFraction(
  sender: string,
  links: readonly LinkReading[],
  reported: ReportedLinks,
  previousLinks: LinkMemories,
): number {
  let worst = 0;
  for (const { stats } of links) {
    const atReceiver = reported.get(stats.peer)?.get(sender);
    if (!atReceiver) continue;
    const before = previousLinks.get(stats.peer)?.get(sender)?.stats;
    const received = counterDelta(atReceiver.blocksReceived, before?.blocksReceived);
    const overwritten = counterDelta(atReceiver.overwritten, before?.overwritten);
    if (received > 0) worst = Math.max(worst, Math.min(1, overwritten / received));
  }
  return worst;
}
