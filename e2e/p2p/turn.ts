/**
 * A real TURN server for the p2p spec: Debian's coturn (`apt-get install -y coturn`), started
 * by the test on 127.0.0.1 with a temporary configuration in coturn's `use-auth-secret` mode,
 * the scheme the job server mints credentials for. Traffic stays on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../volunteer/server-process.ts';

export const TURNSERVER = process.env.MESHGRAD_TURNSERVER ?? '/usr/bin/turnserver';

export class TurnServer {
  private child: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'meshgrad-turn-'));
  readonly secret = randomBytes(18).toString('base64url');
  port = 0;
  output = '';

  /** `turn:127.0.0.1:<port>?transport=udp`, for `meshgrad serve --turn`. */
  get url(): string {
    return `turn:127.0.0.1:${this.port}?transport=udp`;
  }

  async start(): Promise<void> {
    if (!existsSync(TURNSERVER)) {
      throw new Error(`${TURNSERVER} is missing: install coturn (apt-get install -y coturn)`);
    }
    this.port = await freePort();
    const config = [
      `listening-ip=127.0.0.1`,
      `relay-ip=127.0.0.1`,
      `listening-port=${this.port}`,
      // Why loopback peers: both tabs' relay addresses are on 127.0.0.1, which coturn refuses
      // as a peer address unless told otherwise.
      'allow-loopback-peers',
      'use-auth-secret',
      `static-auth-secret=${this.secret}`,
      'realm=meshgrad.test',
      'fingerprint',
      'no-tls',
      'no-dtls',
      'no-cli',
      'no-multicast-peers',
      `userdb=${join(this.dir, 'turndb')}`,
      `pidfile=${join(this.dir, 'turnserver.pid')}`,
      'log-file=stdout',
      'simple-log',
      // Session lines name each allocation's user (our `<expiry>:<worker id>`).
      'verbose',
    ].join('\n');
    const file = join(this.dir, 'turnserver.conf');
    writeFileSync(file, config + '\n');
    const child = spawn(TURNSERVER, ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    // coturn also listens on TCP on the same port: ready once that accepts.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`turnserver exited early:\n${this.output}`);
      if (await accepts(this.port)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`turnserver did not listen on ${this.port} within 15 s:\n${this.output}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
