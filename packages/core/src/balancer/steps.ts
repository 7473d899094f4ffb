/**
 * A balancer tick run in slices (DESIGN §3.4): the tick is a generator that yields after every
 * `SLICE_WORKERS` workers of each phase, so a caller on an event loop (the server) can let other
 * work run between slices instead of being blocked for the whole tick; `runSteps` runs one to
 * the end at once (the simulator, tests, `balance`).
 */

/**
 * Workers handled between two yields. At 10,000 workers a tick costs some 40 µs per worker on a
 * quiet core and several times that on a loaded one; 500 keeps a slice near 20 ms on the first
 * and under the server's 50 ms event-loop budget on a core shared about twofold.
 */
export const SLICE_WORKERS = 500;

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
