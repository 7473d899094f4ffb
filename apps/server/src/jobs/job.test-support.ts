/** Test support for `Job` and the data files job specs name. */
import { createLogger } from '../logger.ts';
import { ServerMetrics } from '../metrics.ts';
import type { DataStore } from '../store.ts';
import { Job } from './job.ts';
import { parseJobSpec } from './job-spec.ts';

/** The jobs `openTestJob` opened that `closeTestJobs` has not closed yet, with their stores. */
const opened: { job: Job; store: DataStore }[] = [];

/**
 * Opens the job `spec` on `store` (initialised first), with fresh metrics and a silent log. A
 * test file that removes the store's folder calls `closeTestJobs` first.
 */
export async function openTestJob(store: DataStore, spec: unknown): Promise<Job> {
  await store.init();
  const job = await Job.open(
    parseJobSpec(spec),
    store,
    new ServerMetrics(),
    createLogger('silent'),
  );
  opened.push({ job, store });
  return job;
}

/**
 * Ends every job `openTestJob` opened and waits for the lines their stores still had to append:
 * a job appends its events without waiting (they are coalesced, DataStore.appendEvent), and a
 * folder removed meanwhile fails with ENOTEMPTY when an append recreates a file in it.
 */
export async function closeTestJobs(): Promise<void> {
  const all = opened.splice(0);
  await Promise.all(all.map(({ job }) => job.close()));
  await Promise.all(all.map(({ store }) => store.settled()));
}

/** A worker's `stats` report for job `blobs` (BLOBS_JOB's id) with only the sample count set. */
export const stats = (samples: number) => ({
  jobId: 'blobs',
  samples,
  samplesPerSec: 10,
  offered: 0,
  accepted: 0,
  paused: false,
  links: [],
});

/** An IDX file of u8 values with the given shape; `magic` replaces its first two bytes. */
export function idxBytes(
  shape: readonly number[],
  values: ArrayLike<number>,
  magic: readonly [number, number] = [0, 0],
): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + values.length);
  out.set(magic, 0);
  out[2] = 0x08;
  out[3] = shape.length;
  const view = new DataView(out.buffer);
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(Array.from(values), 4 + 4 * shape.length);
  return out;
}
