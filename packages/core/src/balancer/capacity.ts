/**
 * Rule 1 of the balancer (DESIGN §3), the send capacity estimate. The worker reports the
 * fraction of the interval its channels had bytes buffered; bytes only leave a non-empty buffer,
 * so goodput / busy fraction is what the link carries when pushed, a sample that needs neither
 * probing nor saturation. Without a busy fraction only a congested interval gives a sample (its
 * goodput), and an estimate that kept up grows by `PROBE_GROWTH`. A drop replaces the estimate:
 * a congested sample under `DROP_FRACTION` of it, confirmed by the next tick's sample (congested
 * or not: the valve may have cleared the queue); one low sample alone is only smoothed in, as
 * single low seconds are common on real links. Other samples move the estimate by
 * `CAPACITY_SMOOTHING`. A low sample without congestion starts no drop: the busy fraction counts
 * any channel, so a queue towards one slow peer makes goodput / busy understate the uplink.
 * A congested worker's sample never raises the estimate: it already sends more than the link
 * takes. Under `trustedBusyFraction` a raising sample counts the busy fraction as that much,
 * since a browser's buffer misses the bytes in SCTP's window and light use looks fast; the
 * sample stays above the goodput, so a too-low estimate still grows.
 * Incidents behind each choice: docs/balancer-history.md.
 */

/** Weight of a new capacity sample that is not a drop (exponential smoothing). */
export const CAPACITY_SMOOTHING = 0.3;
/**
 * Capacity samples under this fraction of the estimate on two ticks in a row, the first while
 * congested, are a drop and replace it; a wanted traffic under this fraction of the current one
 * is applied at once (confirmation.ts). A 10× drop gives samples of 0.1–0.15; a receiver's
 * downlink that other senders fill for a moment gives congested samples of 0.4–0.5 while the
 * uplink is as before; smoothing and confirmation still follow a real halving within a few ticks.
 */
export const DROP_FRACTION = 0.35;
/** Busy fraction below which goodput / busy is too noisy to be a capacity sample. */
export const MIN_BUSY_FOR_SAMPLE = 0.02;
/** `trustedBusyFraction` for browsers' reports. */
export const BROWSER_TRUSTED_BUSY_FRACTION = 0.5;
/** Without busy fractions, the capacity estimate grows by this factor per uncongested tick. */
export const PROBE_GROWTH = 1.1;

export interface CapacityInput {
  /** The estimate so far, bytes/s; null while unknown. */
  readonly previous: number | null;
  /** The estimate before the first low sample of a pending drop; null when none is pending. */
  readonly dropFrom: number | null;
  readonly busyFraction: number | undefined;
  readonly goodput: number;
  readonly congested: boolean;
  readonly trustedBusyFraction: number;
  /** Bytes/s the worker's current settings ask for (the probe's yardstick). */
  readonly askedBytesPerSec: number;
}

export interface CapacityEstimate {
  readonly capacity: number | null;
  /** This tick's capacity sample; null when the interval gave none. */
  readonly sample: number | null;
  /** The estimate was replaced by a confirmed drop this tick. */
  readonly dropped: boolean;
  /** The estimate a low sample this tick was measured against, pending confirmation. */
  readonly dropFrom: number | null;
}

/** This tick's capacity sample, or null (see the module comment). */
function capacitySample(input: CapacityInput): number | null {
  const { previous: capacity, busyFraction: busy, goodput, congested } = input;
  let sample: number | null = null;
  if (busy !== undefined && busy >= MIN_BUSY_FOR_SAMPLE && goodput > 0) {
    sample = goodput / busy;
    // Only a raise is held back: a low busy fraction overstates, it never understates.
    if (busy < input.trustedBusyFraction && (capacity === null || sample > capacity)) {
      sample = Math.max(capacity ?? 0, goodput / input.trustedBusyFraction);
    }
  } else if (busy === undefined && congested) sample = goodput;
  // A congested worker already sends more than its link takes: no evidence of more room.
  if (busy !== undefined && congested && capacity !== null && sample !== null && sample > capacity)
    return null;
  return sample;
}

/** Rule 1: the new estimate from this tick's sample. */
export function estimateCapacity(input: CapacityInput): CapacityEstimate {
  let capacity = input.previous;
  const sample = capacitySample(input);
  let dropped = false;
  let dropFrom: number | null = null;
  if (sample !== null && sample > 0) {
    // A low sample is measured against the estimate before the first of a run of low ones.
    const reference = input.dropFrom ?? capacity;
    const pending = input.dropFrom !== null;
    // The second sample of a run need not be congested: the valve may have cleared the queue.
    const low =
      reference !== null && (input.congested || pending) && sample < DROP_FRACTION * reference;
    if (capacity === null || (low && pending)) {
      dropped = capacity !== null;
      capacity = sample;
    } else {
      capacity += CAPACITY_SMOOTHING * (sample - capacity);
      if (low) dropFrom = reference;
    }
  } else if (capacity !== null && input.busyFraction === undefined) {
    // The link kept up with what the current settings ask: it may carry more, so probe.
    capacity = Math.max(capacity, input.goodput);
    if (input.goodput >= 0.9 * input.askedBytesPerSec) capacity *= PROBE_GROWTH;
  }
  return { capacity, sample, dropped, dropFrom };
}
