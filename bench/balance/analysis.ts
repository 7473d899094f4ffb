/** Turning job results into the bench's numbers: settle times, ratios, scaling efficiency. */
import type { TickRecord } from '@meshgrad/core';

/** Settings count as settled while each numeric knob stays within this band. */
export const SETTLE_BAND = 0.2;

/**
 * Seconds after `dropS` until every worker's settings stay within ±SETTLE_BAND of the values
 * they have at that moment (and keep their encoding) for the rest of the run. A worker whose
 * settings still move at the last tick counts as never settled (Infinity).
 */
export function settleTime(ticks: readonly TickRecord[], dropS: number): number {
  const after = ticks.filter((t) => t.timeS > dropS);
  if (after.length === 0) return Infinity;
  const ids = new Set(after.flatMap((t) => t.workers.map((w) => w.id)));
  let worst = 0;
  for (const id of ids) {
    const series = after
      .map((t) => ({ timeS: t.timeS, s: t.workers.find((w) => w.id === id)?.settings }))
      .filter((x): x is { timeS: number; s: NonNullable<typeof x.s> } => x.s !== undefined);
    let settledAt = Infinity;
    // Walk back from the end: the earliest index whose values hold the band to the end.
    for (let i = series.length - 1; i >= 0; i--) {
      const ref = series[i]!.s;
      const holds = series
        .slice(i)
        .every(
          ({ s }) =>
            s.encoding === ref.encoding &&
            Math.abs(s.communicationPeriod - ref.communicationPeriod) <=
              SETTLE_BAND * ref.communicationPeriod &&
            Math.abs(s.blocksPerMessage - ref.blocksPerMessage) <=
              SETTLE_BAND * ref.blocksPerMessage,
        );
      if (holds) settledAt = series[i]!.timeS;
    }
    // A settled point must leave at least a few ticks after it to mean anything.
    if (settledAt > series.at(-1)!.timeS - 3) settledAt = Infinity;
    worst = Math.max(worst, settledAt - dropS);
  }
  return worst;
}

/** Largest ratio a / b over pairs; a null (not reached) numerator counts as its cap. */
export function worstRatio(pairs: readonly { readonly a: number; readonly b: number }[]): number {
  return pairs.reduce((m, p) => Math.max(m, p.a / p.b), 0);
}

/** Rounds for printing and JSON: 3 significant digits. */
export function round3(x: number): number {
  if (!Number.isFinite(x)) return x;
  return Number(x.toPrecision(3));
}
