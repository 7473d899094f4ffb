/**
 * Scale-out over Redis (DESIGN §5): several `meshgrad serve --redis URL` processes act as one
 * job server. Two things go through Redis:
 *
 * - socket.io's Redis adapter, so an emit to a room reaches sockets on every process. Each
 *   volunteer's socket joins the room of its worker id (`workerRoom`), so signaling and relayed
 *   blocks reach a neighbour wherever it is connected.
 * - Each job's shared state, under `meshgrad:job:<id>:*`: the worker registry (so neighbours span
 *   processes and shards are balanced job-wide), the job-wide sample count and per-worker credit
 *   (so a tab that fails over is not credited twice), a leader lock (one process asks for state,
 *   evaluates, stores checkpoints and checks the stop criteria), the latest checkpoint, and the
 *   job's control state and balancer mode. Changes are announced on one pub/sub channel.
 *
 * A process that dies stops refreshing its registry entries; after WORKER_TTL_MS the others drop
 * them, and its leader lock expires after LEAD_TTL_MS. Its volunteers reconnect to another
 * process (through whatever balances connections in front, see docs/scale-out.md) and carry on
 * with their own parameters.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient, type RedisClientType } from 'redis';
import { z } from 'zod';
import type { JobState } from '@meshgrad/core';
import type { ClusterLink, Job, RemoteWorker, SharedJobState, WorkerEntry } from '../jobs/job.ts';
import type { Logger } from '../logger.ts';
import { parseCheckpointManifest, type BalancerMode, type CheckpointManifest } from '../store.ts';

/** Prefix of every key and channel meshgrad uses in Redis. */
export const REDIS_PREFIX = 'meshgrad';
/** A registry entry not refreshed for this long belongs to a process that is gone (ms). */
export const WORKER_TTL_MS = 10_000;
/** The leader lock lapses after this long without renewal (ms). */
export const LEAD_TTL_MS = 5_000;
/** Longest wait for Redis at startup (ms). */
export const CONNECT_TIMEOUT_MS = 10_000;

const EVENTS_CHANNEL = `${REDIS_PREFIX}:events`;
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
const registryEntrySchema = z.object({
  server: id,
  shard: z.number().int().min(0),
  contributed: z.number().min(0),
  lastSeen: z.number(),
});
const controlSchema = z.object({ state: jobState, learningRate: z.number().positive() });
const checkpointSchema = z.object({ manifest: z.unknown(), params: z.string() });
/** What processes tell each other; every message is checked before use, like any input. */
const eventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('workers'), server: id, job: id }),
  z.object({ type: z.literal('checkpoint'), server: id, job: id, seq: z.number().int() }),
  z.object({ type: z.literal('control'), server: id, job: id, control: controlSchema }),
  z.object({ type: z.literal('balancer'), server: id, job: id, balancer: balancerSchema }),
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
          await job.remoteWorkersChanged();
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
      }
    })();
    work.catch((err: unknown) =>
      this.log.warn({ err, event: event.type, job: event.job }, 'cluster event failed'),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const { sync } of this.jobs.values()) await sync.release().catch(() => undefined);
    for (const c of [this.eventsSub, this.adapterSub, this.data]) {
      try {
        await c.close();
      } catch {
        c.destroy();
      }
    }
  }
}

/** One job's shared state in Redis (see the module comment). */
class RedisClusterLink implements ClusterLink {
  readonly shared = true;
  remote: ReadonlyMap<string, RemoteWorker> = new Map();
  private leading = false;
  /** This process's worker ids at the last sync, to announce changes. */
  private lastLocal = '';
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

  /** What other processes already stored about the job. */
  async load(parameters: number): Promise<SharedJobState | null> {
    const [samples, control, balancer] = await Promise.all([
      this.data.get(this.key('samples')),
      this.data.get(this.key('control')),
      this.data.get(this.key('balancer')),
    ]);
    const checkpoint = await this.loadCheckpoint(parameters);
    const c = parseJson(controlSchema, control);
    const b = parseJson(balancerSchema, balancer);
    if (samples === null && !c && !b && !checkpoint) return null;
    return {
      samples: Number(samples ?? 0) || 0,
      ...(c ? { control: c } : {}),
      ...(b ? { balancer: b as BalancerMode } : {}),
      ...(checkpoint ? { checkpoint } : {}),
    };
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

  async sync(local: Iterable<WorkerEntry>): Promise<boolean> {
    const now = Date.now();
    const workersKey = this.key('workers');
    const mine = new Map<string, string>();
    for (const w of local) {
      mine.set(
        w.id,
        JSON.stringify({
          server: this.server,
          shard: w.shard,
          contributed: w.contributed,
          lastSeen: now,
        }),
      );
    }
    if (mine.size > 0) await this.data.hSet(workersKey, Object.fromEntries(mine));
    const all = await this.data.hGetAll(workersKey);
    const next = new Map<string, RemoteWorker>();
    const gone: string[] = [];
    for (const [workerId, json] of Object.entries(all)) {
      const e = parseJson(registryEntrySchema, json);
      if (!e) {
        gone.push(workerId);
      } else if (e.server === this.server) {
        // Our own entry for a worker no longer here (a leave whose delete raced a refresh).
        if (!mine.has(workerId)) gone.push(workerId);
      } else if (now - e.lastSeen > WORKER_TTL_MS) {
        gone.push(workerId); // its process is gone
      } else if (!mine.has(workerId)) {
        next.set(workerId, {
          id: workerId,
          server: e.server,
          shard: e.shard,
          contributed: e.contributed,
        });
      }
    }
    if (gone.length > 0) await this.data.hDel(workersKey, gone);
    // Tell the others at once when our own workers changed, rather than at their next tick.
    const localIds = [...mine.keys()].sort().join();
    if (localIds !== this.lastLocal) {
      this.lastLocal = localIds;
      this.announceWorkers();
    }
    const before = this.remote;
    this.remote = next;
    const changed = before.size !== next.size || [...next.keys()].some((k) => !before.has(k));
    return changed;
  }

  /** Announces a change of this process's workers (after a join's registry refresh). */
  announceWorkers(): void {
    this.publish({ type: 'workers', server: this.server, job: this.jobId });
  }

  workerLeft(workerId: string): void {
    const workersKey = this.key('workers');
    void (async () => {
      const e = parseJson(registryEntrySchema, await this.data.hGet(workersKey, workerId));
      // Only our own entry: the tab may already have failed over to another process.
      if (e?.server === this.server) await this.data.hDel(workersKey, workerId);
      this.announceWorkers();
    })().catch((err: unknown) => this.log.warn({ err }, 'could not unregister a worker'));
  }

  async credited(workerId: string): Promise<number | null> {
    const v = await this.data.hGet(this.key('credited'), workerId);
    const n = v === null || v === undefined ? NaN : Number(v);
    return Number.isFinite(n) ? n : null;
  }

  async addSamples(workerId: string, credit: number, cumulative: number): Promise<number> {
    const [total] = await this.data
      .multi()
      .incrBy(this.key('samples'), Math.round(credit))
      .hSet(this.key('credited'), workerId, String(cumulative))
      .exec();
    return Number(total);
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
