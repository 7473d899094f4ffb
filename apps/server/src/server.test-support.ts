/**
 * Test support: real job servers for tests that talk to them over HTTP and socket.io. A test
 * server listens on a free local port, logs nothing and serves no pages; `ServerFixture` gives
 * every test of a file a fresh data directory and closes what the test opened.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import {
  io as connect,
  type ManagerOptions,
  type Socket,
  type SocketOptions,
} from 'socket.io-client';
import { pino } from 'pino';
import type { OkReply } from '@meshgrad/core';
import type { Job } from './jobs/job.ts';
import type { Logger } from './logger.ts';
import { createServer, type MeshgradServer, type ServerOptions } from './server.ts';

/** The smallest job a test server can run: two 2-D Gaussian blobs, 40 training rows, 2 shards. */
export const BLOBS_JOB = {
  id: 'blobs',
  name: 'Gaussian blobs',
  model: { kind: 'kmeans', dims: 2, clusters: 2 },
  dataset: { kind: 'clusters', clusters: 2, dims: 2, count: 40, testCount: 20 },
  shards: 2,
  batchSize: 8,
} as const;

/**
 * How long a test waits for what the server evaluates on a worker thread before it answers: a
 * `state` upload's reply, a checkpoint (docs/design.md §8). On a loaded machine a fresh thread
 * takes seconds to start; a timeout, not a speed bound.
 */
export const EVALUATION_TIMEOUT_MS = 30_000;

/** The device a test volunteer says it has in its `hello`. */
export const TEST_DEVICE = { backend: 'cpu', userAgent: 'vitest' } as const;

/** A logger that keeps every line it writes, so a test can look for what must (not) be there. */
export function capturingLogger(level: 'debug' | 'info' = 'info'): {
  lines: string[];
  logger: Logger;
} {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { lines, logger: pino({ level }, sink) as Logger };
}

/** `createServer` on 127.0.0.1, a free port, no logs and no client pages; `options` on top. */
export function startTestServer(options: ServerOptions): Promise<MeshgradServer> {
  return createServer({
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    clientDir: null,
    ...options,
  });
}

/** Resolves with the next `event` on `s`. */
export function nextEvent<T>(s: Socket, event: string): Promise<T> {
  return new Promise((resolve) => s.once(event, (v: T) => resolve(v)));
}

/**
 * Answers the state request `requestId` on `s` with the parameters of `job`'s model each moved by
 * `shift` (a state near the model: one far from it would be refused as a regression), counted as
 * `samples`; resolves with the server's reply and the parameters sent.
 */
export async function uploadState(
  s: Socket,
  job: Job,
  requestId: string,
  samples: number,
  shift = 1 / 64,
): Promise<{ reply: OkReply; params: Float32Array }> {
  const params = job.initialParams().map((v) => v + shift);
  const reply = (await s.timeout(EVALUATION_TIMEOUT_MS).emitWithAck('state', {
    requestId,
    jobId: job.spec.id,
    samples,
    params: new Uint8Array(params.buffer),
  })) as OkReply;
  return { reply, params };
}

/**
 * One server per test: registers hooks that make a data directory (named `prefix…`) before each
 * test and, after it, disconnect the sockets opened with `socket`, close the server and remove
 * the directory.
 */
export class ServerFixture {
  /** The current test's data directory. */
  dataDir = '';
  private current: MeshgradServer | undefined;
  private readonly sockets: Socket[] = [];

  constructor(prefix: string) {
    beforeEach(async () => {
      this.dataDir = await mkdtemp(path.join(tmpdir(), prefix));
    });
    afterEach(async () => {
      this.disconnectAll();
      await this.current?.close();
      this.current = undefined;
      await rm(this.dataDir, { recursive: true, force: true });
    });
  }

  /** Starts a test server on this test's data directory (see `startTestServer`). */
  async start(options: ServerOptions = {}): Promise<MeshgradServer> {
    this.current = await startTestServer({ dataDir: this.dataDir, ...options });
    return this.current;
  }

  /** A socket.io client of the running server's `namespace`, closed after the test. */
  socket(
    namespace: '/volunteer' | '/admin' = '/volunteer',
    options: Partial<ManagerOptions & SocketOptions> = {},
  ): Socket {
    if (!this.current) throw new Error('ServerFixture.socket: start() the server first');
    const s = connect(`${this.current.url}${namespace}`, {
      transports: ['websocket'],
      reconnection: false,
      ...options,
    });
    this.sockets.push(s);
    return s;
  }

  /** Disconnects every socket opened so far (e.g. before restarting the server). */
  disconnectAll(): void {
    for (const s of this.sockets.splice(0)) s.disconnect();
  }
}
