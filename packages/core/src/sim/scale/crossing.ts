/**
 * Time to target from a series of evaluations: the first evaluation that meets the target,
 * with the crossing placed by linear interpolation between it and the one before, so the
 * result resolves finer than the evaluation interval.
 */
export class CrossingTracker {
  private lastTimeS = 0;
  private lastValue: number;
  /** Interpolated crossing time, or null while the target is not met. */
  crossingS: number | null = null;
  latest: number;
  /** Every evaluation recorded, in order. */
  readonly curve: { timeS: number; value: number }[] = [];

  constructor(
    initialValue: number,
    private readonly target: number,
    private readonly higherIsBetter: boolean,
  ) {
    this.lastValue = initialValue;
    this.latest = initialValue;
    if (this.meets(initialValue)) this.crossingS = 0;
  }

  private meets(v: number): boolean {
    return this.higherIsBetter ? v >= this.target : v <= this.target;
  }

  /** Records an evaluation; returns true once the target has been met. */
  record(timeS: number, value: number): boolean {
    this.latest = value;
    this.curve.push({ timeS, value });
    if (this.crossingS === null && this.meets(value)) {
      const span = value - this.lastValue;
      const f = span !== 0 && Number.isFinite(span) ? (this.target - this.lastValue) / span : 1;
      this.crossingS = this.lastTimeS + Math.min(1, Math.max(0, f)) * (timeS - this.lastTimeS);
    }
    this.lastTimeS = timeS;
    this.lastValue = value;
    return this.crossingS !== null;
  }
}
