/**
 * A balancer tick run in slices (DESIGN §3.4): the tick is a generator that yields after every
 * `SLICE_WORKERS` workers of each phase, so a caller on an event loop (the server) can let other
 * work run between slices instead of being blocked for the whole tick; `runSteps` runs one to
 * the end at once (the simulator, tests, `balance`).
 */

/**
 * Workers handled between two yields. A worker's share of one phase costs some 10–40 µs on a
 * quiet core (bench:tick) and several times that on a shared one, where a young-generation GC
 * may land in the same slice: 250 keeps a slice near 10 ms on the first and under the server's
 * 50 ms event-loop budget on a core shared about fourfold (docs/benchmarks.md, "Balancer tick").
 */
export const SLICE_WORKERS = 250;

/** A computation that yields between slices and returns `T`. */
export type Steps<T> = Generator<void, T, void>;

/** Runs `steps` to the end without pausing. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/**
 * Counts the workers a stepped run handles, across its phases, so that a slice is full after
 * `size` of them wherever the phases begin and end.
 */
export class Slice {
  private count = 0;

  constructor(readonly size = SLICE_WORKERS) {}

  /** Call before handling a worker: true when the slice is full (yield, then handle it). */
  full(): boolean {
    if (this.count < this.size) {
      this.count++;
      return false;
    }
    this.count = 1;
    return true;
  }
}
