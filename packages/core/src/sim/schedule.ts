/**
 * Piecewise-constant functions of simulated time: link capacities that drop and recover,
 * compute speeds that change. A value holds from its change time until the next change.
 */

/** One change of a schedule: from `atS` on, the value is `value`. */
export interface ScheduleChange {
  readonly atS: number;
  readonly value: number;
}

/** A piecewise-constant, non-negative function of time (bytes/s, samples/s, …). */
export class Schedule {
  /** Change times, ascending; `times[0]` is −Infinity (the initial value). */
  private readonly times: number[];
  private readonly values: number[];

  /**
   * @param initial the value before the first change (≥ 0).
   * @param changes later values; sorted here, a later entry at the same time wins.
   */
  constructor(initial: number, changes: readonly ScheduleChange[] = []) {
    checkValue(initial);
    const sorted = changes.map((c, i) => ({ ...c, i })).sort((a, b) => a.atS - b.atS || a.i - b.i);
    this.times = [-Infinity];
    this.values = [initial];
    for (const c of sorted) {
      checkValue(c.value);
      if (!Number.isFinite(c.atS)) throw new RangeError(`change time must be finite, got ${c.atS}`);
      if (c.atS === this.times[this.times.length - 1])
        this.values[this.values.length - 1] = c.value;
      else {
        this.times.push(c.atS);
        this.values.push(c.value);
      }
    }
  }

  /** A schedule that never changes. */
  static constant(value: number): Schedule {
    return new Schedule(value);
  }

  /**
   * `base` with factors applied over intervals, e.g. a 10× drop from 20 s to 40 s is
   * `{ fromS: 20, toS: 40, factor: 0.1 }`. Intervals must not overlap.
   */
  static withDrops(
    base: number,
    drops: readonly { readonly fromS: number; readonly toS: number; readonly factor: number }[],
  ): Schedule {
    const changes: ScheduleChange[] = [];
    for (const d of drops) {
      if (!(d.toS > d.fromS)) throw new RangeError(`drop must end after it starts (${d.fromS})`);
      changes.push({ atS: d.fromS, value: base * d.factor }, { atS: d.toS, value: base });
    }
    return new Schedule(base, changes);
  }

  /** The value at time `t`. */
  valueAt(t: number): number {
    return this.values[this.indexAt(t)]!;
  }

  /** The first change strictly after `t`, or Infinity. */
  nextChangeAfter(t: number): number {
    const i = this.indexAt(t) + 1;
    return i < this.times.length ? this.times[i]! : Infinity;
  }

  /** Every finite change time, ascending. */
  changeTimes(): number[] {
    return this.times.slice(1);
  }

  /** This schedule with every value multiplied by `factor`. */
  scaled(factor: number): Schedule {
    return new Schedule(
      this.values[0]! * factor,
      this.times.slice(1).map((atS, i) => ({ atS, value: this.values[i + 1]! * factor })),
    );
  }

  /**
   * This schedule with every value from `atS` on multiplied by `factor`: a lasting change such
   * as a link dropping to a tenth.
   */
  withFactorFrom(atS: number, factor: number): Schedule {
    const changes: ScheduleChange[] = [{ atS, value: this.valueAt(atS) * factor }];
    for (let i = 1; i < this.times.length; i++) {
      const t = this.times[i]!;
      if (t < atS) changes.push({ atS: t, value: this.values[i]! });
      else if (t > atS) changes.push({ atS: t, value: this.values[i]! * factor });
    }
    return new Schedule(this.values[0]!, changes);
  }

  private indexAt(t: number): number {
    // Binary search for the last change time ≤ t.
    let lo = 0;
    let hi = this.times.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.times[mid]! <= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

function checkValue(value: number): void {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(`schedule values must be finite and ≥ 0, got ${value}`);
  }
}
