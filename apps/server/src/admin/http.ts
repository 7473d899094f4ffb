/**
 * The admin HTTP API under `/api/admin/` (routes in packages/core/src/protocol/admin.ts). Every request is authenticated
 * before routing, so without the token nothing, not even which paths exist, can be learned.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseRequestTarget, sendBinary } from '../http.ts';
import type { Logger } from '../logger.ts';
import type { RefusalOutcome, TokenCheck, TokenThrottle } from './auth.ts';
import {
  MAX_SNAPSHOT_WORKERS,
  type AdminCreditReport,
  type AdminError,
  type AdminErrorCode,
  type AdminSession,
} from '@meshgrad/core';
import { JobSpecError } from '../jobs/job-spec.ts';
import { AdminFailure, type AdminService } from './service.ts';
import { jobSnapshot, jobSummary, type SnapshotPage } from './views.ts';

/** Largest request body (bytes): a job spec is a few hundred bytes of JSON. */
export const MAX_ADMIN_BODY_BYTES = 256 * 1024;

/** Admin answers are per-token and change constantly: never cached by anyone. */
const NO_STORE = 'no-store';
/** A numbered checkpoint never changes; only the browser that holds the token may keep it. */
const CHECKPOINT_CACHE = 'private, max-age=31536000, immutable';

function sendJson(res: ServerResponse, status: number, body: unknown, extra = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': NO_STORE,
    'x-content-type-options': 'nosniff',
    ...extra,
  });
  res.end(text);
}

function sendError(
  res: ServerResponse,
  status: number,
  code: AdminErrorCode,
  message: string,
  field?: string,
  extra = {},
): void {
  const body: AdminError = { ok: false, code, message, ...(field ? { field } : {}) };
  sendJson(res, status, body, extra);
}

/** Reads a JSON body of at most MAX_ADMIN_BODY_BYTES. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new AdminFailure(
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      'send the body as JSON (content-type: application/json)',
    );
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_ADMIN_BODY_BYTES) {
    throw new AdminFailure(
      413,
      'ERR_PAYLOAD_TOO_LARGE',
      `the body must be at most ${MAX_ADMIN_BODY_BYTES} bytes`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength;
    if (size > MAX_ADMIN_BODY_BYTES) {
      throw new AdminFailure(
        413,
        'ERR_PAYLOAD_TOO_LARGE',
        `the body must be at most ${MAX_ADMIN_BODY_BYTES} bytes`,
      );
    }
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (err) {
    throw new AdminFailure(400, 'ERR_INVALID_PAYLOAD', `not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * `?offset=&limit=` of a job snapshot: which of its workers it lists (views.ts `jobSnapshot`).
 * Offset a non-negative integer (default 0), limit from 1 to `MAX_SNAPSHOT_WORKERS` (the default).
 */
export function snapshotPage(req: IncomingMessage): SnapshotPage {
  const target = parseRequestTarget(req.url);
  const query = target.ok ? target.url.searchParams : new URLSearchParams();
  const int = (name: 'offset' | 'limit', fallback: number, min: number, max: number) => {
    const raw = query.get(name);
    if (raw === null || raw === '') return fallback;
    const v = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
    if (!(v >= min && v <= max)) {
      throw new AdminFailure(
        400,
        'ERR_INVALID_PAYLOAD',
        `must be an integer from ${min} to ${max}`,
        name,
      );
    }
    return v;
  };
  return {
    offset: int('offset', 0, 0, 999_999_999),
    limit: int('limit', MAX_SNAPSHOT_WORKERS, 1, MAX_SNAPSHOT_WORKERS),
  };
}

type Handler = (m: RegExpMatchArray, req: IncomingMessage, res: ServerResponse) => Promise<void>;

interface Route {
  readonly pattern: RegExp;
  readonly methods: Partial<Record<'GET' | 'POST', Handler>>;
}

export interface AdminHttpContext {
  readonly service: AdminService;
  readonly tokens: TokenCheck;
  /** Wrong tokens per address: past the limit an address gets 429 until its window ends. */
  readonly throttle: TokenThrottle;
  /** Counts refused requests by outcome (`unauthorized`, `forbidden`, `throttled`). */
  readonly refused?: (outcome: RefusalOutcome) => void;
  readonly log: Logger;
  readonly startedAt: number;
  /** Every identity's credit, checks, trust and flags (credit/book.ts). */
  readonly credit: () => AdminCreditReport;
}

/** The handler `http.ts` delegates every `/api/admin` request to. */
export function createAdminHttpHandler(
  ctx: AdminHttpContext,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { service } = ctx;
  const ID = '([a-z0-9][a-z0-9_-]{0,63})';
  // Worker ids: the server's `w-<hex>`, or a name a test server allows (ServerOptions.namedWorkers).
  const WORKER_ID = '([A-Za-z0-9_-]{1,64})';
  const routes: Route[] = [
    {
      pattern: /^\/api\/admin\/session$/,
      methods: {
        GET: async (_m, _req, res) => {
          const body: AdminSession = {
            ok: true,
            serverStartedAt: new Date(ctx.startedAt).toISOString(),
            jobs: service.summaries().length,
          };
          sendJson(res, 200, body);
        },
      },
    },
    {
      pattern: /^\/api\/admin\/credit$/,
      methods: { GET: async (_m, _req, res) => sendJson(res, 200, ctx.credit()) },
    },
    {
      pattern: /^\/api\/admin\/jobs$/,
      methods: {
        GET: async (_m, _req, res) => sendJson(res, 200, { jobs: service.summaries() }),
        POST: async (_m, req, res) => {
          const job = await service.createJob(await readJson(req));
          sendJson(res, 201, jobSummary(job));
        },
      },
    },
    {
      pattern: new RegExp(`^/api/admin/jobs/${ID}$`),
      methods: {
        GET: async (m, req, res) =>
          sendJson(
            res,
            200,
            jobSnapshot(service.job(m[1] as string), Date.now(), snapshotPage(req)),
          ),
      },
    },
    {
      pattern: new RegExp(`^/api/admin/jobs/${ID}/metrics$`),
      methods: {
        GET: async (m, _req, res) => sendJson(res, 200, await service.metrics(m[1] as string)),
      },
    },
    {
      pattern: new RegExp(`^/api/admin/jobs/${ID}/control$`),
      methods: {
        POST: async (m, req, res) => {
          const job = await service.control(m[1] as string, await readJson(req));
          sendJson(res, 200, jobSummary(job));
        },
      },
    },
    {
      pattern: new RegExp(`^/api/admin/jobs/${ID}/balancer$`),
      methods: {
        POST: async (m, req, res) => {
          const job = await service.balancer(m[1] as string, await readJson(req));
          sendJson(res, 200, jobSummary(job));
        },
      },
    },
    {
      pattern: new RegExp(`^/api/admin/jobs/${ID}/checkpoints$`),
      methods: {
        GET: async (m, _req, res) =>
          sendJson(res, 200, { checkpoints: await service.checkpoints(m[1] as string) }),
        POST: async (m, _req, res) =>
          sendJson(res, 202, { ok: true, requestId: service.requestCheckpoint(m[1] as string) }),
      },
    },
    {
      pattern: new RegExp(`^/api/admin/jobs/${ID}/workers/${WORKER_ID}/ban$`),
      methods: {
        POST: async (m, _req, res) =>
          sendJson(res, 200, service.ban(m[1] as string, m[2] as string)),
      },
    },
    {
      pattern: new RegExp(`^/api/admin/jobs/${ID}/checkpoints/(\\d{1,9})\\.(safetensors|bin)$`),
      methods: {
        GET: async (m, req, res) => {
          const format = m[3] === 'safetensors' ? 'safetensors' : 'bin';
          const file = await service.checkpointFile(m[1] as string, Number(m[2]), format);
          const etag = `"${m[1] as string}-${file.manifest.seq}-${format}"`;
          sendBinary(req, res, file.bytes, etag, CHECKPOINT_CACHE, {
            'content-disposition': `attachment; filename="${file.filename}"`,
            'x-meshgrad-samples': String(file.manifest.samples),
            'x-meshgrad-checkpoint': String(file.manifest.seq),
          });
        },
      },
    },
  ];

  return (req, res) => {
    const target = parseRequestTarget(req.url);
    if (!target.ok) {
      sendError(res, 400, 'ERR_INVALID_PAYLOAD', target.error);
      req.resume();
      return;
    }
    const { url } = target;
    const remote = req.socket.remoteAddress ?? 'unknown';
    const admitted = ctx.throttle.admit(remote);
    if (!admitted.ok) {
      ctx.refused?.('throttled');
      sendError(
        res,
        429,
        'ERR_RATE_LIMITED',
        `too many wrong admin tokens from your address; try again in ${admitted.retryAfterSec} s`,
        undefined,
        { 'retry-after': String(admitted.retryAfterSec) },
      );
      req.resume();
      return;
    }
    const auth = ctx.tokens.checkRequest(req);
    if (auth !== 'ok') {
      // Why: the same two answers for every path, so an outsider learns nothing about routes
      // or jobs. The log keeps the address of a guesser once per burst, not once per guess.
      if (auth === 'wrong' && ctx.throttle.failed(remote)) {
        ctx.log.warn(
          {
            path: url.pathname.slice(0, 200),
            remote,
            limit: ctx.throttle.failuresPerWindow,
            windowSec: ctx.throttle.windowMs / 1000,
          },
          'admin API refused a wrong token; further refusals from this address in this window are counted, not logged',
        );
      }
      ctx.refused?.(auth === 'missing' ? 'unauthorized' : 'forbidden');
      if (auth === 'missing') {
        sendError(res, 401, 'ERR_UNAUTHORIZED', 'the admin token is required', undefined, {
          'www-authenticate': 'Bearer realm="meshgrad admin"',
        });
      } else {
        sendError(res, 403, 'ERR_FORBIDDEN', 'the admin token is wrong');
      }
      req.resume();
      return;
    }
    const route = routes.find((r) => r.pattern.test(url.pathname));
    if (!route) {
      sendError(res, 404, 'ERR_NOT_FOUND', `no admin route ${url.pathname}`);
      return;
    }
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const handler =
      method === 'GET' || method === 'POST' ? route.methods[method as 'GET' | 'POST'] : undefined;
    if (!handler) {
      sendError(
        res,
        405,
        'ERR_METHOD',
        `${req.method ?? 'this method'} is not allowed here`,
        undefined,
        {
          allow: Object.keys(route.methods).join(', '),
        },
      );
      return;
    }
    const m = url.pathname.match(route.pattern) as RegExpMatchArray;
    handler(m, req, res).catch((err: unknown) => {
      if (err instanceof AdminFailure) {
        if (!res.headersSent) sendError(res, err.status, err.code, err.message, err.field);
        return;
      }
      if (err instanceof JobSpecError) {
        // A spec whose data cannot be loaded (found when the job opens). Why the log names only
        // the field and file: the reason may quote the file, and a file can hold secrets.
        ctx.log.info({ path: url.pathname, field: err.field, file: err.file }, 'job spec refused');
        if (!res.headersSent) sendError(res, 400, 'ERR_INVALID_PAYLOAD', err.reason, err.field);
        return;
      }
      ctx.log.error({ err, path: url.pathname }, 'admin handler failed');
      if (!res.headersSent) sendError(res, 500, 'ERR_INTERNAL', 'internal error');
      else res.destroy();
    });
  };
}
