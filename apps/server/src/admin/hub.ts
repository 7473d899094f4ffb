/**
 * The `/admin` socket.io namespace: live job summaries, snapshots of the watched job and its
 * metrics records as they are written. The handshake must carry the admin token
 * (`auth: { token }`); without it the connection is refused before any event flows.
 */
import type { Namespace, Socket } from 'socket.io';
import { validate } from '@meshgrad/core';
import type { Job } from '../jobs/job.ts';
import type { Logger } from '../logger.ts';
import type { MetricsRecord } from '../store.ts';
import type { RefusalOutcome, TokenCheck, TokenThrottle } from './auth.ts';
import type {
  AdminClientToServerEvents,
  AdminError,
  AdminServerToClientEvents,
} from '@meshgrad/core';
import { adminAuthSchema, watchSchema } from './schemas.ts';
import { jobSnapshot, jobSummary } from './views.ts';

/** How often the console gets fresh summaries and snapshots (ms); volunteers report every 1 s. */
export const ADMIN_PUSH_INTERVAL_MS = 1_000;

interface AdminSocketData {
  watching?: string;
}

export type AdminNamespace = Namespace<
  AdminClientToServerEvents,
  AdminServerToClientEvents,
  Record<string, never>,
  AdminSocketData
>;
type AdminSocket = Socket<
  AdminClientToServerEvents,
  AdminServerToClientEvents,
  Record<string, never>,
  AdminSocketData
>;

const room = (jobId: string) => `job:${jobId}`;

/** The `token` of a handshake's auth that failed the schema, for `TokenCheck` to judge. */
function presentedToken(auth: unknown): unknown {
  return typeof auth === 'object' && auth !== null && 'token' in auth
    ? (auth as { token: unknown }).token
    : undefined;
}

export class AdminHub {
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly recordSubscriptions = new Map<Job, () => void>();

  /**
   * @param throttle the admin HTTP API's own throttle (one object): wrong tokens count the same
   *   whichever door they try, so the socket is no way around the API's limit.
   * @param refused counts refused handshakes by outcome, as the API counts refused requests.
   */
  constructor(
    private readonly nsp: AdminNamespace,
    private readonly jobs: ReadonlyMap<string, Job>,
    tokens: TokenCheck,
    throttle: TokenThrottle,
    private readonly log: Logger,
    refused: (outcome: RefusalOutcome) => void = () => undefined,
  ) {
    nsp.use((socket, next) => {
      const remote = socket.handshake.address;
      const refuse = (code: string, message: string, extra: Record<string, unknown> = {}) => {
        const err = new Error(message) as Error & { data?: unknown };
        err.data = { code, ...extra };
        next(err);
      };
      // Checked before the token, so a guess from a throttled address learns nothing.
      const admitted = throttle.admit(remote);
      if (!admitted.ok) {
        refused('throttled');
        refuse(
          'ERR_RATE_LIMITED',
          `too many wrong admin tokens from your address; try again in ${admitted.retryAfterSec} s`,
          { retryAfterSec: admitted.retryAfterSec },
        );
        return;
      }
      // The token goes to the check as presented: one over the schema's length is a wrong
      // token (refused, counted and throttled as one), not a missing one, as over HTTP.
      const auth = validate(adminAuthSchema, socket.handshake.auth);
      const presented = auth.ok ? auth.value.token : presentedToken(socket.handshake.auth);
      const result = tokens.check(presented);
      if (result === 'ok') return next();
      // One line per burst of wrong tokens, not per attempt: a guesser must not flood the log.
      if (result === 'wrong' && throttle.failed(remote)) {
        log.warn(
          { remote, limit: throttle.failuresPerWindow, windowSec: throttle.windowMs / 1000 },
          'admin socket refused a wrong token; further refusals from this address in this window are counted, not logged',
        );
      }
      refused(result === 'missing' ? 'unauthorized' : 'forbidden');
      if (result === 'missing') refuse('ERR_UNAUTHORIZED', 'the admin token is required');
      else refuse('ERR_FORBIDDEN', 'the admin token is wrong');
    });
    nsp.on('connection', (socket) => this.attach(socket));
    this.subscribeRecords();
    this.timer = setInterval(() => this.push(), ADMIN_PUSH_INTERVAL_MS);
    this.timer.unref();
  }

  private attach(socket: AdminSocket): void {
    socket.emit('jobs', [...this.jobs.values()].map(jobSummary));
    socket.on('watch', (payload: unknown, ack: unknown) => {
      const reply = (r: Parameters<Parameters<AdminClientToServerEvents['watch']>[1]>[0]) => {
        if (typeof ack === 'function') (ack as (x: typeof r) => void)(r);
        else if (!r.ok) socket.emit('refused', { ...r, event: 'watch' });
      };
      const r = validate(watchSchema, payload);
      if (!r.ok) {
        const error: AdminError = { ok: false, code: 'ERR_INVALID_PAYLOAD', message: r.message };
        reply(error);
        return;
      }
      const job = this.jobs.get(r.value.jobId);
      if (!job) {
        reply({ ok: false, code: 'ERR_NOT_FOUND', message: `jobId: no job ${r.value.jobId}` });
        return;
      }
      if (socket.data.watching) void socket.leave(room(socket.data.watching));
      socket.data.watching = job.id;
      void socket.join(room(job.id));
      reply({ ok: true, snapshot: jobSnapshot(job) });
    });
  }

  /** Jobs created at runtime get their records streamed too. */
  private subscribeRecords(): void {
    for (const job of this.jobs.values()) {
      if (this.recordSubscriptions.has(job)) continue;
      this.recordSubscriptions.set(
        job,
        job.onRecord((record: MetricsRecord) => {
          this.nsp.to(room(job.id)).emit('record', { jobId: job.id, record });
        }),
      );
    }
  }

  private watched(jobId: string): boolean {
    return (this.nsp.adapter.rooms.get(room(jobId))?.size ?? 0) > 0;
  }

  /** Sends summaries to every console and snapshots of watched jobs. */
  push(onlyJob?: string): void {
    this.subscribeRecords();
    if (this.nsp.sockets.size === 0) return;
    try {
      this.nsp.emit('jobs', [...this.jobs.values()].map(jobSummary));
      for (const job of this.jobs.values()) {
        if (onlyJob !== undefined && job.id !== onlyJob) continue;
        if (this.watched(job.id)) this.nsp.to(room(job.id)).emit('snapshot', jobSnapshot(job));
      }
    } catch (err) {
      this.log.error({ err }, 'admin push failed');
    }
  }

  close(): void {
    clearInterval(this.timer);
    for (const unsubscribe of this.recordSubscriptions.values()) unsubscribe();
    this.recordSubscriptions.clear();
    this.nsp.disconnectSockets(true);
  }
}
