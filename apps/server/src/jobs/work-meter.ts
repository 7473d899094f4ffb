/**
 * Counts the work a job does on its per-event paths (a join, a leave, a stats report): the
 * workers whose neighbours were recomputed, the steps of searches on the sorted ring, and the
 * entries loops visited. A unit test divides them by the events at two worker counts, so a scan
 * of all workers per event cannot creep back in unnoticed (the server holds 10,000 volunteers:
 * DESIGN §5; docs/benchmarks.md, "Server load").
 */
export class JobWorkMeter {
  /** Workers whose neighbour list was recomputed. */
  renewals = 0;
  /** Steps of binary searches on the ring of sorted worker ids. */
  ringSteps = 0;
  /** Entries visited by loops over workers, ids or credit counters. */
  visits = 0;
}
