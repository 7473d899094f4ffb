/** Test support for `Job`. */
import { createLogger } from '../logger.ts';
import { ServerMetrics } from '../metrics.ts';
import type { DataStore } from '../store.ts';
import { Job } from './job.ts';
import { parseJobSpec } from './job-spec.ts';

/** Opens the job `spec` on `store` (initialised first), with fresh metrics and a silent log. */
export async function openTestJob(store: DataStore, spec: unknown): Promise<Job> {
  await store.init();
  return Job.open(parseJobSpec(spec), store, new ServerMetrics(), createLogger('silent'));
}

/** A worker's `stats` report with only the sample count set. */
export const stats = (samples: number) => ({
  jobId: 'blobs',
  samples,
  samplesPerSec: 10,
  offered: 0,
  accepted: 0,
  paused: false,
  links: [],
});
