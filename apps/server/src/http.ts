import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import sirv from 'sirv';
import { IDENTITY_ID } from '@meshgrad/core';
import type { CreditBook } from './credit/book.ts';
import type { Job } from './jobs/job.ts';
import type { Logger } from './logger.ts';
import type { ServerMetrics } from './metrics.ts';
import type { MetricsRange } from './metrics-history.ts';
import type { DataStore } from './store.ts';

/** Shards never change for a given spec; clients and proxies may keep them for a day. */
const SHARD_CACHE = 'public, max-age=86400';
/** A numbered checkpoint never changes once written. */
const CHECKPOINT_CACHE = 'public, max-age=31536000, immutable';

export interface HttpContext {
  readonly jobs: ReadonlyMap<string, Job>;
  readonly store: DataStore;
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  readonly startedAt: number;
  readonly credit: CreditBook;
  /** Built client (apps/client/dist), or null when it has not been built. */
  readonly clientDir: string | null;
  /** Serves everything under `/api/admin` (admin/http.ts); it checks the admin token itself. */
  readonly admin?: (req: IncomingMessage, res: ServerResponse) => void;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Sends bytes with an ETag, answering 304 to a matching If-None-Match. */
export function sendBinary(
  req: IncomingMessage,
  res: ServerResponse,
  bytes: Uint8Array,
  etag: string,
  cache: string,
  extra: Record<string, string> = {},
): void {
  const headers = { etag, 'cache-control': cache, ...extra };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, {
    ...headers,
    'content-type': 'application/octet-stream',
    'content-length': bytes.byteLength,
  });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

const asBytes = (f: Float32Array) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);

/** The HTTP side of the server: health, metrics, shards, checkpoints and the client pages. */
export function createHttpHandler(
  ctx: HttpContext,
): (req: IncomingMessage, res: ServerResponse) => void {
  const statics =
    ctx.clientDir && existsSync(ctx.clientDir)
      ? sirv(ctx.clientDir, { etag: true, extensions: ['html'], dev: false })
      : null;

  const routes: Array<{
    pattern: RegExp;
    handle: (
      m: RegExpMatchArray,
      req: IncomingMessage,
      res: ServerResponse,
    ) => Promise<void> | void;
  }> = [
    {
      pattern: /^\/healthz$/,
      handle: (_m, _req, res) => {
        let workers = 0;
        for (const j of ctx.jobs.values()) workers += j.workers.size;
        // Why 200 when degraded: the process serves and keeps training; what fails is named so
        // that whoever watches can act, and a load balancer does not drop a working process.
        const degraded = ctx.store.health.problems();
        sendJson(res, 200, {
          ok: true,
          status: degraded.length ? 'degraded' : 'ok',
          ...(degraded.length ? { degraded } : {}),
          uptimeSec: Math.round((Date.now() - ctx.startedAt) / 1000),
          jobs: ctx.jobs.size,
          workers,
        });
      },
    },
    {
      pattern: /^\/metrics$/,
      handle: async (_m, _req, res) => {
        const text = await ctx.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType });
        res.end(text);
      },
    },
    {
      // Public job descriptions, shown on the volunteer page before anyone consents to join.
      pattern: /^\/api\/jobs$/,
      handle: (_m, _req, res) => {
        sendJson(res, 200, {
          jobs: [...ctx.jobs.values()].filter((j) => j.state !== 'stopped').map((j) => j.info()),
        });
      },
    },
    {
      // The public leaderboards (DESIGN §9); `?job=` for one job's, `?identity=` adds its line.
      pattern: /^\/api\/credit$/,
      handle: (_m, req, res) => {
        const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
        const identity = query.get('identity') ?? undefined;
        const job = query.get('job') ?? undefined;
        if (identity !== undefined && !IDENTITY_ID.test(identity)) {
          return sendJson(res, 400, { error: 'identity must be an identity id (v- and 20 hex)' });
        }
        if (job !== undefined && !ctx.jobs.has(job)) {
          return sendJson(res, 404, { error: 'no such job' });
        }
        sendJson(
          res,
          200,
          ctx.credit.report({
            ...(job !== undefined ? { job } : {}),
            ...(identity !== undefined ? { identity } : {}),
          }),
        );
      },
    },
    {
      pattern: /^\/api\/jobs\/([a-z0-9_-]+)\/shards\/(\d+)$/,
      handle: (m, req, res) => {
        const job = ctx.jobs.get(m[1] as string);
        const shard = job?.shard(Number(m[2]));
        if (!job || !shard) return sendJson(res, 404, { error: 'no such job or shard' });
        sendBinary(req, res, shard.bytes, shard.etag, SHARD_CACHE);
      },
    },
    {
      pattern: /^\/api\/jobs\/([a-z0-9_-]+)\/checkpoints\/(initial|latest|\d+)$/,
      handle: async (m, req, res) => {
        const job = ctx.jobs.get(m[1] as string);
        if (!job) return sendJson(res, 404, { error: 'no such job' });
        const which = m[2] as string;
        if (which === 'initial') {
          return sendBinary(
            req,
            res,
            asBytes(job.initialParams()),
            `"${job.id}-initial"`,
            CHECKPOINT_CACHE,
            {
              'x-meshgrad-samples': '0',
            },
          );
        }
        const manifest =
          which === 'latest' ? job.latest : await ctx.store.checkpoint(job.id, Number(which));
        if (!manifest) return sendJson(res, 404, { error: 'no such checkpoint' });
        const params =
          manifest.seq === job.latest?.seq
            ? job.checkpointParams().params
            : await ctx.store.readCheckpoint(manifest);
        sendBinary(
          req,
          res,
          asBytes(params),
          `"${job.id}-${manifest.seq}"`,
          which === 'latest' ? 'no-cache' : CHECKPOINT_CACHE,
          {
            'x-meshgrad-samples': String(manifest.samples),
            'x-meshgrad-checkpoint': String(manifest.seq),
          },
        );
      },
    },
    {
      pattern: /^\/api\/jobs\/([a-z0-9_-]+)\/metrics$/,
      handle: async (m, req, res) => {
        const job = ctx.jobs.get(m[1] as string);
        if (!job) return sendJson(res, 404, { error: 'no such job' });
        const range = parseMetricsRange(new URL(req.url ?? '/', 'http://localhost').searchParams);
        if (!range.ok) return sendJson(res, 400, { error: range.error });
        const answer = await ctx.store.queryMetrics(job.id, range.range);
        sendJson(res, 200, { job: job.id, samples: job.samples, ...answer });
      },
    },
  ];

  const dispatch = (req: IncomingMessage, res: ServerResponse): Promise<void> | void => {
    const target = parseRequestTarget(req.url);
    if (!target.ok) return sendJson(res, 400, { error: target.error });
    const { pathname } = target.url;
    if (ctx.admin && /^\/api\/admin(\/|$)/.test(pathname)) return ctx.admin(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendJson(res, 405, { error: `${req.method ?? 'this method'} is not allowed` });
    }
    for (const route of routes) {
      const m = pathname.match(route.pattern);
      if (m) return route.handle(m, req, res);
    }
    if (statics) {
      // Not returned: sirv answers with whatever its last call gave (a piped stream's
      // destination, the response), which is no promise.
      statics(req, res, () => sendJson(res, 404, { error: 'not found' }));
      return;
    }
    if (pathname === '/' || pathname === '/admin') {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(
        'The meshgrad client has not been built: run `npm start` (it builds it) or `npm run build`.\n',
      );
      return;
    }
    sendJson(res, 404, { error: 'not found' });
  };

  return (req, res) => {
    // Why: this is the one boundary every request crosses; a throw or rejection from any route
    // must end as an answer to that request, never as an uncaught error that exits the process.
    const fail = (err: unknown) => {
      ctx.log.error({ err, method: req.method, path: safePath(req.url) }, 'http handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    };
    try {
      // Promise.resolve: a route (or a handler it delegates to) may return anything; only a
      // promise's rejection is the route's failure.
      Promise.resolve(dispatch(req, res)).catch(fail);
    } catch (err) {
      fail(err);
    }
  };
}

/**
 * `?since=&until=&limit=` of a metrics request: times as ISO strings or epoch milliseconds,
 * limit a positive integer (capped by the history, see metrics-history.ts).
 */
export function parseMetricsRange(
  query: URLSearchParams,
): { ok: true; range: MetricsRange } | { ok: false; error: string } {
  const time = (name: 'since' | 'until'): number | undefined | string => {
    const raw = query.get(name);
    if (raw === null || raw === '') return undefined;
    const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
    return Number.isFinite(ms) ? ms : `${name} must be an ISO time or epoch milliseconds`;
  };
  const since = time('since');
  const until = time('until');
  if (typeof since === 'string') return { ok: false, error: since };
  if (typeof until === 'string') return { ok: false, error: until };
  const rawLimit = query.get('limit');
  const limit = rawLimit === null || rawLimit === '' ? undefined : Number(rawLimit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    return { ok: false, error: 'limit must be a positive integer' };
  }
  return {
    ok: true,
    range: {
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      ...(limit !== undefined ? { limit } : {}),
    },
  };
}

/** The longest request target echoed into a log line. */
const MAX_LOGGED_PATH = 200;

/** A request target for a log line: cut short, so a client cannot write big lines into the log. */
function safePath(target: string | undefined): string {
  return (target ?? '').slice(0, MAX_LOGGED_PATH);
}

export type RequestTarget =
  { readonly ok: true; readonly url: URL } | { readonly ok: false; readonly error: string };

/**
 * Reads a request target in origin form (`/path?query`, RFC 9112 §3.2.1). Anything else, such as
 * `//host:port/` (which `new URL(target, base)` reads as another host, and throws on when the
 * host is invalid), an absolute URL or a broken `%` escape, is refused with the reason.
 */
export function parseRequestTarget(target: string | undefined): RequestTarget {
  const raw = target ?? '/';
  const bad = (why: string): RequestTarget => ({
    ok: false,
    error: `malformed request path: ${why}`,
  });
  if (!raw.startsWith('/')) return bad('it must start with "/"');
  if (raw.startsWith('//')) return bad('it must not start with "//"');
  const queryAt = raw.indexOf('?');
  const rawPath = queryAt === -1 ? raw : raw.slice(0, queryAt);
  try {
    decodeURIComponent(rawPath);
  } catch {
    return bad('it has a "%" that is not followed by two hex digits');
  }
  try {
    return { ok: true, url: new URL(raw, 'http://localhost') };
  } catch {
    return bad('it is not a valid URL path');
  }
}
