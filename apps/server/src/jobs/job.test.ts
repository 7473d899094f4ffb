import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../logger.ts';
import { ServerMetrics } from '../metrics.ts';
import { DataStore } from '../store.ts';
import { Job, type JobOutbox } from './job.ts';
import { parseJobSpec } from './job-spec.ts';

const device = { backend: 'cpu', userAgent: 'vitest' } as const;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-job-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function recordingOutbox() {
  const calls: { control: string[]; requests: string[] } = { control: [], requests: [] };
  const outbox: JobOutbox = {
    neighbours() {},
    requestState(_worker, requestId) {
      calls.requests.push(requestId);
    },
    control(_worker, state) {
      calls.control.push(state);
    },
  };
  return { outbox, calls };
}

async function openJob(extra: Record<string, unknown>): Promise<Job> {
  const store = new DataStore(dir);
  await store.init();
  const spec = parseJobSpec({
    id: 'blobs',
    name: 'Blobs',
    model: { kind: 'kmeans', dims: 2, clusters: 3 },
    dataset: { kind: 'clusters', clusters: 3, dims: 2, count: 300, testCount: 100 },
    ...extra,
  });
  return Job.open(spec, store, new ServerMetrics(), createLogger('silent'));
}

const stats = (samples: number) => ({
  jobId: 'blobs',
  samples,
  samplesPerSec: 10,
  offered: 0,
  accepted: 0,
  paused: false,
  links: [],
});

describe('Job', () => {
  it('starts with the spec’s fixed balancer settings', async () => {
    const job = await openJob({
      balancer: { mode: 'fixed', communicationPeriod: 48, blocksPerMessage: 1, encoding: 'f16' },
    });
    expect(job.balancer).toEqual({
      mode: 'fixed',
      settings: { communicationPeriod: 48, blocksPerMessage: 1, encoding: 'f16' },
    });
    const { outbox } = recordingOutbox();
    expect(job.join(undefined, 's1', device, outbox).settings.communicationPeriod).toBe(48);
  });

  it('stops itself when a checkpoint meets the target objective', async () => {
    const job = await openJob({ stop: { targetObjective: 1e9 } });
    const { outbox, calls } = recordingOutbox();
    const w = job.join(undefined, 's1', device, outbox);
    job.recordStats(w, stats(100));
    const requestId = job.requestState(outbox);
    expect(requestId).not.toBeNull();
    const params = job.initialParams();
    expect(
      await job.acceptState(w.id, requestId as string, new Uint8Array(params.buffer.slice(0))),
    ).toBeNull();
    expect(job.state).toBe('running');
    await job.tick(outbox);
    expect(job.state).toBe('stopped');
    expect(calls.control).toEqual(['stopped']);
  });

  it('asks for a final state at maxSamples and stops once it is stored', async () => {
    const job = await openJob({ stop: { maxSamples: 500 }, checkpointIntervalSec: 3600 });
    const { outbox, calls } = recordingOutbox();
    const w = job.join(undefined, 's1', device, outbox);
    job.recordStats(w, stats(400));
    await job.tick(outbox);
    expect(calls.requests).toHaveLength(0);
    job.recordStats(w, stats(520));
    await job.tick(outbox);
    expect(job.state).toBe('running');
    expect(calls.requests).toHaveLength(1);
    const params = job.initialParams();
    await job.acceptState(
      w.id,
      calls.requests[0] as string,
      new Uint8Array(params.buffer.slice(0)),
    );
    await job.tick(outbox);
    expect(job.state).toBe('stopped');
    expect(job.latest?.samples).toBe(520);
  });
});
