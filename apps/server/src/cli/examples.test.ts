/**
 * Every example in examples/ validates with `meshgrad validate` and trains to the target its
 * spec states (its `stop` criterion): a real job server, and volunteers in Node that speak the
 * real protocol and relay their blocks through the server.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend, JobInfo, ParameterLayout } from '@meshgrad/core';
import { serverDevice } from '../jobs/custom-kernel.ts';
import type { JobSpec } from '../jobs/job-spec.ts';
import {
  NodeVolunteer,
  trainUntil,
  type NodeVolunteerOptions,
} from '../jobs/node-volunteer.test-support.ts';
import type { MeshgradServer } from '../server.ts';
import { startTestServer } from '../server.test-support.ts';
import { runCli } from './program.ts';
import { readSpecFile } from './spec-file.ts';

const EXAMPLES = path.resolve(import.meta.dirname, '../../../../examples');
/** Simulated volunteers per example. */
const VOLUNTEERS = 3;

/** What these tests use of @meshgrad/shaders (the server does not depend on it). */
interface Shaders {
  WebGpuBackend: {
    create(
      device: GPUDevice,
      layout: ParameterLayout,
      params: Float32Array,
      options: { customKernel?: { wgsl: string; entryPoint?: string } },
    ): Promise<Backend>;
  };
  requestBackendDevice(adapter: GPUAdapter | null): Promise<GPUDevice>;
}

/**
 * Volunteers on WebGPU, through Dawn as in the server: the WebGpuBackend a tab runs, with the
 * job's custom kernel. Imported by a computed name so the server's typecheck does not compile
 * the shaders package (vitest resolves it like any workspace package).
 */
async function webgpuVolunteers(): Promise<NodeVolunteerOptions> {
  const name = '@meshgrad/shaders';
  const shaders = (await import(/* @vite-ignore */ name)) as Shaders;
  // A fresh adapter from the server's Dawn instance: an adapter makes one device.
  const { gpu } = await serverDevice();
  const device = await shaders.requestBackendDevice(await gpu.requestAdapter());
  return {
    device: { backend: 'webgpu', userAgent: 'node-volunteer (Dawn)' },
    backend: (layout: ParameterLayout, params: Float32Array, job: JobInfo) => {
      if (!job.kernel) throw new Error('a custom job must send its kernel');
      return shaders.WebGpuBackend.create(device, layout, params, { customKernel: job.kernel });
    },
  };
}

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
async function trainExample(spec: JobSpec, timeoutMs: number, options: NodeVolunteerOptions) {
  dataDir = await mkdtemp(path.join(tmpdir(), 'meshgrad-example-'));
  // As `meshgrad serve --job` does: the spec file's folder may hold its data.
  server = await startTestServer({ dataDir, jobs: [spec], allowDataDirs: [EXAMPLES] });
  const url = server.url;
  if (spec.model.kind === 'custom') {
    // No CPU implementation of a host's kernel: a CPU volunteer is told it cannot join.
    await expect(NodeVolunteer.join(url)).rejects.toThrow(
      /ERR_NEEDS_WEBGPU: job linreg-wgsl-example runs the host's own WGSL kernel, which needs WebGPU/,
    );
  }
  for (let i = 0; i < VOLUNTEERS; i++) volunteers.push(await NodeVolunteer.join(url, options));
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
  // The volunteers hear the stop a moment after the job stops itself.
  await expect.poll(() => volunteers.every((v) => v.state === 'stopped')).toBe(true);
  expect(volunteers.some((v) => v.received > 0)).toBe(true);
  return { job, checkpoint: job.latest };
}

const examples: Array<{ dir: string; timeoutMs: number }> = [
  { dir: 'kmeans-clusters', timeoutMs: 60_000 },
  { dir: 'csv-rings', timeoutMs: 60_000 },
  { dir: 'mnist-mlp', timeoutMs: 240_000 },
  { dir: 'custom-wgsl-linreg', timeoutMs: 120_000 },
];

/**
 * Examples that are validated here but not trained: the convolutional net and the transformer
 * on the CPU backend in Node are too slow for this test's time budget. Real Chromium tabs train
 * the convolutional net to its target in e2e/specs/models.spec.ts; the transformer is not yet
 * trained by any test (docs/benchmarks.md, "Real models in tabs").
 */
const validatedOnly = ['mnist-cnn', 'text-lm'];

describe('examples', () => {
  for (const dir of validatedOnly) {
    it(`${dir}: validates`, async () => {
      await validates(path.join(EXAMPLES, dir, 'job.json'));
    });
  }

  for (const { dir, timeoutMs } of examples) {
    it(
      `${dir}: validates and trains to its stated target`,
      { timeout: timeoutMs + 30_000 },
      async () => {
        const file = path.join(EXAMPLES, dir, 'job.json');
        await validates(file);
        const spec = await readSpecFile(file);
        const options = spec.model.kind === 'custom' ? await webgpuVolunteers() : {};
        const { checkpoint } = await trainExample(spec, timeoutMs, options);
        // What each example reached, for the CI log.
        console.info(
          `${dir}: checkpoint ${checkpoint?.seq} at ${checkpoint?.samples} samples, test loss ${checkpoint?.testLoss.toPrecision(4)}` +
            (checkpoint?.testAccuracy !== undefined
              ? `, accuracy ${checkpoint.testAccuracy.toFixed(4)}`
              : '') +
            (checkpoint?.testObjective !== undefined
              ? `, objective ${checkpoint.testObjective.toPrecision(4)}`
              : ''),
        );
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
