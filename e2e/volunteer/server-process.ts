/**
 * Runs the real meshgrad server (the built `apps/server/dist/main.js`, exactly what `npm start`
 * runs) as a child process, so tests can kill it hard and start it again on the same data
 * directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';

const REPO = resolve(import.meta.dirname, '../..');
const MAIN = join(REPO, 'apps/server/dist/main.js');

/** Builds client and server once per test run (`npm run build`), as `npm start` does. */
export function buildOnce(): void {
  const marker = join(REPO, 'apps/server/dist/.e2e-built');
  if (process.env.MESHGRAD_E2E_BUILT === '1' && existsSync(marker)) return;
  const r = spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`npm run build failed with exit code ${String(r.status)}`);
  writeFileSync(marker, new Date().toISOString());
  process.env.MESHGRAD_E2E_BUILT = '1';
}

/**
 * How long a graceful shutdown may take: the server itself bounds its waits (HTTP drain 2 s,
 * appends 5 s); the rest is margin for a loaded machine.
 */
const STOP_TIMEOUT_MS = 30_000;

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export class ServerProcess {
  private child: ChildProcess | null = null;
  readonly dataDir: string;
  readonly jobFile: string | null;
  output = '';

  constructor(
    readonly port: number,
    job: unknown | null,
    /** More `meshgrad serve` options, e.g. `['--turn', url, '--turn-secret', secret]`. */
    private readonly extraArgs: readonly string[] = [],
  ) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'meshgrad-e2e-'));
    if (job) {
      this.jobFile = join(this.dataDir, 'job.json');
      writeFileSync(this.jobFile, JSON.stringify(job, null, 2));
    } else {
      this.jobFile = null;
    }
  }

  get url(): string {
    return `http://localhost:${this.port}`;
  }

  /** Starts the server and waits until /healthz answers. */
  async start(): Promise<void> {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: the build did not run`);
    const args = [
      MAIN,
      'serve',
      '--port',
      String(this.port),
      '--data-dir',
      this.dataDir,
      '--log-level',
      // MESHGRAD_E2E_LOG_LEVEL=debug shows every refused message when a spec needs diagnosing.
      process.env.MESHGRAD_E2E_LOG_LEVEL ?? 'warn',
    ];
    if (this.jobFile) args.push('--job', this.jobFile);
    // Specs written to a temporary folder name data and kernels under examples/, as a host
    // would allow its own data folder.
    args.push('--allow-data-dir', join(REPO, 'examples'));
    args.push(...this.extraArgs);
    const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`server exited early:\n${this.output}`);
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`server did not become healthy within 60 s:\n${this.output}`);
  }

  /** Kills the process without warning (SIGKILL): no graceful shutdown, like a crash. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.child = null;
  }

  /**
   * Stops the server as a host's Ctrl-C does (SIGTERM: a graceful shutdown). A shutdown that
   * has not ended within STOP_TIMEOUT_MS is a defect: the process is killed and the test fails
   * with what the server printed, instead of hanging until the test's own timeout.
   */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<boolean>((r) => child.once('exit', () => r(true)));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), STOP_TIMEOUT_MS)));
    const inTime = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (!inTime) {
      child.kill('SIGKILL');
      await exited;
    }
    this.child = null;
    if (!inTime) {
      throw new Error(
        `the server did not shut down within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM; its output:\n` +
          this.output.slice(-4_000),
      );
    }
  }
}
