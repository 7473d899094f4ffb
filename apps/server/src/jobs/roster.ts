/**
 * A job's workers on this process: who they are, which shard each trains on, who their
 * neighbours are (DESIGN §4), and the aggregates the rest of the job reads from them.
 */
import type { DeviceInfo, LinkStats, WorkerPlan, WorkerSettings } from '@meshgrad/core';
import type { RemoteWorker } from './cluster-link.ts';
import type { JobOutbox } from './outbox.ts';
import { JobWorkMeter } from './work-meter.ts';

/** A worker that has not reported for this long is dropped (ms). */
export const WORKER_STALE_MS = 15_000;
/**
 * How long a worker that joined may go before its first report (ms): a browser first downloads
 * its shard and the checkpoint, which on a slow link or for a large model takes far longer than
 * WORKER_STALE_MS, and a tab dropped meanwhile would train without being part of the job. A tab
 * that closes is dropped at once all the same (its socket disconnects).
 */
export const WORKER_FIRST_REPORT_MS = 120_000;

export interface WorkerEntry {
  readonly id: string;
  socketId: string;
  readonly device: DeviceInfo;
  readonly joinedAt: number;
  readonly shard: number;
  /** Set only through `Roster.tellNeighbours`, which keeps who holds whom for departures. */
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
  /**
   * Its reports of the peers whose blocks it refuses (core's `refusesBlocks`), by peer, the
   * latest of each, kept after the link closed and the report stopped listing the peer: the
   * balancer gives a refused sender other receivers, and its links to them close, but the
   * evidence against it stays for the suspects list (suspects.ts). At most
   * MAX_KEPT_REFUSALS, the oldest dropped first.
   */
  refusals: Map<string, LinkStats>;
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
  /** The volunteer identity its hello proved (docs/design.md §9); absent for an anonymous one. */
  identity?: string;
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

/**
 * The workers of a job on this process. Per-event paths (a join, a leave) cost O(k log N) for
 * k neighbours and N workers, not O(N): at 10,000 volunteers a join that scanned or sorted every
 * worker made the joins of a ramp O(N² log N) (docs/benchmarks.md, "Server load").
 */
export class Roster {
  private readonly entries = new Map<string, WorkerEntry>();
  /** Every worker id on the neighbour ring, sorted: this process's and the cluster's others. */
  private ring: string[] = [];
  /** The remote workers the ring holds (the cluster link's map as of the last `renewAll`). */
  private remote: ReadonlyMap<string, RemoteWorker> = new Map();
  /** Local workers per shard, kept as they come and go. */
  private readonly localShardUsage: number[];
  /** Remote workers per shard, counted once per remote map (the link replaces it on a change). */
  private remoteShardUsage: { of: ReadonlyMap<string, RemoteWorker>; usage: number[] } | null =
    null;
  /** For each id, the local workers that hold it among their neighbours: a leave reaches them. */
  private readonly heldBy = new Map<string, Set<string>>();
  /** Local workers whose neighbours a join or leave may have changed, until `renewTouched`. */
  private readonly touched = new Set<string>();

  constructor(
    private readonly shardCount: number,
    /** Neighbours per worker on the ring (the spec's `neighbours`); 0 keeps no ring (sync mode). */
    private readonly neighbourCount: number,
    /** Counts the per-event work (tests). */
    readonly work = new JobWorkMeter(),
  ) {
    this.localShardUsage = new Array<number>(shardCount).fill(0);
  }

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

  /**
   * Adds a worker on the least-used shard, counting the cluster's other workers too, and puts it
   * on the ring. Its neighbours and those of the workers near it are renewed by `renewTouched`.
   */
  add(
    id: string,
    socketId: string,
    device: DeviceInfo,
    settings: WorkerSettings,
    remote: ReadonlyMap<string, RemoteWorker>,
  ): WorkerEntry {
    const usage = this.shardUsage(remote);
    // A worker failing over from another process is still in that process's count.
    const stillRemote = remote.get(id);
    let shard = 0;
    for (let s = 0; s < this.shardCount; s++) {
      const u = (usage[s] ?? 0) - (stillRemote?.shard === s ? 1 : 0);
      const best = (usage[shard] ?? 0) - (stillRemote?.shard === shard ? 1 : 0);
      if (u < best) shard = s;
    }
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
      refusals: new Map(),
      sendBusyFraction: undefined,
      reported: false,
      statsFresh: false,
      statsAtS: 0,
      plan: null,
      refusedUploads: 0,
      uploadBytesPerSec: null,
    };
    this.entries.set(id, entry);
    this.localShardUsage[shard] = (this.localShardUsage[shard] ?? 0) + 1;
    if (this.neighbourCount > 0) {
      const at = this.ringIndex(id);
      if (this.ring[at] !== id) this.ring.splice(at, 0, id);
      this.touchAround(at);
      this.touched.add(id);
    }
    return entry;
  }

  /** Removes a worker; the workers near it on the ring and those that held it are touched. */
  remove(workerId: string): boolean {
    const w = this.entries.get(workerId);
    if (!w) return false;
    this.entries.delete(workerId);
    this.localShardUsage[w.shard] = (this.localShardUsage[w.shard] ?? 1) - 1;
    this.touched.delete(workerId);
    for (const peer of w.neighbours) this.unhold(peer, workerId);
    if (this.neighbourCount === 0) return true;
    const holders = this.heldBy.get(workerId);
    if (holders) {
      for (const h of holders) this.touched.add(h);
      this.work.visits += holders.size;
      this.heldBy.delete(workerId);
    }
    // Still on the ring while another process of the cluster lists it (a failover in flight).
    if (!this.remote.has(workerId)) {
      const at = this.ringIndex(workerId);
      if (this.ring[at] === workerId) {
        this.ring.splice(at, 1);
        this.touchAround(at);
      }
    }
    return true;
  }

  /** Marks a worker alive now: any message shows it, even one refused. */
  touch(workerId: string, now = Date.now()): void {
    const w = this.entries.get(workerId);
    if (w) w.lastSeen = now;
  }

  /**
   * Workers silent for longer than `WORKER_STALE_MS` at `now`, or, before their first report,
   * `WORKER_FIRST_REPORT_MS` since they joined or were last heard.
   */
  stale(now: number): WorkerEntry[] {
    return [...this.entries.values()].filter(
      (w) => now - w.lastSeen > (w.reported ? WORKER_STALE_MS : WORKER_FIRST_REPORT_MS),
    );
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
   * Renews the neighbours of every worker the joins and leaves since the last call touched:
   * O(k log N) per event. Neighbours lie on a ring of the sorted worker ids: each worker sees
   * the next and previous ⌈k/2⌉, so the graph is symmetric and connected, and a join or leave
   * changes few links. Every process of a cluster computes the same ring over all workers and
   * tells its own. When `keepPlanned`, workers the automatic balancer plans for keep its choice
   * minus the workers that left (its next tick fills them up again), and only workers without
   * statistics yet get their ring neighbours. `skip` gets its list without a message (the
   * hello's answer carries it).
   */
  renewTouched(keepPlanned: boolean, outbox: JobOutbox, skip?: string): void {
    for (const id of this.touched) {
      const w = this.entries.get(id);
      if (w) this.renew(w, keepPlanned, outbox, id === skip);
    }
    this.touched.clear();
  }

  /**
   * Rebuilds the ring from this process's workers and `remote` (the cluster's others) and renews
   * every worker's neighbours: O(N log N), for a change of the cluster's workers or of who
   * chooses neighbours (see `renewTouched` for the rule).
   */
  renewAll(
    remote: ReadonlyMap<string, RemoteWorker>,
    keepPlanned: boolean,
    outbox: JobOutbox,
  ): void {
    this.touched.clear();
    if (this.neighbourCount === 0) return;
    this.remote = remote;
    this.ring = [...new Set([...this.entries.keys(), ...remote.keys()])].sort();
    for (const w of this.entries.values()) this.renew(w, keepPlanned, outbox, false);
  }

  /**
   * The cluster's other workers changed (the link's new map, `remote`): puts the ids that came on
   * the ring and takes those that went off it, touching the local workers near each and those
   * that held a departed one, as local joins and leaves do; `renewTouched` then renews them.
   * O(R) to compare the maps plus O(k log N) per changed id, where `renewAll` renews every
   * worker. A change of more than a quarter of the ring is left to `renewAll` (returns false).
   */
  remoteChanged(remote: ReadonlyMap<string, RemoteWorker>): boolean {
    const before = this.remote;
    if (this.neighbourCount === 0) {
      this.remote = remote;
      return true;
    }
    const added: string[] = [];
    const removed: string[] = [];
    for (const id of remote.keys()) if (!before.has(id)) added.push(id);
    for (const id of before.keys()) if (!remote.has(id)) removed.push(id);
    this.work.visits += remote.size + before.size;
    if (added.length + removed.length > Math.max(16, this.ring.length / 4)) return false;
    this.remote = remote;
    for (const id of added) {
      const at = this.ringIndex(id);
      if (this.ring[at] === id) continue; // here too (a failover in flight)
      this.ring.splice(at, 0, id);
      this.touchAround(at);
    }
    for (const id of removed) {
      if (this.entries.has(id)) continue; // it failed over to this process: stays on the ring
      const holders = this.heldBy.get(id);
      if (holders) {
        for (const h of holders) this.touched.add(h);
        this.work.visits += holders.size;
      }
      const at = this.ringIndex(id);
      if (this.ring[at] === id) {
        this.ring.splice(at, 1);
        this.touchAround(at);
      }
    }
    return true;
  }

  /** Gives a worker a new neighbour list when it differs from the one it holds. */
  tellNeighbours(w: WorkerEntry, next: string[], outbox: JobOutbox, silently = false): boolean {
    if (next.join() === w.neighbours.join()) return false;
    for (const peer of w.neighbours) this.unhold(peer, w.id);
    for (const peer of next) {
      let holders = this.heldBy.get(peer);
      if (!holders) this.heldBy.set(peer, (holders = new Set()));
      holders.add(w.id);
    }
    w.neighbours = next;
    if (!silently) outbox.neighbours(w.id, next);
    return true;
  }

  /** One worker's neighbours under the rule of `renewTouched`. */
  private renew(w: WorkerEntry, keepPlanned: boolean, outbox: JobOutbox, silently: boolean): void {
    this.work.renewals++;
    const next =
      keepPlanned && w.reported
        ? w.neighbours.filter((id) => this.entries.has(id))
        : this.ringNeighbours(w.id);
    this.tellNeighbours(w, next, outbox, silently);
  }

  /** `id`'s neighbours on the ring: the next and previous ⌈k/2⌉ ids, k in all at most. */
  private ringNeighbours(id: string): string[] {
    const ids = this.ring;
    const n = ids.length;
    const i = this.ringIndex(id);
    const k = Math.min(this.neighbourCount, n - 1);
    const half = Math.ceil(this.neighbourCount / 2);
    const set = new Set<string>();
    for (let d = 1; d <= half && set.size < k; d++) {
      set.add(ids[(i + d) % n] as string);
      if (set.size < k) set.add(ids[(i - d + n) % n] as string);
    }
    set.delete(id);
    return [...set].sort();
  }

  /**
   * Touches the local workers whose ring window can hold position `at` (one more either side:
   * the id pushed out of a window by an insert, or pulled in by a removal). A ring short enough
   * for windows to wrap onto themselves is touched whole (at most a few more than k ids).
   */
  private touchAround(at: number): void {
    const n = this.ring.length;
    const reach = Math.ceil(this.neighbourCount / 2) + 1;
    if (n <= 2 * reach + 1) {
      for (const id of this.ring) if (this.entries.has(id)) this.touched.add(id);
      this.work.visits += n;
      return;
    }
    for (let d = -reach; d <= reach; d++) {
      const id = this.ring[(((at + d) % n) + n) % n] as string;
      if (this.entries.has(id)) this.touched.add(id);
    }
    this.work.visits += 2 * reach + 1;
  }

  /** Where `id` is on the sorted ring, or where it would go (binary search). */
  private ringIndex(id: string): number {
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      this.work.ringSteps++;
      const mid = (lo + hi) >>> 1;
      if ((this.ring[mid] as string) < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private unhold(peer: string, holder: string): void {
    const holders = this.heldBy.get(peer);
    if (!holders) return;
    holders.delete(holder);
    if (holders.size === 0) this.heldBy.delete(peer);
  }

  /** Workers per shard, this process's and the cluster's others. */
  private shardUsage(remote: ReadonlyMap<string, RemoteWorker>): number[] {
    if (remote.size === 0) return this.localShardUsage;
    if (this.remoteShardUsage?.of !== remote) {
      const usage = new Array<number>(this.shardCount).fill(0);
      for (const w of remote.values()) usage[w.shard] = (usage[w.shard] ?? 0) + 1;
      this.work.visits += remote.size;
      this.remoteShardUsage = { of: remote, usage };
    }
    const remoteUsage = this.remoteShardUsage.usage;
    return this.localShardUsage.map((u, s) => u + (remoteUsage[s] ?? 0));
  }
}
