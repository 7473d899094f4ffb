/**
 * A job's workers on this process: who they are, which shard each trains on, who their
 * neighbours are (DESIGN §4), and the aggregates the rest of the job reads from them.
 */
import type { DeviceInfo, LinkStats, WorkerPlan, WorkerSettings } from '@meshgrad/core';
import type { RemoteWorker } from './cluster-link.ts';
import type { JobOutbox } from './outbox.ts';

/** A worker that has not reported for this long is dropped (ms). */
export const WORKER_STALE_MS = 15_000;

export interface WorkerEntry {
  readonly id: string;
  socketId: string;
  readonly device: DeviceInfo;
  readonly joinedAt: number;
  readonly shard: number;
  neighbours: string[];
  settings: WorkerSettings;
  lastSeen: number;
  samplesPerSec: number;
  loss: number | undefined;
  /** Samples this worker contributed to the job (credited). */
  contributed: number;
  paused: boolean;
  offered: number;
  accepted: number;
  links: LinkStats[];
  /** The last report's `sendBusyFraction`, when the worker measures it. */
  sendBusyFraction: number | undefined;
  /** Whether the worker reported statistics since it joined: the balancer plans only for those. */
  reported: boolean;
  /**
   * Whether the last report is new since the balancer's last tick. Stats share the worker's
   * (possibly saturated) uplink and ticks are not synchronised with them, so a report may be
   * late and the same one seen by several ticks: the balancer must not take it as new again.
   */
  statsFresh: boolean;
  /** When the last report arrived, seconds on `performance.now()`'s clock (the tick's clock). */
  statsAtS: number;
  /** The automatic balancer's latest plan for this worker; null in fixed mode or before it. */
  plan: WorkerBalance | null;
  /** State uploads of this worker the job refused (a regression, a malformed state). */
  refusedUploads: number;
  /** Bytes/s of its last stored upload as the server timed it (request to arrival); null before. */
  uploadBytesPerSec: number | null;
}

/** What the automatic balancer decided for a worker on its latest tick (for the console). */
export interface WorkerBalance {
  readonly reason: WorkerPlan['reason'];
  /** Bytes/s the worker may send. */
  readonly budgetBytesPerSec: number;
  /** Estimated send capacity, bytes/s, or null while unknown. */
  readonly capacityBytesPerSec: number | null;
  readonly congested: boolean;
}

/** The job's training throughput as its workers last reported it: the one place it is summed. */
export interface Throughput {
  readonly samplesPerSec: number;
  /** Mean of the workers' last minibatch losses; undefined when none reported one. */
  readonly trainLoss: number | undefined;
}

export class Roster {
  private readonly entries = new Map<string, WorkerEntry>();

  constructor(
    private readonly shardCount: number,
    /** Neighbours per worker on the ring (the spec's `neighbours`). */
    private readonly neighbourCount: number,
  ) {}

  /** The workers connected to this process, by id. */
  get workers(): ReadonlyMap<string, WorkerEntry> {
    return this.entries;
  }

  get size(): number {
    return this.entries.size;
  }

  get(workerId: string): WorkerEntry | undefined {
    return this.entries.get(workerId);
  }

  has(workerId: string): boolean {
    return this.entries.has(workerId);
  }

  /** Adds a worker on the least-used shard, counting the cluster's other workers too. */
  add(
    id: string,
    socketId: string,
    device: DeviceInfo,
    settings: WorkerSettings,
    remote: Iterable<RemoteWorker>,
  ): WorkerEntry {
    const usage = new Array<number>(this.shardCount).fill(0);
    for (const w of this.entries.values()) usage[w.shard] = (usage[w.shard] ?? 0) + 1;
    for (const w of remote) {
      if (w.id !== id) usage[w.shard] = (usage[w.shard] ?? 0) + 1;
    }
    const shard = usage.indexOf(Math.min(...usage));
    const now = Date.now();
    const entry: WorkerEntry = {
      id,
      socketId,
      device,
      joinedAt: now,
      shard,
      neighbours: [],
      settings,
      lastSeen: now,
      samplesPerSec: 0,
      loss: undefined,
      contributed: 0,
      paused: false,
      offered: 0,
      accepted: 0,
      links: [],
      sendBusyFraction: undefined,
      reported: false,
      statsFresh: false,
      statsAtS: 0,
      plan: null,
      refusedUploads: 0,
      uploadBytesPerSec: null,
    };
    this.entries.set(id, entry);
    return entry;
  }

  remove(workerId: string): boolean {
    return this.entries.delete(workerId);
  }

  /** Marks a worker alive now: any message shows it, even one refused. */
  touch(workerId: string, now = Date.now()): void {
    const w = this.entries.get(workerId);
    if (w) w.lastSeen = now;
  }

  /** Workers silent for longer than `WORKER_STALE_MS` at `now`. */
  stale(now: number): WorkerEntry[] {
    return [...this.entries.values()].filter((w) => now - w.lastSeen > WORKER_STALE_MS);
  }

  /** Workers that take part in training now (not paused). */
  active(): string[] {
    return [...this.entries.values()].filter((w) => !w.paused).map((w) => w.id);
  }

  /** Whether some worker here could answer a state request (contributed, not paused). */
  canAnswerStateRequest(): boolean {
    return [...this.entries.values()].some((w) => !w.paused && w.contributed > 0);
  }

  throughput(): Throughput {
    let samplesPerSec = 0;
    let lossSum = 0;
    let lossN = 0;
    for (const w of this.entries.values()) {
      samplesPerSec += w.samplesPerSec;
      if (w.loss !== undefined) {
        lossSum += w.loss;
        lossN++;
      }
    }
    return { samplesPerSec, trainLoss: lossN > 0 ? lossSum / lossN : undefined };
  }

  /**
   * Renews neighbour lists after a join or leave. Neighbours lie on a ring of the sorted worker
   * ids: each worker sees the next and previous ⌈k/2⌉, so the graph is symmetric and connected,
   * and a join or leave changes few links. Every process of a cluster computes the same ring
   * over all workers (`remote` are the others') and tells its own. When `keepPlanned`, workers
   * the automatic balancer plans for keep its choice minus the workers that left (its next tick
   * fills them up again), and only workers without statistics yet get their ring neighbours.
   */
  renewNeighbours(
    remote: Iterable<string>,
    keepPlanned: boolean,
    outbox: JobOutbox,
    skip?: string,
  ): void {
    const ids = [...new Set([...this.entries.keys(), ...remote])].sort();
    const n = ids.length;
    const k = this.neighbourCount;
    const half = Math.ceil(k / 2);
    for (let i = 0; i < n; i++) {
      const w = this.entries.get(ids[i] as string);
      if (!w) continue;
      let next: string[];
      if (keepPlanned && w.reported) {
        next = w.neighbours.filter((id) => this.entries.has(id));
      } else {
        const set = new Set<string>();
        for (let d = 1; d <= half && set.size < Math.min(k, n - 1); d++) {
          set.add(ids[(i + d) % n] as string);
          if (set.size < Math.min(k, n - 1)) set.add(ids[(i - d + n) % n] as string);
        }
        set.delete(ids[i] as string);
        next = [...set].sort();
      }
      this.tellNeighbours(w, next, outbox, w.id === skip);
    }
  }

  /** Gives a worker a new neighbour list when it differs from the one it holds. */
  tellNeighbours(w: WorkerEntry, next: string[], outbox: JobOutbox, silently = false): boolean {
    if (next.join() === w.neighbours.join()) return false;
    w.neighbours = next;
    if (!silently) outbox.neighbours(w.id, next);
    return true;
  }
}
