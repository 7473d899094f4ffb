/**
 * Rule 8 of the balancer (DESIGN §3): when wanted settings replace the current ones. A change
 * must point the same way for several ticks (a cut beyond `LOWER_BAND_FACTOR` × `hysteresis`
 * for `CONFIRM_TICKS`, a raise beyond `RAISE_BAND_FACTOR` × `hysteresis` for
 * `RAISE_CONFIRM_TICKS`; an encoding switch counts by precision), except right after a drop, or
 * for a congested worker whose wanted settings switch to a coarser encoding or send less than
 * `DROP_FRACTION` of the current traffic. So one noisy sample moves nothing and a steady link
 * keeps steady settings, while a drop is followed within two ticks; on shared bottlenecks every
 * sender's share moves as the others adapt, and following each move keeps settings wandering.
 */
import type { Encoding } from '../codec/encoding.ts';
import type { WorkerSettings } from '../protocol/events.ts';
import { DROP_FRACTION } from './capacity.ts';
import type { ResolvedBalancerOptions } from './options.ts';
import { sendRateBytesPerSec, type ModelTraffic } from './settings.ts';

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

export interface ConfirmationInput {
  readonly current: WorkerSettings;
  readonly wanted: WorkerSettings;
  readonly model: ModelTraffic;
  readonly batchSize: number;
  /** Smoothed speed, samples/s. */
  readonly speed: number;
  /** Last tick's pressure; undefined for the worker's first plan, which applies at once. */
  readonly previousPressure: number | undefined;
  /** The capacity estimate was replaced by a drop this tick. */
  readonly dropped: boolean;
  readonly congested: boolean;
}

export interface Confirmed {
  readonly settings: WorkerSettings;
  /** Ticks in a row the wanted traffic was beyond the band: +n above, −n below, 0 once applied. */
  readonly pressure: number;
}

/** Rule 8: the settings to run and the pressure to remember. */
export function confirmSettings(input: ConfirmationInput, o: ResolvedBalancerOptions): Confirmed {
  const { current, wanted } = input;
  const rate = (s: WorkerSettings) =>
    sendRateBytesPerSec(s, input.model, input.batchSize, input.speed);
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
  const previous = input.previousPressure ?? 0;
  let pressure = 0;
  if (direction > 0) pressure = Math.max(previous, 0) + 1;
  else if (direction < 0) pressure = Math.min(previous, 0) - 1;
  if (
    input.previousPressure === undefined ||
    pressure >= RAISE_CONFIRM_TICKS ||
    pressure <= -CONFIRM_TICKS ||
    (input.dropped && pressure < 0) ||
    (input.congested &&
      pressure < 0 &&
      (change < DROP_FRACTION - 1 || wanted.encoding !== current.encoding))
  ) {
    return { settings: wanted, pressure: 0 };
  }
  return { settings: current, pressure };
}
