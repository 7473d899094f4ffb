/**
 * Rules 6 (ceiling) and 7 (encoding) of the balancer (DESIGN §3): a budget in bytes/s becomes
 * an encoding and a (b, m) pair. More than one full model per minibatch buys nothing, so that is
 * the ceiling. The most precise encoding is used while it reaches the ceiling; below it, float16
 * halves the bytes at a relative error of 2⁻¹¹, far under the noise of an SGD step; int8 (error
 * up to max|w| / 254 per value) only when even float16 reaches less than `int8BelowFraction` of
 * the ceiling. Margins on both sides keep a budget on a boundary from flipping the encoding.
 */
import type { Encoding } from '../codec/encoding.ts';
import type { WorkerSettings } from '../protocol/events.ts';
import { resolveOptions, type BalancerOptions } from './options.ts';
import { messageBytes, periodAndBlocks, type ModelTraffic } from './settings.ts';

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
  const o = resolveOptions(options);
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

/** The budget of a worker the balancer has not heard from: the initial one, under the ceiling. */
export function initialBudget(ceiling: number, initialBudgetBytesPerSec: number): number {
  // A ceiling at zero speed says nothing about the link.
  return ceiling > 0 ? Math.min(initialBudgetBytesPerSec, ceiling) : initialBudgetBytesPerSec;
}

/** Settings for a worker the balancer has not heard from: the initial budget (rule 6). */
export function initialSettings(
  model: ModelTraffic,
  batchSize: number,
  samplesPerSec: number,
  options: BalancerOptions = {},
): WorkerSettings {
  const o = resolveOptions(options);
  const ceiling = ceilingBytesPerSec(model, batchSize, samplesPerSec);
  const budget = initialBudget(ceiling, o.initialBudgetBytesPerSec);
  return settingsForBudget(budget, model, batchSize, samplesPerSec, null, options);
}
