/**
 * A job's training mode as an object: ASGD (DESIGN §3), where workers exchange blocks with
 * their neighbours and a worker's state becomes the checkpoint, or sync, where the server's
 * round coordinator (sync-rounds.ts) owns the model and nothing flows between workers.
 */
import type { AdminJobSummary } from '@meshgrad/core';
import type { Checkpoints } from './checkpoints.ts';
import type { SyncContributionIn, SyncRefusal, SyncRounds } from './sync-rounds.ts';

type TrainingSummary = NonNullable<AdminJobSummary['training']>;

export interface TrainingMode {
  readonly kind: 'asgd' | 'sync';
  /** Whether workers exchange blocks: neighbours and the automatic balancer apply then. */
  readonly peerToPeer: boolean;
  /** Periodic work (a round's timeout). */
  tick(): void;
  /** A worker became reachable, resumed, or the job's control changed: a round may start. */
  kick(): void;
  /** A worker left or paused: nothing waits for it any more. */
  workerLeft(workerId: string): void;
  /** Asks for the model as a checkpoint; the request id, or null when none can be taken now. */
  checkpoint(): string | null;
  /** A worker's contribution to a sync round; a refusal, or null when counted. */
  contribute(workerId: string, contribution: SyncContributionIn): SyncRefusal | null;
  /** What the admin console shows of the mode. */
  summary(): TrainingSummary;
}

export class AsgdTraining implements TrainingMode {
  readonly kind = 'asgd';
  readonly peerToPeer = true;

  constructor(
    private readonly jobId: string,
    private readonly checkpoints: Checkpoints,
  ) {}

  tick(): void {}
  kick(): void {}
  workerLeft(): void {}

  checkpoint(): string | null {
    return this.checkpoints.requestFromWorker();
  }

  contribute(): SyncRefusal {
    return { code: 'ERR_UNEXPECTED', message: `(payload): job ${this.jobId} is not in sync mode` };
  }

  summary(): TrainingSummary {
    return { mode: 'asgd' };
  }
}

export class SyncTraining implements TrainingMode {
  readonly kind = 'sync';
  readonly peerToPeer = false;
  /** The round a checkpoint last stored, so an idle job stores no duplicates. */
  private roundAtCheckpoint = -1;

  constructor(
    readonly rounds: SyncRounds,
    private readonly checkpoints: Checkpoints,
  ) {}

  tick(): void {
    this.rounds.tick();
  }

  kick(): void {
    this.rounds.kick();
  }

  workerLeft(workerId: string): void {
    this.rounds.leave(workerId);
  }

  /** The server's own parameters are the model: a checkpoint stores them. */
  checkpoint(): string | null {
    if (this.rounds.round === this.roundAtCheckpoint || this.checkpoints.requestPending) {
      return null;
    }
    this.roundAtCheckpoint = this.rounds.round;
    return this.checkpoints.storeServerState(this.rounds.params);
  }

  contribute(workerId: string, contribution: SyncContributionIn): SyncRefusal | null {
    return this.rounds.contribute(workerId, contribution);
  }

  summary(): TrainingSummary {
    return { mode: 'sync', round: this.rounds.round, waitingFor: this.rounds.pending().length };
  }
}
