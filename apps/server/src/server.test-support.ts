/**
 * Test support: real job servers for tests that talk to them over HTTP and socket.io. A test
 * server listens on a free local port, logs nothing and serves no pages; `ServerFixture` gives
 * every test of a file a fresh data directory and closes what the test opened.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import {
  io as connect,
  type ManagerOptions,
  type Socket,
  type SocketOptions,
} from 'socket.io-client';
import { createServer, type MeshgradServer, type ServerOptions } from './server.ts';

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
