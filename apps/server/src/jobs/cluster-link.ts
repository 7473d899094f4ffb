/**
 * How a job shares its state with the other server processes of a cluster (DESIGN §5). A
 * process that runs alone has a `LocalClusterLink`, the way socket.io's in-memory adapter
 * stands in for the Redis one: the job asks the same questions either way, and alone the
 * answers are "no other workers, you lead, nothing to share".
 */
import type { JobState } from '@meshgrad/core';
import type { BalancerMode, CheckpointManifest } from '../store.ts';
import type { WorkerEntry } from './roster.ts';

/** A worker of this job connected to another server process. */
export interface RemoteWorker {
  readonly id: string;
  /** The process it is connected to. */
  readonly server: string;
  readonly shard: number;
}

/** What a cluster already knows about a job when a process opens it. */
export interface SharedJobState {
  readonly samples: number;
  readonly control?: { readonly state: JobState; readonly learningRate: number };
  readonly balancer?: BalancerMode;
  readonly checkpoint?: { readonly manifest: CheckpointManifest; readonly params: Float32Array };
  /** The cluster's bans (docs/design.md §8.2): worker ids and identities, oldest first. */
  readonly bans?: { readonly workers: readonly string[]; readonly identities: readonly string[] };
}

/** A ban to share: a worker id, the identity it proved, or both. */
export interface Ban {
  readonly worker?: string;
  readonly identity?: string;
}

export interface ClusterLink {
  /** Whether other processes may run this job too: neighbours then span processes. */
  readonly shared: boolean;
  /** Other processes' workers of this job, as of the last `sync`. */
  readonly remote: ReadonlyMap<string, RemoteWorker>;
  /**
   * Registers this process's workers (alive now) where the registry lacks them, drops dead
   * processes' ones and reloads the rest when they changed; resolves whether the remote set
   * changed. Once a tick, and when another process announced a change. `local` is the live map
   * (workers that join or leave while the sync waits on Redis count as they are when it reads).
   */
  sync(local: ReadonlyMap<string, WorkerEntry>): Promise<boolean>;
  /** Registers one worker that joined here, and tells the others soon: O(1), not O(N). */
  workerJoined(worker: WorkerEntry): void;
  workerLeft(workerId: string): void;
  /** The cumulative sample count a worker was last credited with on any process. */
  credited(workerId: string): Promise<number | null>;
  /** Credits samples job-wide; resolves the job's new total. */
  addSamples(workerId: string, credit: number, cumulative: number): Promise<number>;
  /** The job-wide sample total. */
  samples(): Promise<number>;
  /** Raises the job-wide sample total to at least `samples` (what this process already counted). */
  seedSamples(samples: number): Promise<void>;
  /** Takes or keeps the lead (checkpoints, stop criteria) when `canLead`, else gives it up. */
  lead(canLead: boolean): Promise<boolean>;
  /** Shares a checkpoint the leader stored, so every process serves and resumes from it. */
  checkpointStored(manifest: CheckpointManifest, params: Float32Array): Promise<void>;
  controlChanged(state: JobState, learningRate: number): void;
  balancerChanged(balancer: BalancerMode): void;
  /** Shares bans with every process: each refuses them, and the one holding the worker expels it. */
  banned(...bans: Ban[]): void;
}

/** The link of a process that runs the job alone: it always leads and shares nothing. */
export class LocalClusterLink implements ClusterLink {
  readonly shared = false;
  readonly remote: ReadonlyMap<string, RemoteWorker> = new Map();
  private total = 0;

  sync(): Promise<boolean> {
    return Promise.resolve(false);
  }

  workerJoined(): void {}

  workerLeft(): void {}

  credited(): Promise<number | null> {
    return Promise.resolve(null);
  }

  addSamples(_workerId: string, credit: number): Promise<number> {
    this.total += credit;
    return Promise.resolve(this.total);
  }

  samples(): Promise<number> {
    return Promise.resolve(this.total);
  }

  seedSamples(samples: number): Promise<void> {
    this.total = Math.max(this.total, samples);
    return Promise.resolve();
  }

  lead(): Promise<boolean> {
    return Promise.resolve(true);
  }

  checkpointStored(): Promise<void> {
    return Promise.resolve();
  }

  controlChanged(): void {}

  balancerChanged(): void {}

  banned(): void {}
}
