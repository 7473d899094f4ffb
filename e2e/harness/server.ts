/**
 * The test server: static pages from `dist/www`, the TF.js WASM binaries, and datasets encoded in
 * Node. Pages load from `http://127.0.0.1:<port>`, a secure context, so `navigator.gpu` exists.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { WWW_DIR } from './build.ts';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
};

/** Produces the bytes of a named dataset, e.g. `mnist-train`; undefined when unknown. */
export type DatasetSource = (name: string) => Promise<Uint8Array | undefined>;

export interface TestServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Where TF.js's WASM backend finds its `.wasm` files: `setWasmPaths(url + WASM_ROUTE)`. */
export const TFJS_WASM_ROUTE = '/tfjs-wasm/';
/** Dataset route: `GET /data/<name>.bin` answers `datasets(name)`. */
export const DATA_ROUTE = '/data/';

/** Starts the server on an ephemeral port of 127.0.0.1. */
export async function startTestServer(datasets: DatasetSource): Promise<TestServer> {
  const require = createRequire(import.meta.url);
  const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist';
  // Each dataset is encoded once per server and kept: the test pages ask for it several times.
  const cache = new Map<string, Promise<Uint8Array | undefined>>();

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      console.error(`[server] ${req.url ?? ''}: ${String(err)}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    // Cross-origin isolation gives pages SharedArrayBuffer (TF.js WASM threads) and the
    // fine-grained performance.now() the benchmark needs. Everything here is same-origin.
    const headers = {
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cache-control': 'no-store',
    };
    if (path.startsWith(DATA_ROUTE) && path.endsWith('.bin')) {
      const name = path.slice(DATA_ROUTE.length, -'.bin'.length);
      let bytes = cache.get(name);
      if (!bytes) cache.set(name, (bytes = datasets(name)));
      const body = await bytes;
      if (!body) return notFound(res, path);
      res.writeHead(200, { ...headers, 'content-type': CONTENT_TYPES['.bin'] ?? '' });
      res.end(body);
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204, headers);
      res.end();
      return;
    }
    const root = path.startsWith(TFJS_WASM_ROUTE) ? wasmDir : WWW_DIR;
    const rel = path.startsWith(TFJS_WASM_ROUTE) ? path.slice(TFJS_WASM_ROUTE.length) : path;
    const file = normalize(join(root, rel === '/' ? 'index.html' : rel));
    // Refuse anything that escapes the served folder (../ in the URL).
    if (!file.startsWith(root + sep)) return notFound(res, path);
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return notFound(res, path);
    }
    res.writeHead(200, {
      ...headers,
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    });
    res.end(body);
  }

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

function notFound(res: ServerResponse, path: string): void {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end(`not found: ${path}`);
}
