import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  initParameters,
  parameterLayout,
  type Dataset,
  type DeviceInfo,
  type JobInfo,
  type JobState,
  type ModelTraffic,
  type ParameterLayout,
  type Stats,
} from '@meshgrad/core';
import type { Logger } from '../logger.ts';
import type { ServerMetrics } from '../metrics.ts';
import type { BalancerMode, CheckpointManifest, DataStore, MetricsRecord } from '../store.ts';
import { AutoBalancing } from './balancing.ts';
import { Checkpoints } from './checkpoints.ts';
import { LocalClusterLink, type ClusterLink, type SharedJobState } from './cluster-link.ts';
import { openCustomKernel, type CustomKernel } from './custom-kernel.ts';
import { buildJobData, Evaluator, type BuiltJobData } from '../workers/job-data.ts';
import { coreModelSpec, type JobSpec } from './job-spec.ts';
import { DETACHED_OUTBOX, type JobOutbox } from './outbox.ts';
import { Progress } from './progress.ts';
import { Roster, type Throughput, type WorkerEntry } from './roster.ts';
import { SyncRounds } from './sync-rounds.ts';
import { keepRefusals } from './suspects.ts';
import { AsgdTraining, SyncTraining } from './training.ts';

export { loadJobData } from './data.ts';
export { balancerFromSpec } from './balancing.ts';
export { STATE_REQUEST_TIMEOUT_MS, SYNC_SERVER_WORKER, stopCriterionMet } from './checkpoints.ts';
export type { Ban, ClusterLink, RemoteWorker, SharedJobState } from './cluster-link.ts';
export type { JobOutbox } from './outbox.ts';
export { METRICS_RECORD_INTERVAL_MS } from './progress.ts';
export { WORKER_STALE_MS, type WorkerBalance, type WorkerEntry } from './roster.ts';

/** Banned worker ids a job remembers; the oldest ban is forgotten first beyond this. */
export const MAX_BANNED_WORKERS = 10_000;

/**
 * One training job on this server. The job keeps its spec, data, shards and the tick; the
 * rest lives in its rooms: the roster (workers, neighbours), the automatic balancing, the
 * progress (samples, credit, metrics history), the checkpoints (with the stop criteria), the
 * training mode (ASGD or sync) and the cluster link (a local one when this process runs alone).
 */
export class Job {
  readonly layout: ParameterLayout;
  state: JobState = 'running';
  learningRate: number;
  /** A custom model's compiled gradient kernel; null for built-in models. */
  kernel: CustomKernel | null = null;
  readonly roster: Roster;
  readonly progress: Progress;
  readonly checkpoints: Checkpoints;
  private readonly balancing: AutoBalancing;
  /** ASGD or sync; set for good when the job opens. */
  training: AsgdTraining | SyncTraining;
  private link: ClusterLink = new LocalClusterLink();
  /** Whether this process leads the job in its cluster (always true alone). */
  leader = true;
  private outbox: JobOutbox = DETACHED_OUTBOX;
  /** Where each report's credit goes beyond the job's count: the credit book (credit/book.ts). */
  onCredit: (workerId: string, report: { claimed: number; credited: number }) => void = () => {};
  private readonly shards: readonly { count: number; bytes: Uint8Array; etag: string }[];
  private readonly specHash: string;
  /** Evaluates checkpoints off the event loop (workers/job-data.ts). */
  private readonly evaluator: Evaluator;
  private initial: Float32Array | null = null;
  /** Worker ids the host banned, oldest first (see `ban`). */
  private readonly bannedIds = new Set<string>();
  /** Volunteer identities the host banned with one of their workers, oldest first. */
  private readonly bannedIdentities = new Set<string>();

  readonly train: Dataset;
  readonly test: Dataset;

  private constructor(
    readonly spec: JobSpec,
    data: BuiltJobData,
    private readonly store: DataStore,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
  ) {
    this.layout = parameterLayout(coreModelSpec(spec.model), spec.blockSize);
    this.learningRate = spec.learningRate;
    this.specHash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
    this.train = data.train;
    // A custom model's kernel hands the test set to the GPU, which takes no shared memory.
    this.test = spec.model.kind === 'custom' ? unshared(data.test) : data.test;
    this.shards = data.shards.map((s, i) => ({ ...s, etag: `"${this.specHash}-shard-${i}"` }));
    this.evaluator = new Evaluator(spec, data.test);
    // Sync mode exchanges nothing between workers (the server's rounds carry the model): no ring.
    this.roster = new Roster(spec.shards, spec.training.mode === 'sync' ? 0 : spec.neighbours);
    this.balancing = new AutoBalancing(spec, this.modelTraffic(), log);
    this.progress = new Progress(
      spec.id,
      store,
      metrics,
      this.roster,
      this.roster.work,
      () => ({
        state: this.state,
        learningRate: this.learningRate,
        balancer: this.balancing.mode,
        banned: [...this.bannedIds],
        bannedIdentities: [...this.bannedIdentities],
      }),
      log,
    );
    this.checkpoints = new Checkpoints({
      spec,
      layout: this.layout,
      test: this.test,
      store,
      metrics,
      log,
      progress: this.progress,
      roster: this.roster,
      kernel: () => this.kernel,
      evaluator: this.evaluator,
      initialParams: () => this.initialParams(),
      link: () => this.link,
      outbox: () => this.outbox,
      stopped: () => this.state === 'stopped',
    });
    this.training = new AsgdTraining(spec.id, this.checkpoints);
  }

  /**
   * Loads data and resumes from the data directory when the job ran before. The data is built
   * in a worker thread (docs/design.md §8): a large dataset does not stall the server.
   */
  static async open(
    spec: JobSpec,
    store: DataStore,
    metrics: ServerMetrics,
    log: Logger,
  ): Promise<Job> {
    const jobLog = log.child({ job: spec.id });
    jobLog.debug('building the job data');
    const data = await buildJobData(spec);
    jobLog.debug({ samples: data.train.count }, 'job data built');
    const job = new Job(spec, data, store, metrics, jobLog);
    if (spec.model.kind === 'custom') {
      job.kernel = await openCustomKernel(spec, job.layout, job.initialParams(), data.train);
    }
    await store.saveSpec(spec.id, spec);
    const progress = await store.loadProgress(spec.id);
    const latest = await store.latestCheckpoint(spec.id);
    if (latest) job.checkpoints.restore(latest, await store.readCheckpoint(latest));
    if (progress) {
      job.progress.restore(progress);
      job.state = progress.state;
      job.learningRate = progress.learningRate;
      if (progress.balancer) job.balancing.mode = progress.balancer;
      job.restoreBans(progress.banned, progress.bannedIdentities);
    }
    if (spec.training.mode === 'sync') job.training = job.createSyncTraining();
    // Never report fewer samples than the newest checkpoint already recorded.
    if (latest) job.progress.raiseTo(latest.samples);
    job.log.info(
      { samples: job.samples, checkpoint: latest?.seq ?? null, state: job.state },
      latest ? 'job resumed from checkpoint' : 'job created',
    );
    return job;
  }

  private createSyncTraining(): SyncTraining {
    const rounds = new SyncRounds({
      jobId: this.id,
      params: this.checkpointParams().params,
      roundTimeoutMs: this.spec.training.roundTimeoutSec * 1000,
      participants: () => this.roster.active(),
      running: () => this.state === 'running',
      learningRate: () => this.learningRate,
      send: (workerId, message) => this.outbox.syncRound?.(workerId, message),
      onRound: (r) => {
        if (r.timedOut > 0 || r.contributors === 0) {
          this.log.debug({ ...r }, 'sync round finished short');
        }
      },
      log: this.log,
    });
    return new SyncTraining(rounds, this.checkpoints);
  }

  /** Hands the job the socket layer's outbox, once: every message to workers goes through it. */
  attach(outbox: JobOutbox): void {
    this.outbox = outbox;
  }

  get id(): string {
    return this.spec.id;
  }

  /** Samples processed by all workers since the job was created. */
  get samples(): number {
    return this.progress.samples;
  }

  /** The workers connected to this process, by id. */
  get workers(): ReadonlyMap<string, WorkerEntry> {
    return this.roster.workers;
  }

  /** The latest checkpoint, or null before the first. */
  get latest(): CheckpointManifest | null {
    return this.checkpoints.latest;
  }

  /** How workers' communication settings are chosen; see `setBalancer`. */
  get balancer(): BalancerMode {
    return this.balancing.mode;
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
      merge: spec.training.merge,
      guard: spec.training.guard,
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

  /** The job's training throughput as its workers last reported it. */
  throughput(): Throughput {
    return this.roster.throughput();
  }

  /** Shard bytes in the binary dataset format; the ETag changes only with the spec. */
  shard(index: number): { bytes: Uint8Array; etag: string } | null {
    return this.shards[index] ?? null;
  }

  shardCount(): number {
    return this.shards.length;
  }

  shardSize(index: number): number {
    return this.shards[index]?.count ?? 0;
  }

  /** Ends the job's worker thread; the job answers no more evaluations. */
  close(): Promise<void> {
    return this.evaluator.close();
  }

  /** The latest checkpoint's parameters, or the job's seeded initial ones before the first. */
  checkpointParams(): { params: Float32Array; manifest: CheckpointManifest | null } {
    const c = this.checkpoints.current();
    return c ? c : { params: this.initialParams(), manifest: null };
  }

  /** Seeded initial parameters, the same on every server that runs this spec. */
  initialParams(): Float32Array {
    this.initial ??= initParameters(this.layout, this.spec.seed, this.train);
    return this.initial;
  }

  /** The model's shape as far as the balancer's traffic goes. */
  modelTraffic(): ModelTraffic {
    return { blockCount: this.layout.blockCount, parameterCount: this.layout.size };
  }

  /**
   * Adds a worker (or re-attaches a reconnecting one) and renews the neighbours the join
   * changes: O(k log N), not O(N) (see `Roster`).
   */
  join(
    workerId: string | undefined,
    socketId: string,
    device: DeviceInfo,
    identity?: string,
  ): WorkerEntry {
    const id =
      workerId && !this.roster.has(workerId) ? workerId : `w-${randomBytes(6).toString('hex')}`;
    const link = this.link;
    const entry = this.roster.add(
      id,
      socketId,
      device,
      this.balancing.settingsForNewWorker(),
      link.remote,
    );
    if (identity !== undefined) entry.identity = identity;
    this.progress.workerJoined(id);
    this.metrics.workers.set({ job: this.id }, this.roster.size);
    this.log.info({ worker: id, backend: device.backend, shard: entry.shard }, 'worker joined');
    // A tab that failed over from another process keeps counting its samples: what that
    // process credited must not be credited again here.
    if (link.shared && !this.progress.hasCredit(id)) {
      // Not awaited, and never unhandled (an unhandled rejection ends the process): on a
      // failure the worker is credited from here on, and the next tick syncs again.
      link.credited(id).then(
        (c) => {
          if (c !== null) this.progress.seedCredit(id, c);
        },
        (err: unknown) => this.log.warn({ err, worker: id }, 'could not read shared credit'),
      );
    }
    // One registry entry, not every worker's: the others learn of it from an announcement, and
    // this process learns of theirs at its tick's sync (a join is O(1) in the cluster).
    link.workerJoined(entry);
    void this.store.appendEvent(this.id, { event: 'join', worker: id, backend: device.backend });
    this.renewTouchedNeighbours(id);
    return entry;
  }

  leave(workerId: string, reason: string): void {
    if (this.removeWorker(workerId, reason)) this.renewTouchedNeighbours();
  }

  /** A worker's departure except the renewal of the others' neighbours; whether it was here. */
  private removeWorker(workerId: string, reason: string): boolean {
    if (!this.roster.remove(workerId)) return false;
    this.training.workerLeft(workerId);
    this.metrics.workers.set({ job: this.id }, this.roster.size);
    this.checkpoints.workerLeft(workerId);
    this.progress.workerLeft(workerId);
    this.log.info({ worker: workerId, reason }, 'worker left');
    void this.store.appendEvent(this.id, { event: 'leave', worker: workerId, reason });
    this.link.workerLeft(workerId);
    return true;
  }

  /**
   * Bans a worker connected to this process (docs/design.md §8.2): it leaves the job at once,
   * its neighbours get lists without it (so their tabs close the links to it), it is told why
   * and disconnected, and a hello asking for its id again is refused; so is any hello proving
   * the identity it proved, whatever worker id it asks for. Every process of the cluster gets the
   * ban. Whether it was here.
   */
  ban(workerId: string, message: string): boolean {
    const w = this.roster.get(workerId);
    if (!w) return false;
    this.addBans(workerId, w.identity);
    this.link.banned({ worker: workerId, ...(w.identity ? { identity: w.identity } : {}) });
    this.expel(workerId, message);
    return true;
  }

  /**
   * The host bans a worker connected to another process of the cluster: every process refuses
   * it from now on, and the one holding it expels it and shares the identity it proved
   * (`applyBan` there). Whether the cluster lists it.
   */
  banRemote(workerId: string): boolean {
    if (!this.isRemote(workerId)) return false;
    this.addBans(workerId, undefined);
    this.link.banned({ worker: workerId });
    return true;
  }

  /**
   * A ban made on another process: refused here from now on, and a worker of this process it
   * names (by worker id or by the identity it proved) is expelled as by `ban`. The identity of
   * a worker expelled here goes to the others, which could not know it.
   */
  applyBan(ban: { readonly worker?: string; readonly identity?: string }, message: string): void {
    this.addBans(ban.worker, ban.identity);
    const expelled: WorkerEntry[] = [];
    for (const w of this.roster.workers.values()) {
      if (w.id === ban.worker || (ban.identity !== undefined && w.identity === ban.identity)) {
        expelled.push(w);
      }
    }
    for (const w of expelled) {
      const newIdentity = w.identity !== undefined && !this.bannedIdentities.has(w.identity);
      this.addBans(w.id, w.identity);
      if (newIdentity || w.id !== ban.worker) {
        this.link.banned({ worker: w.id, ...(w.identity ? { identity: w.identity } : {}) });
      }
      this.expel(w.id, message);
    }
  }

  private addBans(workerId: string | undefined, identity: string | undefined): void {
    const add = (set: Set<string>, value: string) => {
      set.delete(value); // newest last
      set.add(value);
      for (const old of set) {
        if (set.size <= MAX_BANNED_WORKERS) break;
        set.delete(old);
      }
    };
    if (workerId !== undefined) add(this.bannedIds, workerId);
    if (identity !== undefined) add(this.bannedIdentities, identity);
    // Saved with the progress at the next tick: a restart must not lift a ban.
    this.progress.changed();
  }

  private expel(workerId: string, message: string): void {
    this.removeWorker(workerId, 'banned');
    this.renewTouchedNeighbours();
    void this.store.appendEvent(this.id, { event: 'ban', worker: workerId });
    this.outbox.ban?.(workerId, message);
  }

  /**
   * The bans a saved progress file lists. The file is the host's own, but it is read as data:
   * only string ids of a sane length count, and at most `MAX_BANNED_WORKERS` of each, the newest.
   */
  private restoreBans(workers: unknown, identities?: unknown): void {
    const ids = (saved: unknown) =>
      Array.isArray(saved)
        ? saved
            .filter((id): id is string => typeof id === 'string' && id.length <= 200)
            .slice(-MAX_BANNED_WORKERS)
        : [];
    for (const id of ids(workers)) this.bannedIds.add(id);
    for (const id of ids(identities)) this.bannedIdentities.add(id);
  }

  /** Whether the host banned `workerId` (see `ban`). */
  isBanned(workerId: string): boolean {
    return this.bannedIds.has(workerId);
  }

  /** Whether the host banned a worker that proved `identity` (see `ban`). */
  isIdentityBanned(identity: string): boolean {
    return this.bannedIdentities.has(identity);
  }

  /** How many worker ids are banned from this job. */
  get bannedCount(): number {
    return this.bannedIds.size;
  }

  /** Whether `workerId` is a worker of this job, on this process or another. */
  hasWorker(workerId: string): boolean {
    return this.roster.has(workerId) || this.link.remote.has(workerId);
  }

  /** Whether `workerId` is a worker of this job connected to this process. */
  hasLocalWorker(workerId: string): boolean {
    return this.roster.has(workerId);
  }

  /** Whether `peer` is among the neighbours `workerId` (connected here) was given. */
  isNeighbour(workerId: string, peer: string): boolean {
    return this.roster.get(workerId)?.neighbours.includes(peer) ?? false;
  }

  /** Whether `workerId` is connected to another process of the cluster. */
  isRemote(workerId: string): boolean {
    return !this.roster.has(workerId) && this.link.remote.has(workerId);
  }

  /** A message from a worker shows it is alive. */
  touch(workerId: string): void {
    this.roster.touch(workerId);
  }

  /** The socket layer can reach a new worker now: in sync mode a round may start. */
  workerReachable(): void {
    this.training.kick();
  }

  /** Whether workers the balancer plans for keep the neighbours it chose (`Roster.renewTouched`). */
  private keepPlanned(): boolean {
    return this.balancing.choosesNeighbours(this.link.shared) && this.balancing.planning;
  }

  /** Renews the neighbours the joins and leaves since the last renewal changed (`Roster.renewTouched`). */
  private renewTouchedNeighbours(skip?: string): void {
    this.roster.renewTouched(this.keepPlanned(), this.outbox, skip);
  }

  /**
   * Renews every worker's neighbours over the ring of this process's and the cluster's workers
   * (`Roster.renewAll`): when the cluster's workers changed or who chooses neighbours did.
   */
  private renewNeighbours(): void {
    this.roster.renewAll(this.link.remote, this.keepPlanned(), this.outbox);
  }

  /**
   * One tick of the automatic balancer (DESIGN §3), in slices (`AutoBalancing.tick`). Does
   * nothing in fixed mode, for a stopped job, or in sync mode (no traffic between workers to
   * balance).
   */
  async balanceWorkers(nowS = performance.now() / 1000): Promise<void> {
    if (this.state === 'stopped' || !this.training.peerToPeer) return;
    const choose = this.balancing.choosesNeighbours(this.link.shared);
    const busyMs = await this.balancing.tick(this.roster, this.outbox, choose, nowS);
    if (busyMs !== null) this.metrics.balancerBusySeconds.observe({ job: this.id }, busyMs / 1000);
  }

  /** A worker's statistics report, as the socket layer validated it (see `recordStats`). */
  report(workerId: string, stats: Stats): void {
    const worker = this.roster.get(workerId);
    if (worker) this.recordStats(worker, stats);
  }

  /**
   * Takes a worker's statistics: credits its samples (see `Progress.credit`) and keeps its
   * latest figures. `nowS` is the arrival time on the clock `balanceWorkers` ticks with.
   */
  recordStats(worker: WorkerEntry, stats: Stats, nowS = performance.now() / 1000): void {
    this.onCredit(worker.id, this.progress.credit(worker, stats, this.link));
    worker.lastSeen = Date.now();
    worker.samplesPerSec = stats.samplesPerSec;
    worker.loss = stats.loss;
    worker.paused = stats.paused;
    worker.offered = stats.offered;
    worker.accepted = stats.accepted;
    worker.links = stats.links;
    keepRefusals(worker.refusals, stats.links);
    worker.sendBusyFraction = stats.sendBusyFraction;
    worker.reported = true;
    worker.statsFresh = true;
    worker.statsAtS = nowS;
    // Sync mode: a paused tab holds its round, so the barrier stops waiting for it.
    if (worker.paused) this.training.workerLeft(worker.id);
    else this.training.kick();
  }

  setControl(state: JobState, learningRate: number, fromCluster = false): void {
    this.state = state;
    this.learningRate = learningRate;
    this.progress.changed();
    for (const w of this.roster.workers.values()) this.outbox.control(w.id, state, learningRate);
    void this.store.appendEvent(this.id, { event: 'control', state, learningRate });
    if (!fromCluster) this.link.controlChanged(state, learningRate);
    this.training.kick();
  }

  /** Switches the balancer mode (see `AutoBalancing.setMode`); workers hear of it at once. */
  setBalancer(balancer: BalancerMode, fromCluster = false): void {
    this.balancing.setMode(balancer, this.roster, this.outbox);
    // Workers may hold neighbours the balancer chose, which no join or leave would renew now
    // that it plans afresh (or not at all): back to the ring, as the next tick starts from.
    this.renewNeighbours();
    this.progress.changed();
    void this.store.appendEvent(this.id, { event: 'balancer', ...balancer });
    if (!fromCluster) this.link.balancerChanged(balancer);
  }

  /** Asks for the model as a checkpoint (a worker's state, or sync mode's own); the request id. */
  requestState(): string | null {
    // A job that met its stop criterion ends with the checkpoint that met it.
    if (this.state === 'stopped') return null;
    return this.training.checkpoint();
  }

  /** A state upload answering `requestId` (see `Checkpoints.accept`); an error message or null. */
  acceptState(workerId: string, requestId: string, bytes: Uint8Array): Promise<string | null> {
    return this.checkpoints.accept(workerId, requestId, bytes);
  }

  /** Calls `listener` with every metrics record the job appends; returns an unsubscribe. */
  onRecord(listener: (record: MetricsRecord) => void): () => void {
    return this.progress.onRecord(listener);
  }

  /** Persists progress when it changed; resolves once it and every write before it is on disk. */
  flush(): Promise<void> {
    return this.progress.flush();
  }

  /** Periodic work: drop stale workers, update gauges, persist progress, ask for state, stop. */
  async tick(): Promise<void> {
    await this.clusterTick();
    this.training.tick();
    const now = Date.now();
    this.checkStop(now);
    // One renewal for all the stale workers: a network blip takes many workers at once, and
    // neighbours near two of them are renewed once.
    for (const w of this.roster.stale(now)) this.removeWorker(w.id, 'stale');
    this.renewTouchedNeighbours();
    const trainLoss = this.progress.trainLoss();
    await this.balanceWorkers();
    this.metrics.samplesPerSecond.set({ job: this.id }, this.throughput().samplesPerSec);
    if (trainLoss !== undefined) this.metrics.loss.set({ job: this.id }, trainLoss);

    await this.persistProgress(now);
    this.checkpoints.expireRequest(now);
    if (
      !this.checkpoints.requestPending &&
      this.leader &&
      this.state === 'running' &&
      this.checkpoints.due(now)
    ) {
      this.requestState();
    }
  }

  /**
   * Saves progress and appends the history record when due. A failed write must not cost the
   * rest of the tick (state requests, stop criteria): the store reports it once per run of
   * failures (write-health.ts, /healthz), progress stays unsaved and the next tick writes it.
   */
  private async persistProgress(now: number): Promise<void> {
    try {
      await this.flush();
      await this.progress.recordIfDue(now);
    } catch (err) {
      this.log.debug({ err }, 'progress not saved this tick');
    }
  }

  /** Stops the job once a stop criterion is met; in a cluster the leading process decides. */
  private checkStop(now: number): void {
    if (this.state === 'stopped' || !this.leader) return;
    const reason = this.checkpoints.stopReason(now, () => this.requestState());
    if (reason === null) return;
    this.log.info({ reason, samples: this.samples }, 'stop criterion met; job stopped');
    void this.store.appendEvent(this.id, { event: 'stop', reason });
    this.setControl('stopped', this.learningRate);
  }

  // ---------------------------------------------------------------------------------------------
  // Scale-out: the job's state shared with other server processes (scale/cluster.ts)

  /**
   * Joins the job to its cluster: from now on neighbours span processes, samples are counted
   * job-wide, and only the leading process checkpoints. `shared` is what the cluster already
   * knows about the job (from processes that ran it before), adopted where it is newer.
   */
  async joinCluster(link: ClusterLink, shared: SharedJobState | null): Promise<void> {
    this.link = link;
    this.leader = false;
    if (this.training.kind === 'sync') {
      this.log.warn('sync mode runs on one server process: each process runs its own rounds');
    }
    // Neighbours span processes from now on: a balancer made alone would choose them.
    this.balancing.restart();
    this.renewNeighbours();
    if (shared) {
      this.progress.raiseTo(shared.samples);
      if (shared.control) {
        this.state = shared.control.state;
        this.learningRate = shared.control.learningRate;
      }
      if (shared.balancer) this.balancing.mode = shared.balancer;
      for (const worker of shared.bans?.workers ?? []) this.addBans(worker, undefined);
      for (const identity of shared.bans?.identities ?? []) this.addBans(undefined, identity);
      if (shared.checkpoint) {
        await this.adoptCheckpoint(shared.checkpoint.manifest, shared.checkpoint.params);
      }
      this.progress.changed();
    }
    // What this process knows from its own data directory and the cluster does not (a cluster
    // restarted on an empty Redis): share it, so the processes agree.
    await link.seedSamples(this.samples);
    if (!shared?.control) link.controlChanged(this.state, this.learningRate);
    // Bans this process made alone (its progress file) hold cluster-wide too.
    const known = {
      workers: new Set(shared?.bans?.workers),
      identities: new Set(shared?.bans?.identities),
    };
    const ownBans = [
      ...[...this.bannedIds].filter((w) => !known.workers.has(w)).map((worker) => ({ worker })),
      ...[...this.bannedIdentities]
        .filter((i) => !known.identities.has(i))
        .map((identity) => ({ identity })),
    ];
    if (ownBans.length > 0) link.banned(...ownBans);
    const own = this.checkpoints.current();
    if (own && (shared?.checkpoint?.manifest.seq ?? 0) < own.manifest.seq) {
      await link.checkpointStored(own.manifest, own.params);
    }
  }

  /** A checkpoint another process stored: kept here too, so this process serves and resumes from it. */
  adoptCheckpoint(manifest: CheckpointManifest, params: Float32Array): Promise<void> {
    return this.checkpoints.adopt(manifest, params);
  }

  /** Another process changed the workers of this job: renew the neighbours of ours. */
  async remoteWorkersChanged(): Promise<void> {
    if (await this.link.sync(this.roster.workers)) this.remoteChanged();
  }

  /**
   * The link's remote workers changed: the ring takes the ids that came and went and the workers
   * near them are renewed (`Roster.remoteChanged`); a large change renews every worker.
   */
  private remoteChanged(): void {
    if (this.roster.remoteChanged(this.link.remote)) this.renewTouchedNeighbours();
    else this.renewNeighbours();
  }

  /** One tick's cluster work: registry, job-wide samples, leadership. */
  private async clusterTick(): Promise<void> {
    const link = this.link;
    try {
      if (await link.sync(this.roster.workers)) this.remoteChanged();
      this.progress.raiseTo(await link.samples());
      // Only a process with a worker that can answer a state request may lead.
      const leading = await link.lead(this.roster.canAnswerStateRequest());
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
}

/** A copy of `ds` in ordinary (unshared) memory. */
function unshared(ds: Dataset): Dataset {
  return { ...ds, x: ds.x.slice(), labels: ds.labels ? ds.labels.slice() : null };
}
