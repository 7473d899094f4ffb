/**
 * The simulator's virtual clock: a priority queue of events ordered by simulated time, ties
 * broken by insertion order, so a run is a deterministic function of its seeds and never reads
 * the wall clock.
 */

/** What an event does when its time comes; may be async (an ASGD step awaits its backend). */
export type EventAction = () => void | Promise<void>;

interface ScheduledEvent {
  readonly timeS: number;
  readonly order: number;
  readonly action: EventAction;
}

/**
 * A binary min-heap of events keyed by (time, insertion order). `nowS` only moves forward:
 * scheduling in the past throws, because an event that fires "before now" would let effects
 * precede their causes.
 */
export class EventQueue {
  private heap: ScheduledEvent[] = [];
  private inserted = 0;
  private now = 0;

  /** Current simulated time in seconds (the time of the event being run, or the last one). */
  get nowS(): number {
    return this.now;
  }

  /** Events waiting. */
  get size(): number {
    return this.heap.length;
  }

  /** Time of the next event, or Infinity when none waits. */
  peekTimeS(): number {
    return this.heap[0]?.timeS ?? Infinity;
  }

  /** Runs `action` at simulated time `timeS` (≥ now). */
  at(timeS: number, action: EventAction): void {
    if (!(timeS >= this.now) || Number.isNaN(timeS)) {
      throw new RangeError(`cannot schedule at ${timeS} s: the clock is at ${this.now} s`);
    }
    if (timeS === Infinity) return; // never happens; keeping it would only grow the heap
    this.push({ timeS, order: this.inserted++, action });
  }

  /** Runs `action` `delayS` seconds from now. */
  after(delayS: number, action: EventAction): void {
    this.at(this.now + delayS, action);
  }

  /**
   * Runs the next event, advancing the clock to its time; returns false when none is left or
   * the next one is later than `untilS`.
   */
  async runNext(untilS = Infinity): Promise<boolean> {
    const first = this.heap[0];
    if (first === undefined || first.timeS > untilS) return false;
    this.pop();
    this.now = first.timeS;
    await first.action();
    return true;
  }

  /** Runs events in order until none is left, the next is later than `untilS`, or `stop()`. */
  async run(untilS = Infinity, stop: () => boolean = () => false): Promise<void> {
    while (!stop() && (await this.runNext(untilS))) {
      // runNext does the work.
    }
    if (untilS !== Infinity && this.now < untilS && !stop()) this.now = untilS;
  }

  private push(event: ScheduledEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = event;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.timeS < b.timeS || (a.timeS === b.timeS && a.order < b.order);
}
