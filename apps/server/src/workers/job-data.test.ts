import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type Dataset } from '@meshgrad/core';
import type { Logger } from '../logger.ts';
import { DataStore } from '../store.ts';
import { closeTestJobs, openTestJob, stats } from '../jobs/job.test-support.ts';
import { JobSpecError, parseJobSpec } from '../jobs/job-spec.ts';
import { BLOBS_JOB, ServerFixture, TEST_DEVICE } from '../server.test-support.ts';
import { buildJobData, Evaluator, WorkerCrashedError } from './job-data.ts';

const TOKEN = 'test-admin-token-0123456789';

/** A built-in dataset large enough that building it takes seconds, not milliseconds. */
const LARGE_JOB = {
  id: 'large',
  name: 'A million Gaussian points',
  model: { kind: 'kmeans', dims: 32, clusters: 4 },
  dataset: { kind: 'clusters', clusters: 4, dims: 32, count: 1_000_000, testCount: 2_000 },
  shards: 2,
  batchSize: 8,
} as const;

/**
 * A worker thread that plays an evaluator: it answers `evaluate` with `params[0]` as the loss,
 * and dies (exit code 7) when `params[0]` is −1.
 */
const FLAKY_EVALUATOR = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m.type === 'evaluator') return parentPort.postMessage({ type: 'ready', requestId: m.requestId });
  if (m.params[0] === -1) process.exit(7);
  parentPort.postMessage({ type: 'evaluated', requestId: m.requestId, result: { loss: m.params[0], count: 1 } });
});
`;

const fixture = new ServerFixture('meshgrad-workers-test-');

/** A logger that calls `onLine` with each line it writes, as it writes it. */
function watchingLogger(onLine: (line: { job?: string; msg?: string }) => void): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      onLine(JSON.parse(chunk.toString('utf8')) as { job?: string; msg?: string });
      done();
    },
  });
  return pino({ level: 'debug' }, sink) as Logger;
}

describe('worker threads', () => {
  it('answers /healthz and a hello while a large built-in dataset is being built', async () => {
    const order: string[] = [];
    let buildStarted = (): void => {};
    const started = new Promise<void>((resolve) => (buildStarted = resolve));
    const logger = watchingLogger((line) => {
      if (line.job !== LARGE_JOB.id) return;
      if (line.msg === 'building the job data') buildStarted();
      if (line.msg === 'job data built') order.push('built');
    });
    const server = await fixture.start({ jobs: [BLOBS_JOB], adminToken: TOKEN, logger });

    const created = fetch(`${server.url}/api/admin/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(LARGE_JOB),
    });
    await started;
    const health = fetch(`${server.url}/healthz`).then((res) => {
      order.push('health');
      return res.status;
    });
    const hello = fixture
      .socket()
      .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, device: TEST_DEVICE })
      .then((reply: { ok: boolean }) => {
        order.push('hello');
        return reply.ok;
      });

    expect(await health).toBe(200);
    expect(await hello).toBe(true);
    expect((await created).status).toBe(201);
    // The event loop served both while the worker thread built the data.
    expect(order).toEqual(expect.arrayContaining(['health', 'hello', 'built']));
    expect(order.indexOf('health')).toBeLessThan(order.indexOf('built'));
    expect(order.indexOf('hello')).toBeLessThan(order.indexOf('built'));
    // And the job runs on what the thread built: its shards hold every training row.
    const job = server.jobs.get(LARGE_JOB.id);
    expect(job?.train.count).toBe(LARGE_JOB.dataset.count);
    expect((job?.shardSize(0) ?? 0) + (job?.shardSize(1) ?? 0)).toBe(LARGE_JOB.dataset.count);
  });

  it('brings a data file’s problem back as the JobSpecError naming its field', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-workers-data-'));
    try {
      const file = path.join(dir, 'rows.csv');
      await writeFile(file, 'a,b,label\n1,2,0\n3,x,1\n');
      const spec = parseJobSpec(
        {
          id: 'csv',
          name: 'csv',
          model: { kind: 'mlp', inputs: 2, hidden: [], classes: 2 },
          dataset: { kind: 'csv', file, labelColumn: 'label' },
        },
        { allowedDirs: [dir] },
      );
      const err = await buildJobData(spec).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobSpecError);
      expect((err as JobSpecError).field).toBe('dataset.file');
      expect((err as JobSpecError).reason).toMatch(/rows\.csv/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails only the request of a thread that died; the next one gets a new thread', async () => {
    const spec = parseJobSpec(BLOBS_JOB);
    const test: Dataset = {
      name: 't',
      count: 1,
      features: 2,
      x: new Float32Array(2),
      labels: null,
      classes: 0,
    };
    const evaluator = new Evaluator(spec, test, { eval: FLAKY_EVALUATOR });
    try {
      const crash = await evaluator.evaluate(Float32Array.of(-1)).catch((e: unknown) => e);
      expect(crash).toBeInstanceOf(WorkerCrashedError);
      expect((crash as WorkerCrashedError).code).toBe('ERR_WORKER_CRASHED');
      expect((crash as Error).message).toMatch(/evaluator worker thread died: exit code 7/);
      expect((await evaluator.evaluate(Float32Array.of(2.5))).loss).toBe(2.5);
    } finally {
      await evaluator.close();
    }
  });

  it('fails a data build whose thread died with WorkerCrashedError', async () => {
    const spec = parseJobSpec(BLOBS_JOB);
    const err = await buildJobData(spec, { eval: 'process.exit(3)' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerCrashedError);
    expect((err as Error).message).toMatch(/job blobs data worker thread died: exit code 3/);
  });

  it('evaluates an upload off the event loop: the loop turns before the verdict', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-workers-eval-'));
    try {
      // A held-out set of 200,000 rows: evaluating it is work, not a microtask.
      const job = await openTestJob(new DataStore(dir), {
        id: 'eval',
        name: 'eval',
        model: { kind: 'kmeans', dims: 32, clusters: 4 },
        dataset: { kind: 'clusters', clusters: 4, dims: 32, count: 1_000, testCount: 200_000 },
      });
      const requests: string[] = [];
      job.attach({
        neighbours: () => undefined,
        settings: () => undefined,
        requestState: (_worker, requestId) => requests.push(requestId),
        control: () => undefined,
      });
      const w = job.join(undefined, 's1', TEST_DEVICE);
      job.recordStats(w, stats(100));
      const requestId = job.requestState() as string;
      // Centroids far from every cluster: refused as a regression, with no disk write between
      // the evaluation and the verdict.
      const far = new Float32Array(job.layout.size).fill(1e3);
      const order: string[] = [];
      const verdict = job
        .acceptState(w.id, requestId, new Uint8Array(far.buffer))
        .then((problem) => {
          order.push('evaluated');
          return problem;
        });
      setImmediate(() => order.push('loop turned'));
      expect(await verdict).toMatch(/regressed/);
      expect(order).toEqual(['loop turned', 'evaluated']);
      await job.close();
    } finally {
      await closeTestJobs();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers an upload whose evaluation thread died with a reason, and evaluates the next on a new one', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-workers-crash-'));
    try {
      const job = await openTestJob(new DataStore(dir), {
        id: 'crash',
        name: 'crash',
        model: { kind: 'kmeans', dims: 32, clusters: 4 },
        dataset: { kind: 'clusters', clusters: 4, dims: 32, count: 1_000, testCount: 200_000 },
      });
      const w = job.join(undefined, 's1', TEST_DEVICE);
      job.recordStats(w, stats(100));
      const state = new Uint8Array(job.initialParams().slice().buffer);
      const first = job.acceptState(w.id, job.requestState() as string, state);
      // Once the evaluation is under way, its thread ends (as a crash or an OOM kill would).
      await new Promise((resolve) => setImmediate(resolve));
      await job.close();
      expect(await first).toMatch(/could not evaluate the state \(ERR_WORKER_CRASHED\)/);
      expect(job.latest).toBeNull();
      expect(w.refusedUploads).toBe(0);

      expect(await job.acceptState(w.id, job.requestState() as string, state)).toBeNull();
      expect(job.latest?.seq).toBe(1);
      await job.close();
    } finally {
      await closeTestJobs();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
