import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server as SocketServer } from 'socket.io';
import { MAX_PAYLOAD_BYTES, trainingFlopsPerSample } from '@meshgrad/core';
import { createAdmin } from './admin/index.ts';
import type { TokenThrottleOptions } from './admin/auth.ts';
import { AddressLimits, type AddressLimitOptions } from './address-limits.ts';
import { CreditBook } from './credit/book.ts';
import { SpotChecks, type SpotCheckOptions } from './credit/spot-checks.ts';
import { createHttpHandler, type HttpContext } from './http.ts';
import { DEFAULT_JOB, JobSpecError, parseJobSpec, type JobSpec } from './jobs/job-spec.ts';
import { Job } from './jobs/job.ts';
import { createLogger, type Logger } from './logger.ts';
import { ServerMetrics } from './metrics.ts';
import { DataStore, type CheckpointRetention } from './store.ts';
import { checkIceOptions, iceConfigFor, type IceOptions } from './turn.ts';
import { Cluster } from './scale/cluster.ts';
import { socketParser, VolunteerHub, type VolunteerNamespace } from './volunteer.ts';
import { WriteHealth } from './write-health.ts';

/** How often jobs run their periodic work (ms). */
export const TICK_MS = 1_000;
/**
 * Connections the kernel may hold for the server to accept (the OS caps it at its own
 * `somaxconn`). Node's default, 511, overflowed while thousands of volunteers joined at once
 * and the event loop was busy: the dropped handshakes were retried by TCP for seconds, and the
 * shard and hello requests behind them timed out (docs/benchmarks.md, "Server load").
 */
export const LISTEN_BACKLOG = 4_096;

export interface ServerOptions extends IceOptions {
  /**
   * Let a hello ask for a worker id of its own choosing (still bound to its socket, never one a
   * live socket holds); default false: ids are issued by the server. For hosts that run and name
   * their own tabs, as the end-to-end tests do.
   */
  readonly namedWorkers?: boolean;
  /** TCP port; default 8080, 0 picks a free one. */
  readonly port?: number;
  /** Interface to listen on; default all (`0.0.0.0`). */
  readonly host?: string;
  /** Data directory; default `./.meshgrad`. */
  readonly dataDir?: string;
  /** Admin token; default `MESHGRAD_ADMIN_TOKEN`, else a random one kept in the data directory. */
  readonly adminToken?: string;
  /** Jobs to run; default the built-in MNIST MLP. Jobs found in the data directory resume too. */
  readonly jobs?: readonly unknown[];
  /** Built client directory; default `apps/client/dist` of this checkout. */
  readonly clientDir?: string | null;
  readonly logger?: Logger;
  readonly logLevel?: string;
  /**
   * Redis URL (e.g. `redis://localhost:6379`): share signaling and job state with the other
   * processes on the same Redis, so they act as one server (docs/scale-out.md). Default: alone.
   */
  readonly redis?: string;
  /**
   * Directories a job spec's data files may lie in, besides the data directory (the CLI adds
   * the folders of its `--job` files and `--allow-data-dir`). A path outside is a spec error.
   */
  readonly allowDataDirs?: readonly string[];
  /** Connection and hello limits per remote address (address-limits.ts defaults). */
  readonly addressLimits?: AddressLimitOptions;
  /** Wrong admin tokens per address before 429 (admin/auth.ts defaults). */
  readonly tokenThrottle?: TokenThrottleOptions;
  /** How often volunteers are spot-checked (credit/spot-checks.ts defaults). */
  readonly spotChecks?: SpotCheckOptions;
  /** Which checkpoints are kept; default the newest 10 and the best (store.ts). */
  readonly checkpointRetention?: CheckpointRetention;
}

export interface MeshgradServer {
  /** Base URL, e.g. `http://localhost:8080`. */
  readonly url: string;
  readonly port: number;
  readonly adminToken: string;
  readonly dataDir: string;
  readonly jobs: ReadonlyMap<string, Job>;
  readonly metrics: ServerMetrics;
  readonly http: HttpServer;
  readonly io: SocketServer;
  /** Asks a worker of `jobId` for its state now; resolves the request id, or null if none can answer. */
  requestCheckpoint(jobId: string): string | null;
  /** This process's membership in a Redis cluster, or null when it runs alone. */
  readonly cluster: Cluster | null;
  /** Credit per volunteer identity (credit/book.ts). */
  readonly credit: CreditBook;
  readonly spotChecks: SpotChecks;
  close(): Promise<void>;
}

/** How long a closing server waits for appended lines to reach the disk. */
const CLOSE_SETTLE_MS = 5_000;

/** How long a closing server lets HTTP requests under way finish before it cuts them. */
const CLOSE_DRAIN_MS = 2_000;

/** Resolves after `ms`, without holding the process open. */
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

const here = path.dirname(fileURLToPath(import.meta.url));

/** The default location of the built client, relative to this module (src/ or dist/). */
export function defaultClientDir(): string {
  return path.resolve(here, '../../client/dist');
}

/**
 * Starts a meshgrad job server: HTTP (pages, shards, checkpoints, /healthz, /metrics) and
 * socket.io (`/volunteer`) on one port. Resolves once it listens.
 */
export async function createServer(options: ServerOptions = {}): Promise<MeshgradServer> {
  const log = options.logger ?? createLogger(options.logLevel);
  checkIceOptions(options);
  const dataDir = path.resolve(options.dataDir ?? './.meshgrad');
  const metrics = new ServerMetrics();
  const store = new DataStore(dataDir, {
    log,
    health: new WriteHealth(log, metrics.durableWriteFailures),
    ...(options.checkpointRetention ? { retention: options.checkpointRetention } : {}),
  });
  await store.init();
  const adminToken = await store.adminToken(options.adminToken ?? process.env.MESHGRAD_ADMIN_TOKEN);

  const allowedDirs = [dataDir, ...(options.allowDataDirs ?? []).map((d) => path.resolve(d))];
  const specs: JobSpec[] = (options.jobs ?? [DEFAULT_JOB]).map((s) =>
    parseJobSpec(s, { allowedDirs }),
  );
  const jobs = new Map<string, Job>();
  for (const spec of specs) {
    jobs.set(spec.id, await Job.open(spec, store, metrics, log));
  }
  // Jobs created from the admin console (or run earlier with another spec) resume from the spec
  // they saved; one that no longer parses is skipped, not fatal.
  for (const id of await store.listJobs()) {
    if (jobs.has(id)) continue;
    try {
      const saved = await store.loadSpec(id);
      if (saved === null) continue;
      const spec = parseJobSpec(saved, { allowedDirs });
      if (spec.id !== id) throw new Error(`its spec names job ${spec.id}`);
      jobs.set(id, await Job.open(spec, store, metrics, log));
    } catch (err) {
      // A spec error's reason may quote a data file: the log names the field and file only.
      const why = err instanceof JobSpecError ? { field: err.field, file: err.file } : { err };
      log.warn({ ...why, job: id }, 'cannot resume a job from the data directory');
    }
  }

  const credit = new CreditBook(dataDir, metrics, log);
  await credit.load();
  // Each job's credited reports reach the book, jobs made from the admin console included.
  const creditWired = new WeakSet<Job>();
  const wireCredit = (job: Job) => {
    if (creditWired.has(job)) return;
    creditWired.add(job);
    const flops = trainingFlopsPerSample(job.layout.size);
    job.onCredit = (workerId, report) => credit.credit(job.id, workerId, report, flops);
  };
  for (const job of jobs.values()) wireCredit(job);

  const startedAt = Date.now();
  // The admin API needs socket.io, which needs the HTTP server: bind its handler once both exist.
  let adminHttp: NonNullable<HttpContext['admin']> = (_req, res) => {
    res.writeHead(503);
    res.end();
  };
  const http = createHttpServer(
    createHttpHandler({
      jobs,
      store,
      metrics,
      log,
      startedAt,
      credit,
      clientDir: options.clientDir === undefined ? defaultClientDir() : options.clientDir,
      admin: (req, res) => adminHttp(req, res),
    }),
  );
  const io = new SocketServer(http, {
    // Above our per-event caps, so an oversized payload gets a named error reply from the
    // schema instead of a silent disconnect; far beyond it engine.io drops the connection.
    maxHttpBufferSize: MAX_PAYLOAD_BYTES + 1024 * 1024,
    serveClient: false,
    parser: socketParser,
  });
  // Scale-out: the Redis adapter goes in before the namespace, so its rooms span processes.
  const cluster = options.redis ? await Cluster.connect(options.redis, log) : null;
  if (cluster) io.adapter(cluster.socketAdapter());
  // The limits go in before any other connection handler, so a refused socket reaches none.
  const addressLimits = new AddressLimits(log, options.addressLimits, (limit) =>
    metrics.addressLimited.inc({ limit }),
  );
  addressLimits.install(io.of('/volunteer'));
  addressLimits.install(io.of('/admin'));
  // socket.io types one event map per Server; each namespace has its own, so narrow it here.
  const volunteers = io.of('/volunteer') as unknown as VolunteerNamespace;
  // The hub sends the checks and the checks' answers come through the hub: bound once both exist.
  let spotChecks: SpotChecks | null = null;
  const hub = new VolunteerHub(
    volunteers,
    jobs,
    metrics,
    log,
    (p) => p,
    (workerId) => iceConfigFor(options, workerId),
    options.namedWorkers ?? false,
    {
      bind: (workerId, identity) => credit.bind(workerId, identity),
      unbind: (workerId) => credit.unbind(workerId),
      spotCheckAnswer: (workerId, checkId, params) =>
        spotChecks
          ? spotChecks.answer(workerId, checkId, params)
          : 'no spot checks on this server yet',
    },
  );
  const checks = new SpotChecks(
    jobs,
    credit,
    (workerId, message) => hub.spotCheck(workerId, message),
    log,
    options.spotChecks,
  );
  spotChecks = checks;
  const admin = createAdmin({
    token: adminToken,
    jobs,
    store,
    metrics,
    log,
    startedAt,
    io,
    outbox: hub,
    credit,
    allowedDataDirs: allowedDirs,
    ...(options.tokenThrottle ? { tokenThrottle: options.tokenThrottle } : {}),
  });
  adminHttp = admin.handleHttp;
  for (const job of jobs.values()) job.attach(hub);
  if (cluster) for (const job of jobs.values()) await cluster.attach(job);

  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    Promise.all(
      [...jobs.values()].map(async (j) => {
        wireCredit(j);
        // Jobs created from the admin console join the cluster on their first tick.
        if (cluster && !cluster.isAttached(j)) await cluster.attach(j);
        const endTimer = metrics.tickSeconds.startTimer({ job: j.id });
        try {
          await j.tick();
        } finally {
          endTimer();
        }
      }),
    )
      .then(() => {
        checks.tick();
        return credit.flushIfDue();
      })
      .catch((err: unknown) => log.error({ err }, 'job tick failed'))
      .finally(() => {
        ticking = false;
      });
  }, TICK_MS);
  timer.unref();

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    const where = { port: options.port ?? 8080, host: options.host ?? '0.0.0.0' };
    http.listen({ ...where, backlog: LISTEN_BACKLOG }, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8080);
  const url = `http://localhost:${port}`;
  log.info({ port, dataDir, jobs: [...jobs.keys()] }, 'meshgrad server listening');
  let closing: Promise<void> | null = null;

  return {
    url,
    port,
    adminToken,
    dataDir,
    jobs,
    metrics,
    http,
    io,
    requestCheckpoint(jobId) {
      return jobs.get(jobId)?.requestState() ?? null;
    },
    cluster,
    credit,
    spotChecks: checks,
    close() {
      // Once: a second close (a test's cleanup after a failover) must not reach closed clients.
      closing ??= (async () => {
        clearInterval(timer);
        addressLimits.close();
        admin.close();
        await Promise.all([...jobs.values()].map((j) => j.flush()));
        await credit.flush().catch((err: unknown) => log.error({ err }, 'credit book not written'));
        await Promise.all([...jobs.values()].map((j) => j.close()));
        // socket.io's close also closes the HTTP server, and that waits for every connection to
        // end: a request held open (a body that never finishes) held a restart for minutes.
        // Requests under way get CLOSE_DRAIN_MS to finish; then every connection is cut.
        const closed = Promise.all([
          new Promise<void>((resolve) => io.close(() => resolve())),
          new Promise<void>((resolve) => http.close(() => resolve())),
        ]);
        http.closeIdleConnections();
        await Promise.race([closed, delay(CLOSE_DRAIN_MS)]);
        http.closeAllConnections();
        await closed;
        await cluster?.close();
        // The sockets closed above appended their leave events; none may land after the close.
        // Bounded: a close must end even if a disk stalls (its lines stay counted as unwritten).
        await Promise.race([store.settled(), delay(CLOSE_SETTLE_MS)]);
        metrics.close();
      })();
      return closing;
    },
  };
}
