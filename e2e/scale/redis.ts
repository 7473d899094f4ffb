/**
 * A real `redis-server` (Debian's redis-server package; .ci/run installs it) on a free port with
 * its own temporary directory and no persistence, for the scale-out spec.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../volunteer/server-process.ts';

export class RedisProcess {
  private child: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'meshgrad-e2e-redis-'));
  output = '';

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisProcess> {
    const r = new RedisProcess(await freePort());
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(r.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        r.dir,
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    r.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server not ready in 15 s:\n${r.output}`)),
        15_000,
      );
      const onData = (d: Buffer) => {
        r.output += d.toString();
        if (/ready to accept connections/i.test(r.output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(
          new Error(`cannot start redis-server (${err.message}): apt-get install -y redis-server`),
        );
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${String(code)}:\n${r.output}`));
      });
    });
    return r;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
