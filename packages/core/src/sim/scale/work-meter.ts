/**
 * Counts the simulator's work: events run and the elements every loop of the worker path
 * touches (parameters, inbox entries, peers). A unit test divides one by the other at two
 * worker counts, so a loop over all workers or channels cannot creep back in unnoticed.
 */
export class WorkMeter {
  events = 0;
  /** Parameter elements read or written by gradients, merges, copies and evaluations. */
  elements = 0;
  /** Iterations over peers, inbox entries and neighbours. */
  iterations = 0;
}
