/**
 * The server's whole job tick (`Job.tick`: cluster sync, stale sweep, the balancer with its
 * plans applied, gauges, progress) on a real `Job` whose N workers joined through `Job.join` and
 * report the synthetic job's links through `Job.recordStats` every tick, as the socket layer
 * would pass them on. The outbox only counts what would go out.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stats } from '@meshgrad/core';
import { openTestJob } from '../../apps/server/src/jobs/job.test-support.ts';
import type { JobOutbox } from '../../apps/server/src/jobs/outbox.ts';
import { DataStore } from '../../apps/server/src/store.ts';
import { syntheticJob } from './job.ts';

const DEVICE = { backend: 'cpu', userAgent: 'bench:tick' } as const;

export interface JobTickRun {
  /** Hands the job every worker's tick-`t` stats, as their messages would. */
  report(t: number): void;
  /** Times one `Job.tick`; ms. */
  tick(): Promise<number>;
  /** Messages the job sent (settings, neighbours) since the start. */
  readonly sent: { settings: number; neighbours: number };
  close(): Promise<void>;
}

/** A job of `n` workers, joined and ready to report. */
export async function openJobTick(n: number): Promise<JobTickRun> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-job-tick-'));
  const job = await openTestJob(new DataStore(dir), {
    id: 'tick',
    name: 'Job tick benchmark',
    model: { kind: 'kmeans', dims: 4, clusters: 4 },
    dataset: { kind: 'clusters', clusters: 4, dims: 4, count: 6_400, testCount: 400 },
    shards: 64,
    batchSize: 32,
  });
  const sent = { settings: 0, neighbours: 0 };
  const outbox: JobOutbox = {
    neighbours: () => void sent.neighbours++,
    settings: () => void sent.settings++,
    requestState: () => {},
    control: () => {},
  };
  job.attach(outbox);
  const synthetic = syntheticJob(n);
  const workers = synthetic.ids.map((id, i) => job.join(id, `s${i}`, DEVICE));
  return {
    sent,
    report(t) {
      const input = synthetic.input(t, new Map(workers.map((w) => [w.id, w.neighbours])));
      const now = performance.now() / 1000;
      for (const [i, report] of input.workers.entries()) {
        const stats: Stats = {
          jobId: job.id,
          samples: Math.round(report.samplesPerSec * t),
          samplesPerSec: report.samplesPerSec,
          loss: 1 / t,
          offered: 10 * t,
          accepted: 9 * t,
          paused: false,
          links: [...report.links],
          ...(report.sendBusyFraction !== undefined
            ? { sendBusyFraction: report.sendBusyFraction }
            : {}),
        };
        job.recordStats(workers[i]!, stats, now);
      }
    },
    async tick() {
      const started = performance.now();
      await job.tick();
      return performance.now() - started;
    },
    async close() {
      await job.flush();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
