/**
 * Test support: a real `redis-server` (Debian's redis-server package) on a free port, with its
 * own temporary directory and no persistence, stopped by the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly port: number,
    private readonly log: () => string,
  ) {}

  /** The redis-server process (its CPU time is read by bench:server). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server and waits until it accepts connections; throws with its output if not. */
  static async start(): Promise<RedisServer> {
    const dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-redis-'));
    const port = await freePort();
    let output = '';
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (err) =>
        reject(
          new Error(
            `cannot start redis-server (${err.message}); install it: apt-get install -y redis-server`,
          ),
        ),
      );
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${output}`)));
    });
    const ready = new Promise<void>((resolve) => {
      const onData = (d: Buffer) => {
        output += d.toString();
        if (/Ready to accept connections/i.test(output)) resolve();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
    });
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`redis-server not ready within 15 s:\n${output}`)),
        15_000,
      ).unref(),
    );
    // Once ready, a later exit (our own stop) must not surface as an unhandled rejection.
    failed.catch(() => undefined);
    await Promise.race([ready, failed, timeout]);
    return new RedisServer(child, dir, port, () => output);
  }

  output(): string {
    return this.log();
  }

  /** Stalls redis-server (SIGSTOP) for `ms`, as a machine under load or a paused VM would. */
  async stall(ms: number): Promise<void> {
    this.child.kill('SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, ms));
    } finally {
      this.child.kill('SIGCONT');
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
