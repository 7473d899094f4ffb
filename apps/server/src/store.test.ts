import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { promises as fs } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parameterLayout, PROTOCOL_VERSION } from '@meshgrad/core';
import { coreModelSpec, parseJobSpec } from './jobs/job-spec.ts';
import { ServerFixture, BLOBS_JOB, TEST_DEVICE } from './server.test-support.ts';
import { DataStore, type CheckpointManifest, type FileSystem } from './store.ts';
import { METRICS_FILE_CAP_BYTES } from './metrics-history.ts';

describe('durable writes on a running server', () => {
  const fixture = new ServerFixture('meshgrad-store-');

  it('a failing events.jsonl (EISDIR) is retried, counted and shown in /healthz; the server lives', async () => {
    const server = await fixture.start({ jobs: [BLOBS_JOB] });
    const events = path.join(server.dataDir, 'jobs', 'blobs', 'events.jsonl');
    await rm(events, { force: true });
    await mkdir(events);
    const s = fixture.socket();
    const reply = await s
      .timeout(5_000)
      .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, device: TEST_DEVICE });
    expect(reply).toMatchObject({ ok: true });
    await expect
      .poll(
        async () => {
          const h = (await (await fetch(`${server.url}/healthz`)).json()) as {
            status: string;
            degraded?: Array<{ file: string; code: string }>;
          };
          return h.degraded?.find((d) => d.file === 'events')?.code ?? h.status;
        },
        { timeout: 20_000, interval: 100 },
      )
      .toBe('EISDIR');
    await expect
      .poll(() => fetch(`${server.url}/metrics`).then((r) => r.text()), {
        timeout: 20_000,
        interval: 100,
      })
      .toMatch(/meshgrad_durable_write_failures_total\{file="events",outcome="failed"\} [1-9]/);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(
      /meshgrad_durable_write_failures_total\{file="events",outcome="retried"\} [1-9]/,
    );
    // Once the file is writable again the problem clears.
    await rm(events, { recursive: true });
    s.disconnect();
    await expect
      .poll(
        async () =>
          ((await (await fetch(`${server.url}/healthz`)).json()) as { status: string }).status,
        {
          timeout: 20_000,
          interval: 100,
        },
      )
      .toBe('ok');
  });
});

describe('event and metrics appends', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-append-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lines that come together are written in order, one append in flight, through an EMFILE', async () => {
    let inFlight = 0;
    let mostInFlight = 0;
    let calls = 0;
    let emfiles = 1;
    const files: FileSystem = {
      ...fs,
      appendFile: (async (...args: Parameters<typeof fs.appendFile>) => {
        calls++;
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        try {
          await new Promise((r) => setTimeout(r, 5));
          if (emfiles > 0) {
            emfiles--;
            throw Object.assign(new Error('EMFILE: too many open files, open'), {
              code: 'EMFILE',
            });
          }
          await fs.appendFile(...args);
        } finally {
          inFlight--;
        }
      }) as typeof fs.appendFile,
    };
    const store = new DataStore(dir, { files });
    await store.init();
    await store.saveSpec('blobs', BLOBS_JOB);
    const lines = 500;
    const first = store.appendEvent('blobs', { event: 'join', worker: 'w-0' });
    // While the first append fails with EMFILE and waits to be tried again, the rest queue.
    await expect
      .poll(() => store.health.problems(), { interval: 5 })
      .toMatchObject([{ file: 'events', code: 'EMFILE' }]);
    const rest = Array.from({ length: lines - 1 }, (_, i) =>
      store.appendEvent('blobs', { event: 'join', worker: `w-${i + 1}` }),
    );
    await Promise.all([first, ...rest]);
    const written = (await readFile(path.join(dir, 'jobs', 'blobs', 'events.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { worker: string }).worker);
    expect(written).toEqual(Array.from({ length: lines }, (_, i) => `w-${i}`));
    expect(mostInFlight).toBe(1);
    // The failed try, its retry, and the 499 lines that waited meanwhile in one more.
    expect(calls).toBe(3);
    expect(store.health.problems()).toEqual([]);
  });
});

describe('checkpoints in the data directory', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-ckpt-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const manifest = (seq: number, testLoss: number): CheckpointManifest => ({
    job: 'blobs',
    seq,
    samples: seq * 100,
    createdAt: new Date(seq * 1000).toISOString(),
    parameters: 4,
    worker: 'w',
    testLoss,
    file: `${seq}.bin`,
  });
  const params = (seq: number) => new Float32Array([seq, seq, seq, seq]);

  it('keeps the newest N and the best by test loss, and deletes the rest', async () => {
    const store = new DataStore(dir, { retention: { keepLast: 3 } });
    await store.init();
    const losses = [5, 4, 0.5, 3, 2, 1.5, 1.2, 1.1];
    for (const [i, loss] of losses.entries())
      await store.saveCheckpoint(manifest(i + 1, loss), params(i + 1));
    expect((await store.listCheckpoints('blobs')).map((m) => m.seq)).toEqual([3, 6, 7, 8]);
    const files = (await readdir(path.join(dir, 'jobs', 'blobs', 'checkpoints'))).sort();
    expect(files).toEqual([
      '3.bin',
      '3.json',
      '6.bin',
      '6.json',
      '7.bin',
      '7.json',
      '8.bin',
      '8.json',
      'latest.json',
    ]);
    // A restarted store reads the same list from disk.
    const again = new DataStore(dir, { retention: { keepLast: 3 } });
    expect((await again.listCheckpoints('blobs')).map((m) => m.seq)).toEqual([3, 6, 7, 8]);
    expect(await again.checkpoint('blobs', 6)).toMatchObject({ seq: 6, testLoss: 1.5 });
    expect(await again.checkpoint('blobs', 5)).toBeNull();
  });

  it('refuses a retention that keeps nothing', () => {
    expect(() => new DataStore(dir, { retention: { keepLast: 0 } })).toThrow(/at least 1/);
  });

  it('falls back to the newest readable checkpoint when the latest is truncated or unreadable', async () => {
    const store = new DataStore(dir);
    await store.init();
    for (const seq of [1, 2, 3]) await store.saveCheckpoint(manifest(seq, 1), params(seq));
    const ckpt = path.join(dir, 'jobs', 'blobs', 'checkpoints');
    await truncate(path.join(ckpt, '3.bin'), 7);
    const lines: string[] = [];
    const log = (await import('pino')).pino(
      { level: 'warn' },
      { write: (line: string) => void lines.push(line) },
    );
    const restarted = new DataStore(dir, { log });
    const latest = await restarted.latestCheckpoint('blobs');
    expect(latest?.seq).toBe(2);
    expect(await restarted.readCheckpoint(latest as CheckpointManifest)).toEqual(params(2));
    expect(lines.join('')).toMatch(/resuming from the newest readable one/);
    expect(lines.join('')).toMatch(/"resumedFrom":2/);
    // latest.json itself torn (a crash of an older version, a disk fault).
    await writeFile(path.join(ckpt, 'latest.json'), '{"job":"blo');
    expect((await new DataStore(dir, { log }).latestCheckpoint('blobs'))?.seq).toBe(2);
  });

  it('on a full disk a checkpoint fails alone, leaves no temporary file and the old latest intact', async () => {
    let full = false;
    const enospc = () =>
      Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const files: FileSystem = {
      ...fs,
      open: (async (...args: Parameters<typeof fs.open>) => {
        const handle = await fs.open(...args);
        if (!full) return handle;
        // The file is created, then the write fails: what a full disk does.
        const writeFile = async () => {
          throw enospc();
        };
        return Object.assign(handle, { writeFile });
      }) as typeof fs.open,
    };
    const store = new DataStore(dir, { files });
    await store.init();
    await store.saveSpec('blobs', BLOBS_JOB);
    await store.saveCheckpoint(manifest(1, 1), params(1));
    full = true;
    await expect(store.saveCheckpoint(manifest(2, 1), params(2))).rejects.toThrow(/ENOSPC/);
    expect(store.health.problems()).toMatchObject([{ file: 'checkpoint', code: 'ENOSPC' }]);
    const names = await readdir(path.join(dir, 'jobs', 'blobs', 'checkpoints'));
    expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([]);
    // A restart on the still-full disk: the spec it already has is not written again.
    const restarted = new DataStore(dir, { files });
    await restarted.init();
    await restarted.saveSpec('blobs', BLOBS_JOB);
    expect((await restarted.latestCheckpoint('blobs'))?.seq).toBe(1);
    full = false;
    await store.saveCheckpoint(manifest(3, 1), params(3));
    expect(store.health.problems()).toEqual([]);
  });

  it('removes temporary files left behind when it starts', async () => {
    const ckpt = path.join(dir, 'jobs', 'blobs', 'checkpoints');
    await mkdir(ckpt, { recursive: true });
    const leftover = path.join(ckpt, '7.bin.1234.0badf00d.tmp');
    await writeFile(leftover, 'half a checkpoint');
    await writeFile(path.join(dir, 'jobs', 'blobs', 'progress.json.99.deadbeef.tmp'), '{');
    await new DataStore(dir).init();
    expect(await readdir(ckpt)).toEqual([]);
    expect(await readdir(path.join(dir, 'jobs', 'blobs'))).toEqual(['checkpoints']);
  });
});

describe('the metrics history', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-metrics-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const record = (i: number, workers = 0) => ({
    time: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
    samples: i * 10,
    workers,
    samplesPerSec: 10,
    perWorker: Object.fromEntries(
      Array.from({ length: workers }, (_, w) => [
        `worker-${w}`,
        { samplesPerSec: 1, communicationPeriod: 4, blocksPerMessage: 2, encoding: 'f32' as const },
      ]),
    ),
  });

  it('serves a time range with a limit, newest first kept, oldest reported as omitted', async () => {
    const store = new DataStore(dir);
    await store.init();
    await mkdir(store.jobDir('blobs'), { recursive: true });
    for (let i = 0; i < 50; i++) await store.appendMetrics('blobs', record(i));
    const since = Date.UTC(2026, 0, 1) + 10_000;
    const until = Date.UTC(2026, 0, 1) + 29_000;
    const answer = await store.queryMetrics('blobs', { since, until, limit: 5 });
    expect(answer.history.map((r) => r.samples)).toEqual([250, 260, 270, 280, 290]);
    expect(answer.omitted).toBe(15);
    // A restarted store reads the same records back from the file.
    const again = await new DataStore(dir).queryMetrics('blobs', { limit: 3 });
    expect(again.history.map((r) => r.samples)).toEqual([470, 480, 490]);
  });

  it('keeps the file under its cap and reads only the tail of a huge one', async () => {
    const store = new DataStore(dir);
    await store.init();
    await mkdir(store.jobDir('blobs'), { recursive: true });
    const file = path.join(store.jobDir('blobs'), 'metrics.jsonl');
    // A history written by an older server with no cap: far beyond what may be parsed at once.
    const big = JSON.stringify(record(0, 400)) + '\n';
    const copies = Math.ceil((METRICS_FILE_CAP_BYTES * 1.5) / big.length);
    await writeFile(file, big.repeat(copies));
    await store.appendMetrics('blobs', record(1));
    expect((await stat(file)).size).toBeLessThan(METRICS_FILE_CAP_BYTES);
    const answer = await store.queryMetrics('blobs', { limit: 2 });
    expect(answer.history.map((r) => r.samples)).toEqual([0, 10]);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ samples: 10 });
  });
});

describe('a server restarting on a truncated latest checkpoint', () => {
  const fixture = new ServerFixture('meshgrad-restart-');

  it('starts, with the job given or resumed from the data directory, from the newest readable one', async () => {
    const spec = parseJobSpec(BLOBS_JOB);
    const size = parameterLayout(coreModelSpec(spec.model), spec.blockSize).size;
    const store = new DataStore(fixture.dataDir);
    await store.init();
    await store.saveSpec(spec.id, spec);
    for (const seq of [1, 2]) {
      await store.saveCheckpoint(
        {
          job: spec.id,
          seq,
          samples: seq * 100,
          createdAt: new Date(seq * 1000).toISOString(),
          parameters: size,
          worker: 'w',
          testLoss: 1,
          file: `${seq}.bin`,
        },
        new Float32Array(size).fill(seq),
      );
    }
    await truncate(path.join(store.jobDir(spec.id), 'checkpoints', '2.bin'), 3);
    // As `--job` would run it, and as a server without `--job` finds it in the data directory.
    for (const jobs of [[BLOBS_JOB], []]) {
      const server = await fixture.start({ jobs });
      const job = server.jobs.get(spec.id);
      expect(job?.latest?.seq).toBe(1);
      expect(job?.checkpointParams().params[0]).toBe(1);
      await server.close();
    }
  });
});
