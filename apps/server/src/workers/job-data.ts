/**
 * The main thread's side of the worker threads (docs/design.md §8): a job's data is built, and
 * its checkpoints evaluated, in a worker thread, so a large dataset or test set never stalls
 * the event loop that answers /healthz, hellos and every other volunteer.
 */
import type { EvaluationResult } from '@meshgrad/core';
import type { JobSpec } from '../jobs/job-spec.ts';
import { workerEntry } from './entry-file.ts';
import type { BuiltJobData } from './protocol.ts';
import { TaskWorker, type WorkerSource } from './task-worker.ts';

export { WorkerCrashedError, WorkerTaskError, type BuiltJobData } from './protocol.ts';

/**
 * Loads or generates a job's train and test sets and cuts its shards in a worker thread of its
 * own, ended when done.
 * @throws JobSpecError as `loadJobData` (jobs/data.ts); WorkerCrashedError when the thread dies.
 */
export async function buildJobData(
  spec: JobSpec,
  source: WorkerSource = workerEntry(),
): Promise<BuiltJobData> {
  const worker = new TaskWorker(source, `job ${spec.id} data`);
  try {
    const reply = await worker.request({ type: 'build-data', spec });
    if (reply.type !== 'data') throw new Error(`unexpected ${reply.type} reply to build-data`);
    return reply.data;
  } finally {
    await worker.close();
  }
}

/**
 * Evaluates a job's checkpoints on its held-out test set in a worker thread kept for the job.
 * The test set is shared memory (`BuiltJobData.test`), so giving it to a thread copies nothing.
 */
export class Evaluator {
  private readonly worker: TaskWorker;

  constructor(spec: JobSpec, test: BuiltJobData['test'], source: WorkerSource = workerEntry()) {
    this.worker = new TaskWorker(source, `job ${spec.id} evaluator`, () => ({
      type: 'evaluator',
      spec,
      test,
    }));
  }

  /**
   * Held-out loss (and accuracy or objective) of `params`.
   * @throws WorkerCrashedError when the thread died; the next call starts a new one.
   */
  async evaluate(params: Float32Array): Promise<EvaluationResult> {
    const reply = await this.worker.request({ type: 'evaluate', params });
    if (reply.type !== 'evaluated') throw new Error(`unexpected ${reply.type} reply to evaluate`);
    return reply.result;
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}
