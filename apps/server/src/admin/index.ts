/**
 * The admin side of the server (DESIGN §1): the `/admin` socket.io namespace and the admin HTTP
 * API, both behind the admin token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as SocketServer } from 'socket.io';
import type { CreditBook } from '../credit/book.ts';
import type { Job, JobOutbox } from '../jobs/job.ts';
import type { Logger } from '../logger.ts';
import type { ServerMetrics } from '../metrics.ts';
import type { DataStore } from '../store.ts';
import {
  TokenCheck,
  TokenThrottle,
  type RefusalOutcome,
  type TokenThrottleOptions,
} from './auth.ts';
import { createAdminHttpHandler } from './http.ts';
import { AdminHub, type AdminNamespace } from './hub.ts';
import { AdminService } from './service.ts';

export { AdminService, AdminFailure, MAX_JOBS } from './service.ts';
export { TokenCheck } from './auth.ts';

export interface AdminOptions {
  readonly token: string;
  /** The server's jobs; jobs created from the console are added here. */
  readonly jobs: Map<string, Job>;
  readonly store: DataStore;
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  readonly startedAt: number;
  readonly io: SocketServer;
  /** The volunteer hub: control messages and state requests reach workers through it. */
  readonly outbox: JobOutbox;
  /** Credit per identity, listed at `/api/admin/credit`. */
  readonly credit: CreditBook;
  /** Directories a spec's data files may lie in. */
  readonly allowedDataDirs: readonly string[];
  /** Wrong-token throttling per address (auth.ts defaults). */
  readonly tokenThrottle?: TokenThrottleOptions;
}

export interface Admin {
  /** Serves every `/api/admin` request (http.ts delegates them here). */
  handleHttp(req: IncomingMessage, res: ServerResponse): void;
  readonly service: AdminService;
  close(): void;
}

export function createAdmin(options: AdminOptions): Admin {
  const log = options.log.child({ component: 'admin' });
  const tokens = new TokenCheck(options.token);
  // socket.io types one event map per Server; each namespace has its own, so narrow it here.
  const nsp = options.io.of('/admin') as unknown as AdminNamespace;
  let hub: AdminHub | null = null;
  const service = new AdminService({
    jobs: options.jobs,
    store: options.store,
    metrics: options.metrics,
    log,
    outbox: options.outbox,
    changed: (jobId) => hub?.push(jobId),
    allowedDataDirs: options.allowedDataDirs,
  });
  // One throttle for both doors: wrong tokens on the socket and the API count together.
  const throttle = new TokenThrottle(options.tokenThrottle);
  const refused = (outcome: RefusalOutcome) => options.metrics.adminRefused.inc({ outcome });
  hub = new AdminHub(nsp, options.jobs, tokens, throttle, log, refused);
  const handleHttp = createAdminHttpHandler({
    service,
    tokens,
    throttle,
    refused,
    log,
    startedAt: options.startedAt,
    credit: () => options.credit.adminReport(),
  });
  return {
    handleHttp,
    service,
    close: () => hub?.close(),
  };
}
