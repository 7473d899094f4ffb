/**
 * Rule 4 of the balancer (DESIGN §3), per-link limits, and the link memory that neighbour
 * choice reads. A link whose own queue is long while its worker as a whole is not congested, for
 * `LINK_CAP_CONFIRM_TICKS` ticks in a row, has a bottleneck of its own (the receiver's downlink,
 * a relay): its goodput caps it. Relayed links are capped at `relayCapacityBytesPerSec`: they
 * share the server's pipe.
 */
import { counterDelta, type LinkMemory } from './state.ts';
import type { LinkReading } from './measurement.ts';

/**
 * Ticks in a row a link must queue on its own before its goodput caps it: with sends to random
 * neighbours, two messages now and then land on the same link at once, and on a slow uplink that
 * alone is a queue for a tick (docs/balancer-history.md).
 */
export const LINK_CAP_CONFIRM_TICKS = 2;
/** A link cap is relaxed by this factor per tick once the link stops queueing. */
export const LINK_CAP_RECOVERY = 1.25;
/**
 * Weight of a new acceptance rate in a link's memory (exponential smoothing): one interval's
 * rate comes from a handful of blocks and jumps by ±0.3, which alone would swap neighbours.
 */
export const ACCEPTANCE_SMOOTHING = 0.2;

/**
 * The link's memory after this tick's report: its cap, the ticks it queued on its own, and the
 * smoothed acceptance rate. `allowance` is rule 2's queue allowance at a given rate.
 */
export function nextLinkMemory(
  from: string,
  { stats: l, before }: LinkReading,
  workerCongested: boolean,
  allowance: (rateBytesPerSec: number) => number,
  relayCapacityBytesPerSec: number,
): LinkMemory {
  let cap = before?.cap ?? Infinity;
  const linkCongested =
    counterDelta(l.skippedSends, before?.stats.skippedSends) > 0 ||
    l.backlogBytes > allowance(l.goodputBytesPerSec);
  // A link that carried nothing (not open yet, stalled) gives no cap.
  const queuedTicks =
    linkCongested && !workerCongested && l.goodputBytesPerSec > 0
      ? (before?.queuedTicks ?? 0) + 1
      : 0;
  if (queuedTicks >= LINK_CAP_CONFIRM_TICKS) {
    cap = Math.min(cap, l.goodputBytesPerSec);
  } else if (!linkCongested && cap !== Infinity && l.goodputBytesPerSec >= 0.5 * cap) {
    cap *= LINK_CAP_RECOVERY;
  }
  if (l.relayed) cap = Math.min(cap, relayCapacityBytesPerSec);
  const acceptance =
    l.acceptanceRate === undefined
      ? before?.acceptance
      : before?.acceptance === undefined
        ? l.acceptanceRate
        : before.acceptance + ACCEPTANCE_SMOOTHING * (l.acceptanceRate - before.acceptance);
  return acceptance !== undefined
    ? { from, stats: l, cap, queuedTicks, acceptance }
    : { from, stats: l, cap, queuedTicks };
}
