import type { JobState, SyncRoundMessage, WorkerSettings } from '@meshgrad/core';

/**
 * How a job reaches its workers; the socket layer (volunteer.ts) provides it once, when it
 * attaches to the job (`Job.attach`).
 */
export interface JobOutbox {
  neighbours(workerId: string, neighbours: readonly string[]): void;
  /** New communication settings for a worker connected to this process: the only road there. */
  settings(workerId: string, settings: WorkerSettings): void;
  requestState(workerId: string, requestId: string): void;
  control(workerId: string, state: JobState, learningRate: number): void;
  /** Sync mode: a round's parameters for a worker (jobs/sync-rounds.ts). */
  syncRound?(workerId: string, message: SyncRoundMessage): void;
  /** Tells a banned worker why and closes its connection. */
  ban?(workerId: string, message: string): void;
}

/**
 * The outbox of a job no socket layer attached yet (a job opened by a tool or a test): it has
 * no connected workers, so there is nobody to tell.
 */
export const DETACHED_OUTBOX: JobOutbox = {
  neighbours: () => undefined,
  settings: () => undefined,
  requestState: () => undefined,
  control: () => undefined,
};
