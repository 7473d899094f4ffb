/**
 * Every example in examples/ validates with `meshgrad validate` and trains to the target its
 * spec states (its `stop` criterion): a real job server, and volunteers in Node that speak the
 * real protocol and relay their blocks through the server.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobSpec } from '../jobs/job-spec.ts';
import { NodeVolunteer, trainUntil } from '../jobs/node-volunteer.test-support.ts';
import { createServer, type MeshgradServer } from '../server.ts';
import { runCli } from './program.ts';
import { readSpecFile } from './spec-file.ts';

const EXAMPLES = path.resolve(import.meta.dirname, '../../../../examples');
/** Simulated volunteers per example. */
const VOLUNTEERS = 3;

let server: MeshgradServer | null = null;
let dataDir: string | null = null;
let volunteers: NodeVolunteer[] = [];

afterEach(async () => {
  for (const v of volunteers) v.close();
  volunteers = [];
  await server?.close();
  server = null;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  dataDir = null;
});

async function validates(file: string): Promise<void> {
  let out = '';
  let err = '';
  const code = await runCli(['validate', file], {
    out: (t) => (out += t),
    err: (t) => (err += t),
  });
  expect(err).toBe('');
  expect(code).toBe(0);
  expect(out).toContain(': ok');
}

/** Trains the example's job until it stops itself; returns the final checkpoint. */
async function trainExample(spec: JobSpec, timeoutMs: number) {
  dataDir = await mkdtemp(path.join(tmpdir(), 'meshgrad-example-'));
  server = await createServer({
    port: 0,
    host: '127.0.0.1',
    dataDir,
    jobs: [spec],
    logLevel: 'silent',
    clientDir: null,
  });
  const url = server.url;
  for (let i = 0; i < VOLUNTEERS; i++) volunteers.push(await NodeVolunteer.join(url));
  const job = server.jobs.get(spec.id);
  if (!job) throw new Error('job missing');
  const s = server;
  // The spec's checkpoint interval suits real runs; ask more often so the test ends sooner.
  const stopped = await trainUntil(
    volunteers,
    () => job.state === 'stopped',
    timeoutMs,
    () => s.requestCheckpoint(spec.id),
  );
  expect(
    stopped,
    `job still ${job.state} after ${timeoutMs} ms; latest ${JSON.stringify(job.latest)}`,
  ).toBe(true);
  expect(volunteers.every((v) => v.state === 'stopped')).toBe(true);
  expect(volunteers.some((v) => v.received > 0)).toBe(true);
  return { job, checkpoint: job.latest };
}

const examples: Array<{ dir: string; timeoutMs: number }> = [
  { dir: 'kmeans-clusters', timeoutMs: 60_000 },
  { dir: 'csv-rings', timeoutMs: 60_000 },
  { dir: 'mnist-mlp', timeoutMs: 240_000 },
];

describe('examples', () => {
  for (const { dir, timeoutMs } of examples) {
    it(
      `${dir}: validates and trains to its stated target`,
      { timeout: timeoutMs + 30_000 },
      async () => {
        const file = path.join(EXAMPLES, dir, 'job.json');
        await validates(file);
        const spec = await readSpecFile(file);
        const { checkpoint } = await trainExample(spec, timeoutMs);
        expect(checkpoint).not.toBeNull();
        const { targetAccuracy, targetObjective, targetLoss } = spec.stop;
        if (targetAccuracy !== undefined)
          expect(checkpoint?.testAccuracy).toBeGreaterThanOrEqual(targetAccuracy);
        if (targetObjective !== undefined)
          expect(checkpoint?.testObjective).toBeLessThanOrEqual(targetObjective);
        if (targetLoss !== undefined) expect(checkpoint?.testLoss).toBeLessThanOrEqual(targetLoss);
      },
    );
  }
});
