/**
 * What the admin console and the server say to each other: the `/admin` socket.io event maps and
 * the shapes of the admin HTTP API's replies, shared by the server and the console; the server's
 * schemas for inbound admin payloads are in apps/server/src/admin/schemas.ts.
 *
 * HTTP API (every route needs `Authorization: Bearer <admin token>`; without it 401, with a wrong
 * token 403, and neither says anything about jobs):
 *
 *   GET  /api/admin/session                           → AdminSession
 *   GET  /api/admin/jobs                              → { jobs: AdminJobSummary[] }
 *   POST /api/admin/jobs            (job spec JSON)   → 201 AdminJobSummary
 *   GET  /api/admin/jobs/:id                          → AdminJobSnapshot
 *   GET  /api/admin/jobs/:id/metrics                  → AdminMetricsHistory
 *   POST /api/admin/jobs/:id/control    (AdminControlRequest)  → AdminJobSummary
 *   POST /api/admin/jobs/:id/balancer   (AdminBalancerRequest) → AdminJobSummary
 *   GET  /api/admin/jobs/:id/checkpoints              → { checkpoints: AdminCheckpoint[] }
 *   POST /api/admin/jobs/:id/checkpoints              → 202 { ok: true, requestId }
 *   GET  /api/admin/jobs/:id/checkpoints/:seq.safetensors | :seq.bin   → the file
 *   POST /api/admin/jobs/:id/workers/:worker/ban      → AdminBanReply
 *
 * Failures answer `AdminError` with a status: 400 (invalid, `field` names what), 401, 403, 404,
 * 405, 409 (conflicts with the job's state), 413 (body too large), 415 (not JSON), 429 (too many
 * wrong tokens from one address).
 */
import type { DeviceInfo, LinkStats, ModelSpecPayload } from './schemas.ts';
import type { JobInfo, JobState, WorkerSettings } from './events.ts';

export type AdminErrorCode =
  | 'ERR_UNAUTHORIZED'
  | 'ERR_FORBIDDEN'
  | 'ERR_INVALID_PAYLOAD'
  | 'ERR_NOT_FOUND'
  | 'ERR_METHOD'
  | 'ERR_CONFLICT'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  /** 429: too many wrong tokens from one address; `retry-after` says when to try again. */
  | 'ERR_RATE_LIMITED'
  | 'ERR_INTERNAL';

export interface AdminError {
  readonly ok: false;
  readonly code: AdminErrorCode;
  readonly message: string;
  /** The offending field's dotted path (e.g. `model.inputs`), for ERR_INVALID_PAYLOAD. */
  readonly field?: string;
}

export type BalancerSetting =
  { readonly mode: 'automatic' } | { readonly mode: 'fixed'; readonly settings: WorkerSettings };

export interface AdminSession {
  readonly ok: true;
  readonly serverStartedAt: string;
  readonly jobs: number;
}

export interface AdminCheckpoint {
  readonly seq: number;
  readonly samples: number;
  readonly createdAt: string;
  readonly worker: string;
  readonly parameters: number;
  readonly testLoss: number;
  readonly testAccuracy?: number;
  readonly testObjective?: number;
  /** The checkpoint is the mean of this many workers' recent uploads, `worker`'s the last. */
  readonly averagedOver?: number;
  /** Admin API paths (they need the bearer token). */
  readonly downloads: { readonly safetensors: string; readonly binary: string };
}

export interface AdminJobSummary {
  readonly id: string;
  readonly name: string;
  readonly host: string;
  readonly description: string;
  readonly state: JobState;
  readonly learningRate: number;
  readonly model: ModelSpecPayload;
  readonly dataset: JobInfo['dataset'];
  readonly batchSize: number;
  readonly blockSize: number;
  readonly blockCount: number;
  readonly parameters: number;
  /** Job-wide samples processed. */
  readonly samples: number;
  readonly workers: number;
  readonly samplesPerSec: number;
  /** Mean of the workers' last reported training loss. */
  readonly trainLoss?: number;
  readonly balancer: BalancerSetting;
  /**
   * How workers combine their work (job spec `training.mode`): `asgd`, or `sync` with the
   * server's round in progress (or the last one). Absent from older servers: `asgd`.
   */
  readonly training?:
    | { readonly mode: 'asgd' }
    | { readonly mode: 'sync'; readonly round: number; readonly waitingFor: number };
  /** The spec's communication settings: where `automatic` starts a joining worker. */
  readonly defaultSettings: WorkerSettings;
  readonly latestCheckpoint: AdminCheckpoint | null;
}

/** How a worker is doing, derived from its last report. */
export type AdminWorkerState = 'training' | 'paused' | 'idle' | 'silent';

export interface AdminWorker {
  readonly id: string;
  readonly shard: number;
  readonly joinedAt: string;
  /** Milliseconds since the worker last reported. */
  readonly lastSeenMsAgo: number;
  readonly device: DeviceInfo;
  readonly state: AdminWorkerState;
  readonly samplesPerSec: number;
  readonly loss?: number;
  /** Samples credited to the job from this worker. */
  readonly contributed: number;
  /** Fraction of the job's samples that came from this worker. */
  readonly share: number;
  readonly offered: number;
  readonly accepted: number;
  readonly neighbours: readonly string[];
  readonly settings: WorkerSettings;
  /** The automatic balancer's latest decision for this worker; absent in fixed mode. */
  readonly balance?: AdminWorkerBalance;
  readonly links: readonly LinkStats[];
  /** What its neighbours reported of the messages it sent them; absent before any report. */
  readonly suspicion?: AdminSuspicion;
}

/**
 * What a worker's neighbours say of it (apps/server/src/jobs/suspects.ts): the evidence the
 * console shows beside a suspected worker, for the host to judge before a ban.
 */
export interface AdminSuspicion {
  /** Neighbours whose latest report has a link from this worker. */
  readonly reporters: number;
  /** Of those, how many rejected at least half of its messages (and a few at least). */
  readonly rejecting: number;
  /** Its messages the reporters rejected, summed over them. */
  readonly rejected: number;
  /** Its blocks the reporters took, summed over them. */
  readonly received: number;
  /** Whether the evidence makes it a suspect: most of its reporters, and two at least, reject it. */
  readonly suspected: boolean;
}

/** The answer to a ban. */
export interface AdminBanReply {
  readonly ok: true;
  readonly worker: string;
  /** Worker ids banned from the job since the server started. */
  readonly banned: number;
}

/** Why the automatic balancer gave a worker its settings (balancer/controller.ts). */
export interface AdminWorkerBalance {
  /** Which rule set the budget: `capacity`, `congested`, `link-limit`, `ceiling`, … */
  readonly reason: string;
  /** Bytes/s the worker may send. */
  readonly budgetBytesPerSec: number;
  /** Estimated send capacity, bytes/s, or null while unknown. */
  readonly capacityBytesPerSec: number | null;
  readonly congested: boolean;
}

/**
 * Workers one snapshot lists at most. The console gets a snapshot of the job it watches every
 * second; at 10,000 volunteers listing them all was 14 MB of JSON built on the server's event
 * loop each time (docs/benchmarks.md, "A snapshot of a bounded size"). The REST snapshot pages
 * through the rest with `?offset=`.
 */
export const MAX_SNAPSHOT_WORKERS = 500;

/**
 * Workers one metrics record keeps a line for (`AdminMetricsRecord.perWorker`). A record is taken
 * every few seconds and the server keeps the lines of the last hundred or so in memory: of every
 * worker, that was over 100 MB at 10,000 volunteers, and a megabyte appended to the history file
 * each time. A chart of more lines than this is unreadable anyway.
 */
export const MAX_RECORDED_WORKERS = 100;

export interface AdminJobSnapshot {
  readonly time: string;
  readonly job: AdminJobSummary;
  /** Connected workers in all; `workers` lists at most `MAX_SNAPSHOT_WORKERS` of them. */
  readonly workerCount: number;
  /** Where `workers` starts in the job's list: suspects first, then the rest by join time. */
  readonly offset: number;
  readonly workers: readonly AdminWorker[];
  /** Connected workers whose `suspicion` makes them suspects, in all. */
  readonly suspectCount: number;
  /** Ids of those suspects, at most `MAX_SNAPSHOT_WORKERS`. */
  readonly suspects: readonly string[];
}

/** One record of a job's metrics history (the server's metrics.jsonl). */
export interface AdminMetricsRecord {
  readonly time: string;
  readonly samples: number;
  readonly workers: number;
  readonly samplesPerSec: number;
  readonly trainLoss?: number;
  readonly testLoss?: number;
  readonly testAccuracy?: number;
  readonly testObjective?: number;
  readonly checkpoint?: number;
  /**
   * Per-worker speed and communication settings at this time, keyed by worker id: of the
   * `MAX_RECORDED_WORKERS` longest connected, when more are (`workers` counts them all).
   */
  readonly perWorker?: Readonly<Record<string, AdminWorkerRecord>>;
}

/** One worker's line in a metrics record. */
export interface AdminWorkerRecord {
  readonly samplesPerSec: number;
  readonly communicationPeriod: number;
  readonly blocksPerMessage: number;
  readonly encoding: WorkerSettings['encoding'];
}

export interface AdminMetricsHistory {
  readonly job: string;
  readonly samples: number;
  readonly history: readonly AdminMetricsRecord[];
}

/** At least one of the two; `state` moves the job, `learningRate` changes η for every worker. */
export interface AdminControlRequest {
  readonly state?: JobState;
  readonly learningRate?: number;
}

export type AdminBalancerRequest =
  | { readonly mode: 'automatic' }
  | {
      readonly mode: 'fixed';
      readonly communicationPeriod: number;
      readonly blocksPerMessage: number;
      readonly encoding: WorkerSettings['encoding'];
    };

export type AdminWatchReply =
  { readonly ok: true; readonly snapshot: AdminJobSnapshot } | AdminError;

/** Server → console. */
export interface AdminServerToClientEvents {
  /** Every job, about once a second. */
  jobs: (jobs: readonly AdminJobSummary[]) => void;
  /** The watched job with its workers, about once a second and right after a change. */
  snapshot: (snapshot: AdminJobSnapshot) => void;
  /** A record just appended to the watched job's metrics history. */
  record: (message: { readonly jobId: string; readonly record: AdminMetricsRecord }) => void;
  /** A fire-and-forget event was refused. */
  refused: (error: AdminError & { readonly event: string }) => void;
}

/** Console → server. */
export interface AdminClientToServerEvents {
  /** Streams `snapshot` and `record` for one job (and stops those of the previous one). */
  watch: (request: { readonly jobId: string }, reply: (r: AdminWatchReply) => void) => void;
}

/** The socket.io handshake's `auth` object for `/admin`. */
export interface AdminAuth {
  readonly token: string;
}
