/**
 * Scale-out over Redis (DESIGN §5): several `meshgrad serve --redis URL` processes act as one
 * job server. Two things go through Redis:
 *
 * - socket.io's Redis adapter, so an emit to a room reaches sockets on every process. Each
 *   volunteer's socket joins the room of its worker id (`workerRoom`), so signaling and relayed
 *   blocks reach a neighbour wherever it is connected.
 * - Each job's shared state, under `meshgrad:job:<id>:*`: the worker registry (so neighbours span
 *   processes and shards are balanced job-wide: one entry per worker, written once at its join,
 *   a version counter that every change raises, and each process's heartbeat), the job-wide
 *   sample count and per-worker credit
 *   (so a tab that fails over is not credited twice), a leader lock (one process asks for state,
 *   evaluates, stores checkpoints and checks the stop criteria), the latest checkpoint, and the
 *   job's control state and balancer mode. Changes are announced on one pub/sub channel.
 *
 * A process that dies stops its heartbeat; after WORKER_TTL_MS the others drop its workers, and
 * its leader lock expires after LEAD_TTL_MS. Its volunteers reconnect to another
 * process (through whatever balances connections in front, see docs/scale-out.md) and carry on
 * with their own parameters.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient, type RedisClientType } from 'redis';
import { z } from 'zod';
import type { JobState } from '@meshgrad/core';
import type {
  Ban,
  ClusterLink,
  Job,
  RemoteWorker,
  SharedJobState,
  WorkerEntry,
} from '../jobs/job.ts';
import type { Logger } from '../logger.ts';
import { parseCheckpointManifest, type BalancerMode, type CheckpointManifest } from '../store.ts';

/** Prefix of every key and channel meshgrad uses in Redis. */
export const REDIS_PREFIX = 'meshgrad';
/** The workers of a process whose heartbeat is this old belong to a process that is gone (ms). */
export const WORKER_TTL_MS = 10_000;
/** A process's registry changes are announced at most this often (ms): joins come in bursts. */
export const ANNOUNCE_MS = 200;
/** Another process's announcements are followed by one registry read at most this often (ms). */
export const REFRESH_GAP_MS = 500;
/** Credited samples go to Redis in one batch this often (ms), not a command per report. */
export const CREDIT_FLUSH_MS = 100;
/** The leader lock lapses after this long without renewal (ms). */
export const LEAD_TTL_MS = 5_000;
/** Longest wait for Redis at startup (ms). */
export const CONNECT_TIMEOUT_MS = 10_000;

const EVENTS_CHANNEL = `${REDIS_PREFIX}:events`;
/** What a tab expelled by a ban made on another process is told. */
const BANNED_MESSAGE = 'banned by the host';
/** Bans read from Redis at most, of each kind (as `MAX_BANNED_WORKERS` in one process). */
const MAX_SHARED_BANS = 10_000;
/** Largest event we accept from the channel (a checkpoint's parameters travel in a key). */
const MAX_EVENT_BYTES = 64 * 1024;

/** The socket.io room of a worker: every process can emit to it through the adapter. */
export function workerRoom(workerId: string): string {
  return `worker:${workerId}`;
}

type RedisClient = RedisClientType;

const id = z.string().min(1).max(128);
const jobState = z.enum(['running', 'paused', 'stopped']);
const settingsSchema = z.object({
  communicationPeriod: z.number().int().positive(),
  blocksPerMessage: z.number().int().positive(),
  encoding: z.enum(['f32', 'f16', 'int8']),
});
const balancerSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('automatic') }),
  z.object({ mode: z.literal('fixed'), settings: settingsSchema }),
]);
/** A registry entry: `<shard> <server>` (compact: at 30,000 workers the registry is read whole). */
function registryValue(server: string, shard: number): string {
  return `${shard} ${server}`;
}

function parseRegistryValue(value: string): { shard: number; server: string } | null {
  const m = /^(\d{1,9}) (\S{1,128})$/.exec(value);
  return m ? { shard: Number(m[1]), server: m[2] as string } : null;
}
const controlSchema = z.object({ state: jobState, learningRate: z.number().positive() });
const checkpointSchema = z.object({ manifest: z.unknown(), params: z.string() });
/** What processes tell each other; every message is checked before use, like any input. */
const eventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('workers'), server: id, job: id }),
  z.object({ type: z.literal('checkpoint'), server: id, job: id, seq: z.number().int() }),
  z.object({ type: z.literal('control'), server: id, job: id, control: controlSchema }),
  z.object({ type: z.literal('balancer'), server: id, job: id, balancer: balancerSchema }),
  // One ban, or (neither field) "read the bans again": a process shared many at once.
  z.object({
    type: z.literal('ban'),
    server: id,
    job: id,
    worker: id.optional(),
    identity: id.optional(),
  }),
]);
type ClusterEvent = z.infer<typeof eventSchema>;

function parseJson<T>(schema: z.ZodType<T>, text: string | null | undefined): T | null {
  if (text === null || text === undefined) return null;
  try {
    const r = schema.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

function encodeParams(params: Float32Array): string {
  return Buffer.from(params.buffer, params.byteOffset, params.byteLength).toString('base64');
}

function decodeParams(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  const out = new Float32Array(Math.floor(bytes.byteLength / 4));
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.length * 4));
  return out;
}

/**
 * `client` with a rejection handler on every promise its methods return: the handler logs the
 * failure (once per command), and whoever awaits the promise still sees the rejection. Methods
 * run on the client itself, not the proxy (node-redis keeps private fields).
 */
export function handledRejections<T extends object>(client: T, log: Logger, name: string): T {
  return new Proxy(client, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (result instanceof Promise) {
          result.catch((err: unknown) =>
            log.warn({ err, client: name, command: String(prop) }, 'redis command failed'),
          );
        }
        return result;
      };
    },
  });
}

/** This process's membership in a Redis cluster of meshgrad servers. */
export class Cluster {
  /** This process's id in the cluster. */
  readonly server = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly jobs = new Map<string, { job: Job; sync: RedisClusterLink }>();
  private closing = false;
  private closed = false;

  private constructor(
    private readonly data: RedisClient,
    private readonly adapterSub: RedisClient,
    private readonly eventsSub: RedisClient,
    private readonly log: Logger,
  ) {}

  /** Connects to Redis at `url` (e.g. `redis://localhost:6379`); throws when it cannot. */
  static async connect(url: string, log: Logger): Promise<Cluster> {
    const client = () =>
      createClient({
        url,
        socket: {
          connectTimeout: CONNECT_TIMEOUT_MS,
          // Keep retrying after a lost connection, with a bounded back-off.
          reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000),
        },
      });
    // Subscribed connections can do nothing else: one for commands, one per subscriber.
    const data = client();
    const adapterSub = client();
    const eventsSub = client();
    const clog = log.child({ redis: url.replace(/\/\/[^@]*@/, '//***@') });
    for (const [name, client] of [
      ['data', data],
      ['adapter', adapterSub],
      ['events', eventsSub],
    ] as const) {
      client.on('error', (err: unknown) => clog.warn({ err, client: name }, 'redis error'));
    }
    try {
      await Promise.all([data.connect(), adapterSub.connect(), eventsSub.connect()]);
    } catch (err) {
      for (const c of [data, adapterSub, eventsSub]) c.destroy();
      throw new Error(`cannot connect to Redis at ${url}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const cluster = new Cluster(data, adapterSub, eventsSub, clog);
    await eventsSub.subscribe(EVENTS_CHANNEL, (message: string) => cluster.onEvent(message));
    clog.info({ server: cluster.server }, 'joined the Redis cluster');
    return cluster;
  }

  /**
   * socket.io's Redis adapter on these connections. The adapter publishes without waiting for
   * the reply. When Redis stalls under load (relayed blocks fill the socket, so commands wait
   * unwritten in node-redis's queue), node-redis fails each waiting command after its 5 s
   * command timeout, and in the adapter that was an unhandled rejection, which ended the process
   * (seen in e2e scale.spec on a loaded machine). So the adapter gets clients whose every promise
   * has a handler that logs the failure; replies it does wait for still reach it.
   */
  socketAdapter(): ReturnType<typeof createAdapter> {
    return createAdapter(
      handledRejections(this.data, this.log, 'adapter'),
      handledRejections(this.adapterSub, this.log, 'adapter-sub'),
      { key: `${REDIS_PREFIX}:socket.io` },
    );
  }

  isAttached(job: Job): boolean {
    return this.jobs.get(job.id)?.job === job;
  }

  /** Joins `job` to the cluster, adopting what the cluster already knows about it. */
  async attach(job: Job): Promise<void> {
    const sync = new RedisClusterLink(
      job.id,
      this.server,
      this.data,
      (e) => this.publish(e),
      this.log,
    );
    this.jobs.set(job.id, { job, sync });
    await job.joinCluster(sync, await sync.load(job.layout.size));
  }

  private publish(event: ClusterEvent): void {
    if (this.closed) return;
    this.data.publish(EVENTS_CHANNEL, JSON.stringify(event)).catch((err: unknown) => {
      this.log.warn({ err, event: event.type }, 'could not publish a cluster event');
    });
  }

  private onEvent(message: string): void {
    if (message.length > MAX_EVENT_BYTES) return;
    const event = parseJson(eventSchema, message);
    if (!event) {
      this.log.warn('ignored a malformed cluster event');
      return;
    }
    if (event.server === this.server) return;
    const entry = this.jobs.get(event.job);
    if (!entry) return;
    const { job, sync } = entry;
    const work = (async () => {
      switch (event.type) {
        case 'workers':
          // Announcements come in bursts (every process's joins): one read follows many.
          sync.refreshSoon(() => job.remoteWorkersChanged());
          return;
        case 'checkpoint': {
          const c = await sync.loadCheckpoint(job.layout.size);
          if (c) await job.adoptCheckpoint(c.manifest, c.params);
          return;
        }
        case 'control':
          if (job.state !== 'stopped') {
            job.setControl(event.control.state, event.control.learningRate, true);
            await job.flush();
          }
          return;
        case 'balancer':
          job.setBalancer(event.balancer, true);
          return;
        case 'ban': {
          const bans =
            event.worker !== undefined || event.identity !== undefined
              ? [
                  {
                    ...(event.worker !== undefined ? { worker: event.worker } : {}),
                    ...(event.identity !== undefined ? { identity: event.identity } : {}),
                  },
                ]
              : await sync.loadBans();
          for (const ban of bans) job.applyBan(ban, BANNED_MESSAGE);
          return;
        }
      }
    })();
    work.catch((err: unknown) =>
      this.log.warn({ err, event: event.type, job: event.job }, 'cluster event failed'),
    );
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const { sync } of this.jobs.values()) {
      await sync.flushCredit();
      sync.stop();
      await sync.release().catch(() => undefined);
      await sync
        .leave()
        .catch((err: unknown) => this.log.warn({ err }, 'could not leave the worker registry'));
    }
    this.closed = true;
    for (const c of [this.eventsSub, this.adapterSub, this.data]) {
      try {
        await c.close();
      } catch {
        c.destroy();
      }
    }
  }
}

/** Credit reported since the last flush (`addSamples`), and who waits for the job's total. */
interface CreditBatch {
  credit: number;
  readonly cumulative: Map<string, string>;
  readonly waiters: Array<{ resolve: (total: number) => void; reject: (err: unknown) => void }>;
}

/** One job's shared state in Redis (see the module comment). */
export class RedisClusterLink implements ClusterLink {
  readonly shared = true;
  remote: ReadonlyMap<string, RemoteWorker> = new Map();
  private leading = false;
  /** The shard each local worker's registry entry holds, as this process last wrote it. */
  private readonly written = new Map<string, number>();
  /** The registry's version and the live processes at the last whole read. */
  private readVersion: string | null = null;
  private readServers = '';
  /** Ids this process unregistered whose delete failed: the next sync reads the registry whole. */
  private unregisterFailed = false;
  private announceTimer: NodeJS.Timeout | null = null;
  private refresh: { pending: boolean } | null = null;
  private creditBatch: CreditBatch | null = null;
  private stopped = false;
  private readonly key: (name: string) => string;

  constructor(
    private readonly jobId: string,
    private readonly server: string,
    private readonly data: RedisClient,
    private readonly publish: (event: ClusterEvent) => void,
    private readonly log: Logger,
  ) {
    this.key = (name) => `${REDIS_PREFIX}:job:${jobId}:${name}`;
  }

  /** What other processes already stored about the job. Starts this process's heartbeat. */
  async load(parameters: number): Promise<SharedJobState | null> {
    await this.data.hSet(this.key('servers'), this.server, String(Date.now()));
    const [samples, control, balancer] = await Promise.all([
      this.data.get(this.key('samples')),
      this.data.get(this.key('control')),
      this.data.get(this.key('balancer')),
    ]);
    const checkpoint = await this.loadCheckpoint(parameters);
    const bans = await this.loadBans();
    const c = parseJson(controlSchema, control);
    const b = parseJson(balancerSchema, balancer);
    if (samples === null && !c && !b && !checkpoint && bans.length === 0) return null;
    return {
      samples: Number(samples ?? 0) || 0,
      ...(c ? { control: c } : {}),
      ...(b ? { balancer: b as BalancerMode } : {}),
      ...(checkpoint ? { checkpoint } : {}),
      ...(bans.length > 0
        ? {
            bans: {
              workers: bans.flatMap((x) => (x.worker !== undefined ? [x.worker] : [])),
              identities: bans.flatMap((x) => (x.identity !== undefined ? [x.identity] : [])),
            },
          }
        : {}),
    };
  }

  /**
   * The cluster's bans, oldest first: fields `worker:<id>` and `identity:<id>` of one hash, each
   * holding when it was made; malformed fields are skipped, and at most MAX_SHARED_BANS of each
   * kind are kept, the newest.
   */
  async loadBans(): Promise<Ban[]> {
    const all = await this.data.hGetAll(this.key('bans'));
    const parsed: Array<{ ban: Ban; at: number; kind: string }> = [];
    for (const [field, at] of Object.entries(all)) {
      const m = /^(worker|identity):(.{1,128})$/.exec(field);
      if (!m) continue;
      const kind = m[1] as 'worker' | 'identity';
      parsed.push({ ban: { [kind]: m[2] as string }, at: Number(at) || 0, kind });
    }
    parsed.sort((x, y) => x.at - y.at);
    const out: Ban[] = [];
    for (const kind of ['worker', 'identity']) {
      out.push(
        ...parsed
          .filter((p) => p.kind === kind)
          .slice(-MAX_SHARED_BANS)
          .map((p) => p.ban),
      );
    }
    return out;
  }

  banned(...bans: Ban[]): void {
    if (bans.length === 0) return;
    const now = String(Date.now());
    const fields: Record<string, string> = {};
    for (const b of bans) {
      if (b.worker !== undefined) fields[`worker:${b.worker}`] = now;
      if (b.identity !== undefined) fields[`identity:${b.identity}`] = now;
    }
    const one = bans.length === 1 ? bans[0] : undefined;
    this.data
      .hSet(this.key('bans'), fields)
      .then(() =>
        this.publish({
          type: 'ban',
          server: this.server,
          job: this.jobId,
          ...(one?.worker !== undefined ? { worker: one.worker } : {}),
          ...(one?.identity !== undefined ? { identity: one.identity } : {}),
        }),
      )
      .catch((err: unknown) => this.log.warn({ err }, 'could not share a ban'));
  }

  async loadCheckpoint(
    parameters: number,
  ): Promise<{ manifest: CheckpointManifest; params: Float32Array } | null> {
    const c = parseJson(checkpointSchema, await this.data.get(this.key('checkpoint')));
    const m = c ? parseCheckpointManifest(c.manifest) : null;
    if (!c || !m?.ok || m.manifest.job !== this.jobId) return null;
    const params = decodeParams(c.params);
    if (params.length !== parameters || m.manifest.parameters !== parameters) return null;
    return { manifest: m.manifest, params };
  }

  /**
   * Once a tick: the heartbeat, entries the registry lacks (a join whose write failed, or a
   * shard that changed), and the remote workers, read whole only when the registry's version or
   * the set of live processes changed since the last read. With 10,000 workers a process, a
   * steady cluster costs a few small commands a second, not a rewrite and read of every entry.
   */
  async sync(local: ReadonlyMap<string, WorkerEntry>): Promise<boolean> {
    const now = Date.now();
    const workersKey = this.key('workers');
    const versionKey = this.key('workers:version');
    const serversKey = this.key('servers');
    // Whether a worker is connected here now, when the reply is read: a worker that joined
    // while this sync waited on Redis has an entry this process wrote and must keep.
    const mine = (workerId: string) => local.has(workerId);
    const writes: Record<string, string> = {};
    const wrote: Array<[string, number]> = [];
    for (const w of local.values()) {
      if (this.written.get(w.id) !== w.shard) {
        writes[w.id] = registryValue(this.server, w.shard);
        wrote.push([w.id, w.shard]);
      }
    }
    const m = this.data.multi().hSet(serversKey, this.server, String(now));
    if (wrote.length > 0) m.hSet(workersKey, writes).incr(versionKey);
    m.get(versionKey).hGetAll(serversKey);
    const replies = await m.exec();
    for (const [workerId, shard] of wrote) this.written.set(workerId, shard);
    const version = String(replies[replies.length - 2] ?? '0');
    const heartbeats = (replies[replies.length - 1] ?? {}) as Record<string, string>;
    const live = new Set<string>();
    const dead: string[] = [];
    for (const [server, at] of Object.entries(heartbeats)) {
      if (now - Number(at) <= WORKER_TTL_MS) live.add(server);
      else dead.push(server);
    }
    const liveKey = [...live].sort().join();
    let leftover = false;
    for (const workerId of this.written.keys()) {
      if (!mine(workerId)) {
        leftover = true;
        break;
      }
    }
    if (
      version === this.readVersion &&
      liveKey === this.readServers &&
      !leftover &&
      !this.unregisterFailed
    ) {
      return false;
    }
    this.unregisterFailed = false;
    const all = await this.data.hGetAll(workersKey);
    const next = new Map<string, RemoteWorker>();
    const gone: string[] = [];
    for (const [workerId, value] of Object.entries(all)) {
      const e = parseRegistryValue(value);
      if (!e) {
        gone.push(workerId);
      } else if (e.server === this.server) {
        // Our own entry for a worker no longer here (a leave whose delete failed).
        if (!mine(workerId)) gone.push(workerId);
      } else if (!live.has(e.server)) {
        gone.push(workerId); // its process is gone
      } else if (!mine(workerId)) {
        next.set(workerId, { id: workerId, server: e.server, shard: e.shard });
      }
    }
    for (const workerId of this.written.keys()) {
      // A worker that left, or one whose entry the registry lost: another process took this
      // one for dead (its ticks stalled past WORKER_TTL_MS) and dropped its entries. The next
      // sync writes what the registry lacks.
      if (!mine(workerId) || all[workerId] === undefined) this.written.delete(workerId);
    }
    this.readVersion = version;
    this.readServers = liveKey;
    if (gone.length > 0 || dead.length > 0) {
      const clean = this.data.multi();
      if (gone.length > 0) clean.hDel(workersKey, gone).incr(versionKey);
      if (dead.length > 0) clean.hDel(serversKey, dead);
      await clean.exec();
      if (gone.length > 0) this.announceWorkers();
    }
    const before = this.remote;
    this.remote = next;
    const changed = before.size !== next.size || [...next.keys()].some((k) => !before.has(k));
    return changed;
  }

  /** Tells the other processes that this one's workers changed, once per `ANNOUNCE_MS` at most. */
  announceWorkers(): void {
    if (this.announceTimer !== null || this.stopped) return;
    this.announceTimer = setTimeout(() => {
      this.announceTimer = null;
      this.publish({ type: 'workers', server: this.server, job: this.jobId });
    }, ANNOUNCE_MS);
  }

  /**
   * Runs `refresh` (a sync after another process's announcement) now, or once after the one in
   * flight and `REFRESH_GAP_MS`, however many announcements came meanwhile.
   */
  refreshSoon(refresh: () => Promise<void>): void {
    if (this.refresh) {
      this.refresh.pending = true;
      return;
    }
    const state = { pending: false };
    this.refresh = state;
    void refresh()
      .catch((err: unknown) => this.log.warn({ err }, 'cluster refresh failed'))
      .then(() => new Promise((r) => setTimeout(r, REFRESH_GAP_MS)))
      .then(() => {
        this.refresh = null;
        if (state.pending && !this.stopped) this.refreshSoon(refresh);
      });
  }

  workerJoined(worker: WorkerEntry): void {
    const { id: workerId, shard } = worker;
    this.data
      .multi()
      .hSet(this.key('servers'), this.server, String(Date.now()))
      .hSet(this.key('workers'), workerId, registryValue(this.server, shard))
      .incr(this.key('workers:version'))
      .exec()
      .then(
        () => {
          this.written.set(workerId, shard);
          this.announceWorkers();
        },
        // The next tick's sync writes the entry the registry lacks.
        (err: unknown) => this.log.warn({ err, worker: workerId }, 'could not register a worker'),
      );
  }

  workerLeft(workerId: string): void {
    const workersKey = this.key('workers');
    this.written.delete(workerId);
    void (async () => {
      const value = await this.data.hGet(workersKey, workerId);
      const e = value === null || value === undefined ? null : parseRegistryValue(value);
      // Only our own entry: the tab may already have failed over to another process.
      if (e?.server !== this.server) return;
      await this.data.multi().hDel(workersKey, workerId).incr(this.key('workers:version')).exec();
      this.announceWorkers();
    })().catch((err: unknown) => {
      this.unregisterFailed = true;
      this.log.warn({ err }, 'could not unregister a worker');
    });
  }

  /**
   * A clean leave (the process shuts down): removes this process's heartbeat and the entries
   * still its own, and tells the others at once, so their volunteers are not given neighbours
   * that are gone until WORKER_TTL_MS says so. Entries of tabs that already failed over to
   * another process are left to it.
   */
  async leave(): Promise<void> {
    const workersKey = this.key('workers');
    const ids = [...this.written.keys()];
    this.written.clear();
    const ours: string[] = [];
    for (let i = 0; i < ids.length; i += 1_000) {
      const chunk = ids.slice(i, i + 1_000);
      const values = await this.data.hmGet(workersKey, chunk);
      chunk.forEach((workerId, j) => {
        const v = values[j];
        if (typeof v === 'string' && parseRegistryValue(v)?.server === this.server) {
          ours.push(workerId);
        }
      });
    }
    const m = this.data.multi().hDel(this.key('servers'), this.server);
    if (ours.length > 0) m.hDel(workersKey, ours);
    await m.incr(this.key('workers:version')).exec();
    this.publish({ type: 'workers', server: this.server, job: this.jobId });
  }

  /** Stops the timers (announcements, refreshes) of a process that leaves the cluster. */
  stop(): void {
    this.stopped = true;
    if (this.announceTimer !== null) clearTimeout(this.announceTimer);
    this.announceTimer = null;
  }

  async credited(workerId: string): Promise<number | null> {
    const v = await this.data.hGet(this.key('credited'), workerId);
    const n = v === null || v === undefined ? NaN : Number(v);
    return Number.isFinite(n) ? n : null;
  }

  /**
   * Credits samples job-wide: reports within `CREDIT_FLUSH_MS` go to Redis as one transaction
   * (10,000 volunteers report 10,000 times a second per process), each report's promise resolving
   * the job's total after it.
   */
  addSamples(workerId: string, credit: number, cumulative: number): Promise<number> {
    let batch = this.creditBatch;
    if (!batch) {
      batch = { credit: 0, cumulative: new Map(), waiters: [] };
      this.creditBatch = batch;
      setTimeout(() => void this.flushCredit(), CREDIT_FLUSH_MS);
    }
    batch.credit += credit;
    batch.cumulative.set(workerId, String(cumulative));
    const b = batch;
    return new Promise((resolve, reject) => b.waiters.push({ resolve, reject }));
  }

  /** Sends the credit batch now (also when the process leaves the cluster). */
  async flushCredit(): Promise<void> {
    const batch = this.creditBatch;
    if (!batch) return;
    this.creditBatch = null;
    try {
      const [total] = await this.data
        .multi()
        .incrBy(this.key('samples'), Math.round(batch.credit))
        .hSet(this.key('credited'), Object.fromEntries(batch.cumulative))
        .exec();
      for (const w of batch.waiters) w.resolve(Number(total));
    } catch (err) {
      for (const w of batch.waiters) w.reject(err);
    }
  }

  async samples(): Promise<number> {
    return Number((await this.data.get(this.key('samples'))) ?? 0) || 0;
  }

  async seedSamples(samples: number): Promise<void> {
    const current = await this.samples();
    if (samples > current)
      await this.data.incrBy(this.key('samples'), Math.round(samples - current));
  }

  async lead(canLead: boolean): Promise<boolean> {
    const key = this.key('leader');
    if (!canLead) {
      if (this.leading) await this.release();
      return false;
    }
    const took = await this.data.set(key, this.server, {
      condition: 'NX',
      expiration: { type: 'PX', value: LEAD_TTL_MS },
    });
    if (took === 'OK') {
      this.leading = true;
    } else if ((await this.data.get(key)) === this.server) {
      await this.data.pExpire(key, LEAD_TTL_MS);
      this.leading = true;
    } else {
      this.leading = false;
    }
    return this.leading;
  }

  /** Gives up the lead, if held, so another process can take it at once. */
  async release(): Promise<void> {
    this.leading = false;
    const key = this.key('leader');
    if ((await this.data.get(key)) === this.server) await this.data.del(key);
  }

  async checkpointStored(manifest: CheckpointManifest, params: Float32Array): Promise<void> {
    await this.data.set(
      this.key('checkpoint'),
      JSON.stringify({ manifest, params: encodeParams(params) }),
    );
    this.publish({ type: 'checkpoint', server: this.server, job: this.jobId, seq: manifest.seq });
  }

  controlChanged(state: JobState, learningRate: number): void {
    const control = { state, learningRate };
    this.data
      .set(this.key('control'), JSON.stringify(control))
      .then(() => this.publish({ type: 'control', server: this.server, job: this.jobId, control }))
      .catch((err: unknown) => this.log.warn({ err }, 'could not share a control change'));
  }

  balancerChanged(balancer: BalancerMode): void {
    this.data
      .set(this.key('balancer'), JSON.stringify(balancer))
      .then(() =>
        this.publish({
          type: 'balancer',
          server: this.server,
          job: this.jobId,
          balancer: balancer as z.infer<typeof balancerSchema>,
        }),
      )
      .catch((err: unknown) => this.log.warn({ err }, 'could not share a balancer change'));
  }
}
