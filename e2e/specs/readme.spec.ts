/**
 * The README as a new user follows it: a fresh `git clone` of this repository (its committed
 * HEAD), the README's install line, then each command of its Run and "Your own jobs" sections
 * typed as the README shows it, in a shell, from the clone's root, with its output checked.
 * The default job is trained by one real volunteer tab, as `npm start` runs it, so the export
 * command has a checkpoint to write.
 *
 * The commands come from the README's own `sh` blocks and inline code: a command the README
 * gains without a check here fails the test. Not run here, and why:
 * - `sudo apt-get …`: system packages, installed on any machine that runs this suite.
 * - `npm test` and `npm run bench:*`: the suite itself, and the benchmarks (minutes each).
 * - `npm run build`: the first thing `npm start` runs, checked there.
 * Two adjustments to "as typed": the servers listen on free ports, through the two ways the
 * README gives (`npm start -- --port N` and `PORT=N`), because 8080 may be taken on a shared
 * machine; and `npm ci` runs with `--offline`, so the test does not depend on the registry (npm's
 * cache holds everything the lockfile names once the repository itself was installed).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decodeSafetensors } from '@meshgrad/core';
import { test, expect } from './fixtures.ts';
import { freePort } from '../volunteer/server-process.ts';

const REPO = resolve(import.meta.dirname, '../..');
/** `npm ci` of the whole workspace from npm's cache: about 20 s on an idle machine. */
const INSTALL_TIMEOUT_MS = 600_000;
/** `npm start` builds the page, the console and the server before it listens. */
const START_TIMEOUT_MS = 300_000;
/** One CLI command (`npx meshgrad …`). */
const COMMAND_TIMEOUT_MS = 60_000;

/** README commands this spec runs, each with what its output must show. */
const CHECKED = [
  'npm ci',
  'npm start',
  'npm start -- --port 9000',
  'npm start -- --job examples/kmeans-clusters/job.json',
  'npx meshgrad --help',
  'npx meshgrad serve --help',
  'npx meshgrad validate examples/kmeans-clusters/job.json',
  'npx meshgrad export .meshgrad/jobs/mnist-mlp --format safetensors',
  'npx meshgrad schema > job-spec.schema.json',
] as const;
/** README commands this spec leaves alone (see the header). */
const NOT_RUN = /^(sudo apt-get |npm test\b|npm run bench:|npm run build$)/;

let clone = '';

/** Every command the README shows: the lines of its `sh` blocks and its inline `npm`/`npx` code. */
function readmeCommands(readme: string): string[] {
  const commands = new Set<string>();
  for (const block of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of (block[1] ?? '').split('\n')) {
      const command = line.replace(/\s+#.*$/, '').trim();
      if (command) commands.add(command);
    }
  }
  for (const inline of readme.matchAll(/`((?:npm|npx) [^`]+)`/g)) {
    if (inline[1]) commands.add(inline[1].trim());
  }
  return [...commands];
}

/** Runs one README line in a shell in the clone, as typed. */
function sh(command: string, timeout = COMMAND_TIMEOUT_MS) {
  const r = spawnSync('sh', ['-c', command], {
    cwd: clone,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: r.stdout + r.stderr };
}

/** A running `npm start`: its output so far, its URL once it printed the banner, and stop(). */
class Started {
  output = '';
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;

  /** `env` on top of the test's own (e.g. `PORT`). */
  constructor(command: string, env: Record<string, string> = {}) {
    // Its own process group, so stopping it stops npm, the build and the server together.
    this.child = spawn('sh', ['-c', command], {
      cwd: clone,
      detached: true,
      env: { ...process.env, NO_COLOR: '1', ...env },
    });
    this.child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((done) => this.child.on('exit', (code) => done(code)));
  }

  async banner(): Promise<string> {
    await expect
      .poll(() => this.output, { timeout: START_TIMEOUT_MS, intervals: [1_000] })
      .toMatch(/meshgrad is running[\s\S]*admin token: +\S+\n[\s\S]*jobs: +\S/);
    return this.output;
  }

  /** Ctrl-C, as a user stops it (npm's own exit status then says only that it was stopped). */
  async stop(): Promise<void> {
    if (this.child.pid !== undefined && this.child.exitCode === null) {
      process.kill(-this.child.pid, 'SIGINT');
    }
    await this.exited;
  }
}

test.describe.configure({ mode: 'serial' });

test.beforeAll(() => {
  clone = mkdtempSync(join(tmpdir(), 'meshgrad-readme-'));
  const r = spawnSync('git', ['clone', '--quiet', REPO, clone], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
});

test.afterAll(() => {
  if (clone) rmSync(clone, { recursive: true, force: true });
});

test('the README lists only commands this spec checks or names as not run here', () => {
  const readme = readFileSync(join(clone, 'README.md'), 'utf8');
  const commands = readmeCommands(readme);
  const unchecked = commands.filter(
    (c) => !NOT_RUN.test(c) && !(CHECKED as readonly string[]).includes(c),
  );
  expect(unchecked, 'README commands without a check in this spec').toEqual([]);
  for (const c of CHECKED)
    expect(commands, 'a checked command the README no longer shows').toContain(c);
});

test('a fresh clone: npm ci, npm start, every command of the README', async ({ browser }) => {
  test.setTimeout(INSTALL_TIMEOUT_MS + 3 * START_TIMEOUT_MS + 300_000);

  const install = sh('npm ci --offline --no-audit --no-fund', INSTALL_TIMEOUT_MS);
  expect(install.status, install.output.slice(-3000)).toBe(0);
  // npm linked the command at install time, although nothing is built yet.
  expect(existsSync(join(clone, 'node_modules/.bin/meshgrad'))).toBe(true);
  const early = sh('npx meshgrad --help');
  expect(early.status).toBe(1);
  expect(early.stderr).toContain('run `npm run build` first');

  // `npm start -- --port N`: builds, then serves the default job and prints where to go.
  const port = await freePort();
  const server = new Started(`npm start -- --port ${port}`);
  try {
    const banner = await server.banner();
    expect(banner).toContain(`volunteer page: http://localhost:${port}/`);
    expect(banner).toContain(`admin console:  http://localhost:${port}/admin`);
    expect(banner).toMatch(/jobs: +mnist-mlp \(MNIST digits/);
    // Not a terminal: log lines are JSON, one object per line.
    const logLine = server.output.split('\n').find((l) => l.includes('meshgrad server listening'));
    expect(JSON.parse(logLine ?? 'null')).toMatchObject({ msg: 'meshgrad server listening', port });

    const help = sh('npx meshgrad --help');
    expect(help.status, help.output).toBe(0);
    for (const command of ['serve', 'validate', 'export', 'schema']) {
      expect(help.stdout).toContain(command);
    }
    const serveHelp = sh('npx meshgrad serve --help');
    expect(serveHelp.status, serveHelp.output).toBe(0);
    expect(serveHelp.stdout).toMatch(/--port[\s\S]*--data-dir[\s\S]*--log-format/);

    const validate = sh('npx meshgrad validate examples/kmeans-clusters/job.json');
    expect(validate.status, validate.output).toBe(0);
    expect(validate.stdout).toContain('kmeans-clusters-example');

    const schema = sh('npx meshgrad schema > job-spec.schema.json');
    expect(schema.status, schema.output).toBe(0);
    const parsed = JSON.parse(readFileSync(join(clone, 'job-spec.schema.json'), 'utf8')) as {
      properties?: Record<string, unknown>;
    };
    expect(Object.keys(parsed.properties ?? {})).toEqual(
      expect.arrayContaining(['id', 'model', 'dataset']),
    );

    // One volunteer trains the default job until the server stores a checkpoint.
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`http://localhost:${port}/?backend=cpu`);
    await page.locator('#join').click();
    await expect(page.locator('#state')).toHaveText('Training', { timeout: 120_000 });
    await expect
      .poll(() => existsSync(join(clone, '.meshgrad/jobs/mnist-mlp/checkpoints/latest.json')), {
        timeout: 180_000,
        intervals: [2_000],
      })
      .toBe(true);
    await context.close();
  } finally {
    await server.stop();
  }
  // The server heard the Ctrl-C and shut down in order (its log line, as JSON).
  expect(server.output).toMatch(/"msg":"shutting down"/);

  const exported = sh('npx meshgrad export .meshgrad/jobs/mnist-mlp --format safetensors');
  expect(exported.status, exported.output).toBe(0);
  const file = /exported checkpoint \d+ of job mnist-mlp [^\n]*\n\s+(\S+)/.exec(
    exported.stdout,
  )?.[1];
  expect(file, exported.stdout).toBeTruthy();
  const tensors = decodeSafetensors(new Uint8Array(readFileSync(resolve(clone, file ?? ''))));
  expect(tensors.tensors.length).toBeGreaterThan(0);

  // `npm start -- --job …`, on a port given the other way the README names, `PORT`.
  const otherPort = await freePort();
  const kmeans = new Started('npm start -- --job examples/kmeans-clusters/job.json', {
    PORT: String(otherPort),
  });
  try {
    const banner = await kmeans.banner();
    expect(banner).toContain(`volunteer page: http://localhost:${otherPort}/`);
    expect(banner).toMatch(/jobs: +kmeans-clusters-example \(/);
  } finally {
    await kmeans.stop();
  }
});
