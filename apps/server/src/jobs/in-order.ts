/** Runs asynchronous work one piece at a time, in the order it was handed over. */
export class InOrder {
  private last: Promise<void> = Promise.resolve();

  /** Runs `work` once everything handed over before has settled; a failure stops nothing. */
  run<T>(work: () => Promise<T>): Promise<T> {
    const done = this.last.then(work);
    this.last = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }
}
