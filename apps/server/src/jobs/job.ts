import { createHash, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  Balancer,
  BROWSER_TRUSTED_BUSY_FRACTION,
  encodeDataset,
  evaluate,
  initParameters,
  parameterLayout,
  shardDataset,
  type Dataset,
  type DeviceInfo,
  type JobInfo,
  type JobState,
  type LinkStats,
  type ModelTraffic,
  type ParameterLayout,
  type Stats,
  type SyncRoundMessage,
  type WorkerPlan,
  type WorkerReport,
  type WorkerSettings,
} from '@meshgrad/core';
import type { Logger } from '../logger.ts';
import type { ServerMetrics } from '../metrics.ts';
import type { BalancerMode, CheckpointManifest, DataStore, MetricsRecord } from '../store.ts';
import { openCustomKernel, type CustomKernel } from './custom-kernel.ts';
import { loadJobData } from './data.ts';
import { coreModelSpec, type JobSpec } from './job-spec.ts';
import { SyncRounds, type SyncContributionIn, type SyncRefusal } from './sync-rounds.ts';

export { loadJobData } from './data.ts';

/** A worker that has not reported for this long is dropped (ms). */
export const WORKER_STALE_MS = 15_000;
/** How often the job writes a metrics-history record (ms). */
export const METRICS_RECORD_INTERVAL_MS = 5_000;
/** A state request not answered within this time is abandoned and another worker is asked (ms). */
export const STATE_REQUEST_TIMEOUT_MS = 15_000;

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

/** Callbacks the job uses to reach its workers; the socket layer provides them. */
export interface JobOutbox {
  neighbours(workerId: string, neighbours: readonly string[]): void;
  /** New communication settings for a worker connected to this process. */
  settings(workerId: string, settings: WorkerSettings): void;
  requestState(workerId: string, requestId: string): void;
  control(workerId: string, state: JobState, learningRate: number): void;
  /** Sync mode: a round's parameters for a worker (jobs/sync-rounds.ts). */
  syncRound?(workerId: string, message: SyncRoundMessage): void;
}

/** The checkpoint author in sync mode, where the server's own parameters are the model. */
export const SYNC_SERVER_WORKER = 'server';

/** What a cluster already knows about a job when a process opens it. */
export interface SharedJobState {
  readonly samples: number;
  readonly control?: { readonly state: JobState; readonly learningRate: number };
  readonly balancer?: BalancerMode;
  readonly checkpoint?: { readonly manifest: CheckpointManifest; readonly params: Float32Array };
}

/** A worker of this job connected to another server process (scale-out, DESIGN §5). */
export interface RemoteWorker {
  readonly id: string;
  /** The process it is connected to. */
  readonly server: string;
  readonly shard: number;
  readonly contributed: number;
}

/**
 * How a job shares its state with the other server processes of a Redis cluster
 * (scale/cluster.ts). A job without one runs alone, entirely in memory and on disk.
 */
export interface JobSync {
  /** Other processes' workers of this job, as of the last `sync`. */
  readonly remote: ReadonlyMap<string, RemoteWorker>;
  /** Registers this process's workers (alive now), drops dead processes' ones and reloads the rest; resolves whether the remote set changed. */
  sync(local: Iterable<WorkerEntry>): Promise<boolean>;
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
}

/**
 * One training job on this server: its spec, data, shards, workers, progress and checkpoints.
 * Progress (sample count, metrics history) is persisted so it never goes backwards across
 * restarts.
 */
export class Job {
  readonly layout: ParameterLayout;
  readonly workers = new Map<string, WorkerEntry>();
  state: JobState = 'running';
  learningRate: number;
  /** How workers' communication settings are chosen; see `setBalancer`. */
  balancer: BalancerMode = { mode: 'automatic' };
  private readonly recordListeners = new Set<(record: MetricsRecord) => void>();
  private samplesSoFar = 0;
  /** Samples processed by all workers since the job was created; /metrics follows it at once. */
  get samples(): number {
    return this.samplesSoFar;
  }
  set samples(value: number) {
    // Every change reaches progress.json on the next write, whichever path made it.
    if (value !== this.samplesSoFar) this.dirty = true;
    this.samplesSoFar = value;
    this.metrics.samples.set({ job: this.id }, value);
  }
  /** Per-worker cumulative counters already credited (see `recordStats`). */
  private credited = new Map<string, number>();
  private shardBytes = new Map<number, { bytes: Uint8Array; etag: string }>();
  private shards: Dataset[] = [];
  latest: CheckpointManifest | null = null;
  /** Sync mode's round coordinator, which owns the model there; null in ASGD mode. */
  rounds: SyncRounds | null = null;
  /** The round a sync-mode checkpoint last stored, so an idle job stores no duplicates. */
  private roundAtCheckpoint = -1;
  /** The socket layer's outbox as last handed in: sync rounds go out through it. */
  private outbox: JobOutbox | null = null;
  /** A custom model's compiled gradient kernel; null for built-in models. */
  kernel: CustomKernel | null = null;
  /** Shared state with other server processes; null when this process runs alone. */
  private sync: JobSync | null = null;
  /** Whether this process leads the job in its cluster (always true alone). */
  leader = true;
  private latestParams: Float32Array | null = null;
  private pendingState: {
    requestId: string;
    workerId: string;
    sentAt: number;
    samples: number;
  } | null = null;
  private lastCheckpointAt = Date.now();
  private lastRecordAt = 0;
  private lastTrainLoss: number | undefined;
  private dirty = false;
  /**
   * Progress writes and metrics-history appends, run one at a time in the order they were asked
   * for (`persist`): an older snapshot never lands over a newer one, and a history record goes
   * out only after the progress that covers its sample count is durable, so after a crash the
   * restarted job never counts fewer samples than its history shows (DESIGN §5).
   */
  private readonly persisting = new InOrder();
  /**
   * State uploads and adopted checkpoints, evaluated and stored one at a time in arrival order
   * (`storeInTurn`): checkpoint numbers stay unique, and once a checkpoint meets a stop criterion
   * no upload that overlapped it can replace it as the job's last.
   */
  private readonly storing = new InOrder();
  private readonly specHash: string;
  /** A stop criterion met by a checkpoint, applied on the next tick (which has the outbox). */
  private stopDue: string | null = null;
  /** When the job asked for its final state after reaching `stop.maxSamples`. */
  private finalStateRequestedAt: number | null = null;
  /**
   * The automatic balancer (core's `Balancer`, DESIGN §3), made on its first tick in automatic
   * mode and dropped in fixed mode, so a switch back starts it afresh from the workers' current
   * settings.
   */
  private autoBalancer: Balancer | null = null;

  private constructor(
    readonly spec: JobSpec,
    readonly train: Dataset,
    readonly test: Dataset,
    private readonly store: DataStore,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
  ) {
    this.layout = parameterLayout(coreModelSpec(spec.model), spec.blockSize);
    this.learningRate = spec.learningRate;
    this.balancer = balancerFromSpec(spec);
    this.specHash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
    for (let i = 0; i < spec.shards; i++) {
      this.shards.push(shardDataset(train, i, spec.shards, spec.seed));
    }
  }

  /** Loads data and resumes from the data directory when the job ran before. */
  static async open(
    spec: JobSpec,
    store: DataStore,
    metrics: ServerMetrics,
    log: Logger,
  ): Promise<Job> {
    const { train, test } = await loadJobData(spec);
    const job = new Job(spec, train, test, store, metrics, log.child({ job: spec.id }));
    if (spec.model.kind === 'custom') {
      job.kernel = await openCustomKernel(spec, job.layout, job.initialParams(), train);
    }
    await store.saveSpec(spec.id, spec);
    const progress = await store.loadProgress(spec.id);
    job.latest = await store.latestCheckpoint(spec.id);
    if (job.latest) job.latestParams = await store.readCheckpoint(job.latest);
    if (progress) {
      job.samples = progress.samples;
      job.state = progress.state;
      job.learningRate = progress.learningRate;
      job.credited = new Map(Object.entries(progress.credited));
      if (progress.balancer) job.balancer = progress.balancer;
    }
    if (spec.training.mode === 'sync') job.rounds = job.createRounds();
    // Never report fewer samples than the newest checkpoint already recorded.
    if (job.latest && job.latest.samples > job.samples) job.samples = job.latest.samples;
    if (job.latest) {
      metrics.testLoss.set({ job: spec.id }, job.latest.testLoss);
      if (job.latest.testAccuracy !== undefined)
        metrics.testAccuracy.set({ job: spec.id }, job.latest.testAccuracy);
    }
    job.log.info(
      { samples: job.samples, checkpoint: job.latest?.seq ?? null, state: job.state },
      job.latest ? 'job resumed from checkpoint' : 'job created',
    );
    return job;
  }

  get id(): string {
    return this.spec.id;
  }

  info(): JobInfo {
    const { spec } = this;
    return {
      id: spec.id,
      name: spec.name,
      host: spec.host,
      description: spec.description,
      model: coreModelSpec(spec.model),
      blockSize: spec.blockSize,
      batchSize: spec.batchSize,
      learningRate: this.learningRate,
      seed: spec.seed,
      state: this.state,
      mode: spec.training.mode,
      dataset: {
        name: this.train.name,
        features: this.train.features,
        classes: this.train.classes,
      },
      ...(this.kernel
        ? { kernel: { wgsl: this.kernel.wgsl, entryPoint: this.kernel.entryPoint } }
        : {}),
    };
  }

  /** Shard bytes in the binary dataset format, cached; the ETag changes only with the spec. */
  shard(index: number): { bytes: Uint8Array; etag: string } | null {
    const ds = this.shards[index];
    if (!ds) return null;
    let entry = this.shardBytes.get(index);
    if (!entry) {
      entry = { bytes: encodeDataset(ds), etag: `"${this.specHash}-shard-${index}"` };
      this.shardBytes.set(index, entry);
    }
    return entry;
  }

  shardCount(): number {
    return this.shards.length;
  }

  shardSize(index: number): number {
    return this.shards[index]?.count ?? 0;
  }

  /** The latest checkpoint's parameters, or the job's seeded initial ones before the first. */
  checkpointParams(): { params: Float32Array; manifest: CheckpointManifest | null } {
    if (this.latest && this.latestParams)
      return { params: this.latestParams, manifest: this.latest };
    return { params: this.initialParams(), manifest: null };
  }

  private initial: Float32Array | null = null;

  /** Seeded initial parameters, the same on every server that runs this spec. */
  initialParams(): Float32Array {
    this.initial ??= initParameters(this.layout, this.spec.seed, this.train);
    return this.initial;
  }

  /** Adds a worker (or re-attaches a reconnecting one) and renews everyone's neighbours. */
  join(
    workerId: string | undefined,
    socketId: string,
    device: DeviceInfo,
    outbox: JobOutbox,
  ): WorkerEntry {
    const id =
      workerId && !this.workers.has(workerId) ? workerId : `w-${randomUUID().slice(0, 12)}`;
    const usage = new Array<number>(this.shards.length).fill(0);
    for (const w of this.workers.values()) usage[w.shard] = (usage[w.shard] ?? 0) + 1;
    for (const w of this.sync?.remote.values() ?? []) {
      if (w.id !== id) usage[w.shard] = (usage[w.shard] ?? 0) + 1;
    }
    const shard = usage.indexOf(Math.min(...usage));
    const entry: WorkerEntry = {
      id,
      socketId,
      device,
      joinedAt: Date.now(),
      shard,
      neighbours: [],
      settings: this.workerSettings(),
      lastSeen: Date.now(),
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
    };
    this.workers.set(id, entry);
    this.metrics.workers.set({ job: this.id }, this.workers.size);
    this.log.info({ worker: id, backend: device.backend, shard }, 'worker joined');
    const sync = this.sync;
    if (sync) {
      // A tab that failed over from another process keeps counting its samples: what that
      // process credited must not be credited again here.
      if (!this.credited.has(id)) {
        void sync.credited(id).then((c) => {
          if (c !== null && !this.credited.has(id)) this.credited.set(id, c);
        });
      }
      void sync.sync(this.workers.values());
    }
    void this.store.appendEvent(this.id, { event: 'join', worker: id, backend: device.backend });
    this.renewNeighbours(outbox, id);
    // Sync mode: the socket layer starts a round once it can reach this worker (`kick`).
    this.outbox = outbox;
    return entry;
  }

  leave(workerId: string, reason: string, outbox: JobOutbox): void {
    if (!this.workers.delete(workerId)) return;
    this.rounds?.leave(workerId);
    this.metrics.workers.set({ job: this.id }, this.workers.size);
    if (this.pendingState?.workerId === workerId) this.pendingState = null;
    this.log.info({ worker: workerId, reason }, 'worker left');
    void this.store.appendEvent(this.id, { event: 'leave', worker: workerId, reason });
    this.sync?.workerLeft(workerId);
    this.renewNeighbours(outbox);
  }

  /** Whether `workerId` is a worker of this job, on this process or another. */
  hasWorker(workerId: string): boolean {
    return this.workers.has(workerId) || (this.sync?.remote.has(workerId) ?? false);
  }

  /** Whether `workerId` is connected to another process of the cluster. */
  isRemote(workerId: string): boolean {
    return !this.workers.has(workerId) && (this.sync?.remote.has(workerId) ?? false);
  }

  /**
   * Renews neighbour lists after a join or leave. Neighbours lie on a ring of the sorted worker
   * ids: each worker sees the next and previous ⌈k/2⌉, so the graph is symmetric and connected,
   * and a join or leave changes few links. Once the automatic balancer chooses neighbours
   * (`balancerChoosesNeighbours`), workers it plans for keep its choice minus the workers that
   * left (its next tick fills them up again), and only workers without statistics yet get
   * their ring neighbours.
   */
  private renewNeighbours(outbox: JobOutbox, skip?: string): void {
    // Sync mode exchanges nothing between workers: the server's rounds carry the model.
    if (this.rounds) return;
    // Every process computes the same ring over all workers of the cluster and tells its own.
    const ids = [...new Set([...this.workers.keys(), ...(this.sync?.remote.keys() ?? [])])].sort();
    const n = ids.length;
    const half = Math.ceil(this.spec.neighbours / 2);
    const balanced = this.balancerChoosesNeighbours && this.autoBalancer !== null;
    for (let i = 0; i < n; i++) {
      const w = this.workers.get(ids[i] as string);
      if (!w) continue;
      let next: string[];
      if (balanced && w.reported) {
        next = w.neighbours.filter((id) => this.workers.has(id));
      } else {
        const set = new Set<string>();
        for (let d = 1; d <= half && set.size < Math.min(this.spec.neighbours, n - 1); d++) {
          set.add(ids[(i + d) % n] as string);
          if (set.size < Math.min(this.spec.neighbours, n - 1))
            set.add(ids[(i - d + n) % n] as string);
        }
        set.delete(ids[i] as string);
        next = [...set].sort();
      }
      if (next.join() !== w.neighbours.join()) {
        w.neighbours = next;
        if (w.id !== skip) outbox.neighbours(w.id, next);
      }
    }
  }

  /**
   * Whether the automatic balancer chooses neighbours: in automatic mode on a process that runs
   * the job alone. In a cluster, neighbours span processes and every process computes the same
   * ring (`renewNeighbours`); each process's balancer then tunes only its own workers' settings.
   */
  private get balancerChoosesNeighbours(): boolean {
    return this.balancer.mode === 'automatic' && this.sync === null;
  }

  /** The model's shape as far as the balancer's traffic goes. */
  modelTraffic(): ModelTraffic {
    return { blockCount: this.layout.blockCount, parameterCount: this.layout.size };
  }

  /**
   * One tick of the automatic balancer (DESIGN §3), once per stats period: the latest report
   * of every worker that has sent one goes in; settings that changed go out to their workers,
   * and so do neighbour lists that changed when the balancer chooses them. Does nothing in
   * fixed mode or for a stopped job.
   */
  balanceWorkers(outbox: JobOutbox, nowS = performance.now() / 1000): void {
    if (this.balancer.mode !== 'automatic' || this.state === 'stopped') return;
    // Sync mode sends nothing between workers: there is no traffic to balance.
    if (this.rounds) return;
    const reports: WorkerReport[] = [];
    for (const w of this.workers.values()) {
      if (!w.reported) continue;
      reports.push({
        id: w.id,
        samplesPerSec: w.samplesPerSec,
        batchSize: this.spec.batchSize,
        ...(w.sendBusyFraction !== undefined ? { sendBusyFraction: w.sendBusyFraction } : {}),
        links: w.links,
        neighbours: w.neighbours,
        fresh: w.statsFresh,
        atS: w.statsAtS,
        settings: w.settings,
      });
      w.statsFresh = false;
    }
    if (reports.length === 0) return;
    const choose = this.balancerChoosesNeighbours;
    this.autoBalancer ??= new Balancer({
      neighbours: choose ? this.spec.neighbours : 0,
      seed: this.spec.seed,
      // Workers are browsers: a busy fraction from bufferedAmount understates a light load.
      trustedBusyFraction: BROWSER_TRUSTED_BUSY_FRACTION,
    });
    const plans = this.autoBalancer.update({
      nowS,
      model: this.modelTraffic(),
      workers: reports,
    });
    for (const [id, plan] of plans) {
      const w = this.workers.get(id);
      if (!w) continue;
      w.plan = {
        reason: plan.reason,
        budgetBytesPerSec: plan.budgetBytesPerSec,
        capacityBytesPerSec: plan.capacityBytesPerSec,
        congested: plan.congested,
      };
      if (!sameSettings(w.settings, plan.settings)) {
        this.log.debug(
          {
            worker: id,
            from: w.settings,
            to: plan.settings,
            reason: plan.reason,
            budgetBytesPerSec: Math.round(plan.budgetBytesPerSec),
            capacityBytesPerSec:
              plan.capacityBytesPerSec === null ? null : Math.round(plan.capacityBytesPerSec),
            congested: plan.congested,
          },
          'balancer changed settings',
        );
        w.settings = { ...plan.settings };
        outbox.settings(id, w.settings);
      }
      if (!choose) continue;
      const next = [...plan.neighbours].filter((n) => this.workers.has(n)).sort();
      if (next.length > 0 && next.join() !== w.neighbours.join()) {
        this.log.debug({ worker: id, from: w.neighbours, to: next }, 'balancer chose neighbours');
        w.neighbours = next;
        outbox.neighbours(id, next);
      }
    }
  }

  /**
   * Credits a worker's statistics. `stats.samples` is cumulative per tab, so only the increase
   * counts. `nowS` is the arrival time on the clock `balanceWorkers` ticks with.
   */
  recordStats(worker: WorkerEntry, stats: Stats, nowS = performance.now() / 1000): void {
    const before = this.credited.get(worker.id);
    const delta = before === undefined ? stats.samples : stats.samples - before;
    // A counter that went down means the tab restarted its count: credit what it reports anew.
    const credit = delta >= 0 ? delta : stats.samples;
    this.credited.set(worker.id, stats.samples);
    if (credit > 0) {
      this.samples += credit;
      worker.contributed += credit;
      this.dirty = true;
      void this.sync?.addSamples(worker.id, credit, stats.samples).then((total) => {
        if (total > this.samples) this.samples = total;
      });
    }
    worker.lastSeen = Date.now();
    worker.samplesPerSec = stats.samplesPerSec;
    worker.loss = stats.loss;
    worker.paused = stats.paused;
    worker.offered = stats.offered;
    worker.accepted = stats.accepted;
    worker.links = stats.links;
    worker.sendBusyFraction = stats.sendBusyFraction;
    worker.reported = true;
    worker.statsFresh = true;
    worker.statsAtS = nowS;
    // Sync mode: a paused tab holds its round, so the barrier stops waiting for it.
    if (worker.paused) this.rounds?.leave(worker.id);
    else this.rounds?.kick();
  }

  setControl(state: JobState, learningRate: number, outbox: JobOutbox, fromCluster = false): void {
    this.state = state;
    this.learningRate = learningRate;
    this.dirty = true;
    for (const w of this.workers.values()) outbox.control(w.id, state, learningRate);
    void this.store.appendEvent(this.id, { event: 'control', state, learningRate });
    if (!fromCluster) this.sync?.controlChanged(state, learningRate);
    this.outbox = outbox;
    this.rounds?.kick();
  }

  /**
   * The settings a joining worker gets: the fixed ones, or in automatic mode the spec's
   * `communication` defaults, from which the balancer adapts once the worker reports (its first
   * plan for a worker applies at once). The spec's defaults rather than core's
   * `initialSettings`: those need the worker's speed, which the server learns only from its
   * first report.
   */
  workerSettings(): WorkerSettings {
    return this.balancer.mode === 'fixed'
      ? { ...this.balancer.settings }
      : { ...this.spec.communication };
  }

  /**
   * Switches the balancer mode. Fixed mode hands every worker whose settings changed to `send`
   * and stops the automatic balancer; automatic mode leaves every worker's settings as they are
   * and starts the balancer afresh on the next tick, which adapts them from there.
   */
  setBalancer(
    balancer: BalancerMode,
    send: (worker: WorkerEntry, settings: WorkerSettings) => void,
    fromCluster = false,
  ): void {
    this.balancer = balancer;
    this.dirty = true;
    this.autoBalancer = null;
    for (const w of this.workers.values()) w.plan = null;
    if (balancer.mode === 'fixed') {
      const next = this.workerSettings();
      for (const w of this.workers.values()) {
        if (sameSettings(w.settings, next)) continue;
        w.settings = { ...next };
        send(w, w.settings);
      }
    }
    void this.store.appendEvent(this.id, { event: 'balancer', ...balancer });
    if (!fromCluster) this.sync?.balancerChanged(balancer);
  }

  // ---------------------------------------------------------------------------------------------
  // Scale-out: the job's state shared with other server processes (scale/cluster.ts)

  /**
   * Joins the job to its cluster: from now on neighbours span processes, samples are counted
   * job-wide, and only the leading process checkpoints. `shared` is what the cluster already
   * knows about the job (from processes that ran it before), adopted where it is newer.
   */
  async attachSync(sync: JobSync, shared: SharedJobState | null): Promise<void> {
    this.sync = sync;
    this.leader = false;
    if (this.rounds) {
      this.log.warn('sync mode runs on one server process: each process runs its own rounds');
    }
    // Neighbours span processes from now on: a balancer made alone would choose them.
    this.autoBalancer = null;
    if (shared) {
      if (shared.samples > this.samples) this.samples = shared.samples;
      if (shared.control) {
        this.state = shared.control.state;
        this.learningRate = shared.control.learningRate;
      }
      if (shared.balancer) this.balancer = shared.balancer;
      if (shared.checkpoint) {
        await this.adoptCheckpoint(shared.checkpoint.manifest, shared.checkpoint.params);
      }
      this.dirty = true;
    }
    // What this process knows from its own data directory and the cluster does not (a cluster
    // restarted on an empty Redis): share it, so the processes agree.
    await sync.seedSamples(this.samples);
    if (!shared?.control) sync.controlChanged(this.state, this.learningRate);
    if (
      this.latest &&
      this.latestParams &&
      (shared?.checkpoint?.manifest.seq ?? 0) < this.latest.seq
    ) {
      await sync.checkpointStored(this.latest, this.latestParams);
    }
  }

  /** A checkpoint another process stored: kept here too, so this process serves and resumes from it. */
  adoptCheckpoint(manifest: CheckpointManifest, params: Float32Array): Promise<void> {
    return this.storeInTurn(() => this.adoptCheckpointNow(manifest, params));
  }

  private async adoptCheckpointNow(
    manifest: CheckpointManifest,
    params: Float32Array,
  ): Promise<void> {
    if (this.latest && manifest.seq <= this.latest.seq) return;
    if (manifest.job !== this.id || params.length !== this.layout.size) {
      this.log.warn(
        { seq: manifest.seq },
        'ignored a shared checkpoint that does not fit this job',
      );
      return;
    }
    await this.store.saveCheckpoint(manifest, params);
    this.latest = manifest;
    this.latestParams = params;
    this.lastCheckpointAt = Date.now();
    if (manifest.samples > this.samples) this.samples = manifest.samples;
    this.metrics.checkpoints.inc({ job: this.id });
    this.metrics.testLoss.set({ job: this.id }, manifest.testLoss);
    if (manifest.testAccuracy !== undefined)
      this.metrics.testAccuracy.set({ job: this.id }, manifest.testAccuracy);
  }

  /** Another process changed the workers of this job: renew the neighbours of ours. */
  async remoteWorkersChanged(outbox: JobOutbox): Promise<void> {
    if (this.sync && (await this.sync.sync(this.workers.values()))) this.renewNeighbours(outbox);
  }

  /** One tick's cluster work: registry, job-wide samples, leadership. */
  private async clusterTick(sync: JobSync, outbox: JobOutbox): Promise<void> {
    try {
      if (await sync.sync(this.workers.values())) this.renewNeighbours(outbox);
      const total = await sync.samples();
      if (total > this.samples) {
        this.samples = total;
        this.dirty = true;
      }
      // Only a process with a worker that can answer a state request may lead.
      const canLead = [...this.workers.values()].some((w) => !w.paused && w.contributed > 0);
      const leading = await sync.lead(canLead);
      if (leading !== this.leader) {
        this.log.info(
          { leader: leading },
          leading ? 'leading the job in the cluster' : 'no longer leading the job',
        );
      }
      this.leader = leading;
    } catch (err) {
      this.log.warn({ err }, 'cluster sync failed');
    }
  }

  /** Calls `listener` with every metrics record the job appends; returns an unsubscribe. */
  onRecord(listener: (record: MetricsRecord) => void): () => void {
    this.recordListeners.add(listener);
    return () => this.recordListeners.delete(listener);
  }

  /**
   * Persists progress (samples, state, per-worker credit) when it changed; resolves once it, and
   * every progress or history write asked for before it, is on disk.
   */
  flush(): Promise<void> {
    return this.persist(() => this.saveProgress());
  }

  /** Runs `write` after every write `persist` was handed before it (see `persisting`). */
  private persist<T>(write: () => Promise<T>): Promise<T> {
    return this.persisting.run(write);
  }

  /** Runs `work` after every store `storeInTurn` was handed before it (see `storing`). */
  private storeInTurn<T>(work: () => Promise<T>): Promise<T> {
    return this.storing.run(work);
  }

  /** Writes progress now when it changed; only ever called in `persist`'s turn. */
  private async saveProgress(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await this.store.saveProgress(this.id, {
        samples: this.samples,
        state: this.state,
        learningRate: this.learningRate,
        credited: Object.fromEntries(this.credited),
        balancer: this.balancer,
      });
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }

  /** Periodic work: drop stale workers, update gauges, persist progress, ask for state, stop. */
  async tick(outbox: JobOutbox): Promise<void> {
    if (this.sync) await this.clusterTick(this.sync, outbox);
    this.outbox = outbox;
    this.rounds?.tick();
    const now = Date.now();
    this.checkStop(outbox, now);
    for (const w of [...this.workers.values()]) {
      if (now - w.lastSeen > WORKER_STALE_MS) this.leave(w.id, 'stale', outbox);
    }
    let sps = 0;
    let lossSum = 0;
    let lossN = 0;
    for (const w of this.workers.values()) {
      sps += w.samplesPerSec;
      if (w.loss !== undefined) {
        lossSum += w.loss;
        lossN++;
      }
    }
    if (lossN) this.lastTrainLoss = lossSum / lossN;
    this.balanceWorkers(outbox);
    this.metrics.samplesPerSecond.set({ job: this.id }, sps);
    if (this.lastTrainLoss !== undefined)
      this.metrics.loss.set({ job: this.id }, this.lastTrainLoss);

    await this.flush();
    if (now - this.lastRecordAt >= METRICS_RECORD_INTERVAL_MS && this.workers.size > 0) {
      this.lastRecordAt = now;
      await this.appendRecord({ samplesPerSec: sps });
    }
    if (this.pendingState && now - this.pendingState.sentAt > STATE_REQUEST_TIMEOUT_MS) {
      this.log.warn({ worker: this.pendingState.workerId }, 'state request timed out');
      this.pendingState = null;
    }
    if (
      !this.pendingState &&
      this.leader &&
      this.state === 'running' &&
      now - this.lastCheckpointAt >= this.spec.checkpointIntervalSec * 1000
    ) {
      this.requestState(outbox);
    }
  }

  /**
   * Asks a worker that contributed (and is not paused) for its parameters: the one with the
   * fastest uplink as the automatic balancer estimates it, else (fixed mode, before its first
   * tick) the one that has contributed most. Why the uplink: the upload is the whole model in
   * float32 over the same uplink as the worker's blocks, every checkpoint interval; on a slow
   * link it takes seconds and crowds out the blocks, which the balancer then sees as a
   * capacity drop every interval (on a 2 Mbit/s link, ~400 kB each 10 s swung its settings 3x).
   */
  requestState(outbox: JobOutbox): string | null {
    // A job that met its stop criterion ends with the checkpoint that met it.
    if (this.stopDue !== null || this.state === 'stopped') return null;
    if (this.rounds) return this.checkpointRounds(this.rounds);
    const uplink = (w: WorkerEntry) => w.plan?.capacityBytesPerSec ?? -1;
    let best: WorkerEntry | null = null;
    for (const w of this.workers.values()) {
      if (w.paused || w.contributed === 0) continue;
      if (
        !best ||
        uplink(w) > uplink(best) ||
        (uplink(w) === uplink(best) && w.contributed > best.contributed)
      ) {
        best = w;
      }
    }
    if (!best) return null;
    const requestId = `r-${randomUUID().slice(0, 12)}`;
    this.pendingState = { requestId, workerId: best.id, sentAt: Date.now(), samples: this.samples };
    outbox.requestState(best.id, requestId);
    return requestId;
  }

  /**
   * Sync mode: the server's own parameters are the model, so a checkpoint evaluates and stores
   * them, through the same path as a worker's upload. Null when no round finished since the
   * last one.
   */
  private checkpointRounds(rounds: SyncRounds): string | null {
    if (rounds.round === this.roundAtCheckpoint || this.pendingState) return null;
    this.roundAtCheckpoint = rounds.round;
    const requestId = `r-${randomUUID().slice(0, 12)}`;
    const workerId = SYNC_SERVER_WORKER;
    this.pendingState = { requestId, workerId, sentAt: Date.now(), samples: this.samples };
    const p = rounds.params;
    const bytes = new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
    void this.acceptState(workerId, requestId, bytes).then(
      (problem) => {
        if (problem) this.log.warn({ problem }, 'sync checkpoint not stored');
      },
      (err: unknown) => this.log.error({ err }, 'sync checkpoint failed'),
    );
    return requestId;
  }

  /** Sync mode: a worker's contribution to the open round; a refusal, or null when counted. */
  contributeSync(workerId: string, contribution: SyncContributionIn): SyncRefusal | null {
    if (!this.rounds) {
      return { code: 'ERR_UNEXPECTED', message: `(payload): job ${this.id} is not in sync mode` };
    }
    return this.rounds.contribute(workerId, contribution);
  }

  private createRounds(): SyncRounds {
    return new SyncRounds({
      jobId: this.id,
      params: this.checkpointParams().params,
      roundTimeoutMs: this.spec.training.roundTimeoutSec * 1000,
      participants: () => [...this.workers.values()].filter((w) => !w.paused).map((w) => w.id),
      running: () => this.state === 'running',
      learningRate: () => this.learningRate,
      send: (workerId, message) => this.outbox?.syncRound?.(workerId, message),
      onRound: (r) => {
        if (r.timedOut > 0 || r.contributors === 0) {
          this.log.debug({ ...r }, 'sync round finished short');
        }
      },
      log: this.log,
    });
  }

  /**
   * Takes a state upload: checks it answers our request and holds P finite floats, evaluates
   * it on the held-out test set with the CPU reference, and stores it as a checkpoint.
   * Returns an error message, or null when stored. Uploads are taken one at a time, in arrival
   * order: one that arrives while another is being evaluated waits its turn, and is refused then
   * when the checkpoint before it met a stop criterion.
   */
  acceptState(workerId: string, requestId: string, bytes: Uint8Array): Promise<string | null> {
    return this.storeInTurn(() => this.acceptStateNow(workerId, requestId, bytes));
  }

  private async acceptStateNow(
    workerId: string,
    requestId: string,
    bytes: Uint8Array,
  ): Promise<string | null> {
    const pending = this.pendingState;
    if (!pending || pending.requestId !== requestId || pending.workerId !== workerId) {
      return `no state request ${requestId} is pending for this worker`;
    }
    if (this.stopDue !== null || this.state === 'stopped') {
      this.pendingState = null;
      return 'the job has stopped; its last checkpoint is final';
    }
    this.pendingState = null;
    if (bytes.byteLength !== this.layout.size * 4) {
      return `params must be ${this.layout.size} float32 values (${this.layout.size * 4} bytes), got ${bytes.byteLength} bytes`;
    }
    const params = new Float32Array(this.layout.size);
    new Uint8Array(params.buffer).set(bytes);
    for (let i = 0; i < params.length; i++) {
      if (!Number.isFinite(params[i])) return `params[${i}] is not finite`;
    }
    // A custom model is evaluated by its own kernel: there is no CPU implementation of it.
    const result = this.kernel
      ? await this.kernel.evaluate(params, this.test)
      : evaluate(this.layout, params, this.test);
    const seq = (this.latest?.seq ?? 0) + 1;
    const manifest: CheckpointManifest = {
      job: this.id,
      seq,
      samples: Math.max(pending.samples, this.latest?.samples ?? 0),
      createdAt: new Date().toISOString(),
      parameters: this.layout.size,
      worker: workerId,
      testLoss: result.loss,
      ...(result.accuracy !== undefined ? { testAccuracy: result.accuracy } : {}),
      ...(result.objective !== undefined ? { testObjective: result.objective } : {}),
      file: `${seq}.bin`,
    };
    await this.store.saveCheckpoint(manifest, params);
    this.latest = manifest;
    this.latestParams = params;
    this.lastCheckpointAt = Date.now();
    this.metrics.checkpoints.inc({ job: this.id });
    this.metrics.testLoss.set({ job: this.id }, result.loss);
    if (result.accuracy !== undefined)
      this.metrics.testAccuracy.set({ job: this.id }, result.accuracy);
    this.log.info(
      { seq, samples: manifest.samples, testLoss: result.loss, testAccuracy: result.accuracy },
      'checkpoint stored',
    );
    this.stopDue ??= stopCriterionMet(this.spec.stop, manifest);
    if (this.sync) {
      await this.sync.checkpointStored(manifest, params).catch((err: unknown) => {
        this.log.warn({ err, seq }, 'could not share the checkpoint with the cluster');
      });
    }
    let sps = 0;
    for (const w of this.workers.values()) sps += w.samplesPerSec;
    await this.appendRecord({ samplesPerSec: sps, checkpoint: manifest });
    return null;
  }

  /**
   * Stops the job once a stop criterion is met. Reaching `maxSamples` first asks a worker for
   * its state, so the job ends with a checkpoint of the final model; if none can answer in
   * time, it stops without.
   */
  private checkStop(outbox: JobOutbox, now: number): void {
    // In a cluster the leading process decides; it tells the others (setControl).
    if (this.state === 'stopped' || !this.leader) return;
    const { maxSamples } = this.spec.stop;
    if (this.stopDue === null && maxSamples !== undefined && this.samples >= maxSamples) {
      if (this.latest && this.latest.samples >= maxSamples) {
        this.stopDue = `reached ${maxSamples} samples`;
      } else if (this.finalStateRequestedAt === null) {
        this.finalStateRequestedAt = now;
        if (!this.pendingState && this.requestState(outbox) === null) {
          this.stopDue = `reached ${maxSamples} samples (no worker could send a final state)`;
        }
      } else if (now - this.finalStateRequestedAt > STATE_REQUEST_TIMEOUT_MS) {
        this.stopDue = `reached ${maxSamples} samples (the final state did not arrive)`;
      }
    }
    if (this.stopDue === null) return;
    const reason = this.stopDue;
    this.log.info({ reason, samples: this.samples }, 'stop criterion met; job stopped');
    void this.store.appendEvent(this.id, { event: 'stop', reason });
    this.setControl('stopped', this.learningRate, outbox);
  }

  private async appendRecord(opts: {
    samplesPerSec: number;
    checkpoint?: CheckpointManifest;
  }): Promise<void> {
    const c = opts.checkpoint;
    const record: MetricsRecord = {
      time: new Date().toISOString(),
      samples: this.samples,
      workers: this.workers.size,
      samplesPerSec: opts.samplesPerSec,
      ...(this.lastTrainLoss !== undefined ? { trainLoss: this.lastTrainLoss } : {}),
      ...(c ? { testLoss: c.testLoss, checkpoint: c.seq } : {}),
      ...(c?.testAccuracy !== undefined ? { testAccuracy: c.testAccuracy } : {}),
      ...(c?.testObjective !== undefined ? { testObjective: c.testObjective } : {}),
      perWorker: Object.fromEntries(
        [...this.workers.values()].map((w) => [
          w.id,
          {
            samplesPerSec: w.samplesPerSec,
            communicationPeriod: w.settings.communicationPeriod,
            blocksPerMessage: w.settings.blocksPerMessage,
            encoding: w.settings.encoding,
          },
        ]),
      ),
    };
    await this.persist(async () => {
      // Samples only grow, so the progress saved now covers the record taken above.
      await this.saveProgress();
      await this.store.appendMetrics(this.id, record);
    });
    for (const listener of this.recordListeners) listener(record);
  }
}

/** Runs asynchronous work one piece at a time, in the order it was handed over. */
class InOrder {
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

function sameSettings(a: WorkerSettings, b: WorkerSettings): boolean {
  return (
    a.communicationPeriod === b.communicationPeriod &&
    a.blocksPerMessage === b.blocksPerMessage &&
    a.encoding === b.encoding
  );
}

/** The job's starting balancer mode, from its spec (the admin may change it later). */
export function balancerFromSpec(spec: JobSpec): BalancerMode {
  const b = spec.balancer;
  return b.mode === 'fixed'
    ? {
        mode: 'fixed',
        settings: {
          communicationPeriod: b.communicationPeriod,
          blocksPerMessage: b.blocksPerMessage,
          encoding: b.encoding,
        },
      }
    : { mode: 'automatic' };
}

/** Which stop criterion of `stop` a checkpoint meets, or null when none. */
export function stopCriterionMet(
  stop: JobSpec['stop'],
  checkpoint: CheckpointManifest,
): string | null {
  if (
    stop.targetAccuracy !== undefined &&
    checkpoint.testAccuracy !== undefined &&
    checkpoint.testAccuracy >= stop.targetAccuracy
  ) {
    return `test accuracy ${checkpoint.testAccuracy.toFixed(4)} reached the target ${stop.targetAccuracy}`;
  }
  if (
    stop.targetObjective !== undefined &&
    checkpoint.testObjective !== undefined &&
    checkpoint.testObjective <= stop.targetObjective
  ) {
    return `test objective ${checkpoint.testObjective.toPrecision(4)} reached the target ${stop.targetObjective}`;
  }
  if (stop.targetLoss !== undefined && checkpoint.testLoss <= stop.targetLoss) {
    return `test loss ${checkpoint.testLoss.toPrecision(4)} reached the target ${stop.targetLoss}`;
  }
  if (stop.maxSamples !== undefined && checkpoint.samples >= stop.maxSamples) {
    return `reached ${stop.maxSamples} samples`;
  }
  return null;
}
