/**
 * The messages between the server's main thread and its worker threads (workers/entry.ts):
 * building a job's data off the event loop, and evaluating checkpoints on its held-out test set
 * (docs/design.md §8, item 10 of the open-to-strangers review). Every request carries a
 * `requestId`; the worker answers each with exactly one reply of the same id.
 */
import type { Dataset, EvaluationResult } from '@meshgrad/core';
import { JobSpecError, type JobSpec } from '../jobs/job-spec.ts';

/** One shard of a job's training set, already in the binary dataset format it is served in. */
export interface EncodedShard {
  /** Rows in the shard. */
  readonly count: number;
  readonly bytes: Uint8Array;
}

/** What building a job's data gives the main thread. */
export interface BuiltJobData {
  readonly train: Dataset;
  /** Held-out test set; its arrays live in shared memory, so evaluators get it without a copy. */
  readonly test: Dataset;
  readonly shards: readonly EncodedShard[];
}

export type WorkerRequest =
  | { readonly type: 'build-data'; readonly requestId: number; readonly spec: JobSpec }
  | {
      /** Gives the worker the job whose checkpoints it evaluates; answered with `ready`. */
      readonly type: 'evaluator';
      readonly requestId: number;
      readonly spec: JobSpec;
      readonly test: Dataset;
    }
  | { readonly type: 'evaluate'; readonly requestId: number; readonly params: Float32Array };

export type WorkerReply =
  | { readonly type: 'data'; readonly requestId: number; readonly data: BuiltJobData }
  | { readonly type: 'ready'; readonly requestId: number }
  | { readonly type: 'evaluated'; readonly requestId: number; readonly result: EvaluationResult }
  | { readonly type: 'error'; readonly requestId: number; readonly error: SerializedError };

/** An error as it crosses threads: structured clone keeps neither its class nor its fields. */
export type SerializedError =
  | {
      readonly kind: 'job-spec';
      readonly field: string;
      readonly reason: string;
      readonly file?: string;
    }
  | {
      readonly kind: 'other';
      readonly name: string;
      readonly message: string;
      readonly code?: string;
    };

/**
 * A worker thread failed a request: it threw something other than a spec error. `code` is the
 * thrown error's own code when it had one, else `ERR_WORKER_TASK`.
 */
export class WorkerTaskError extends Error {
  override readonly name = 'WorkerTaskError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A worker thread died (crashed, ran out of memory, exited) before it answered a request. */
export class WorkerCrashedError extends Error {
  override readonly name = 'WorkerCrashedError';
  readonly code = 'ERR_WORKER_CRASHED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof JobSpecError) {
    return {
      kind: 'job-spec',
      field: err.field,
      reason: err.reason,
      ...(err.file !== undefined ? { file: err.file } : {}),
    };
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      kind: 'other',
      name: err.name,
      message: err.message,
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  return { kind: 'other', name: 'Error', message: String(err) };
}

/** The error a serialized one stands for: a spec error stays a `JobSpecError`. */
export function deserializeError(e: SerializedError): Error {
  if (e.kind === 'job-spec') return new JobSpecError(e.field, e.reason, e.file);
  return new WorkerTaskError(e.code ?? 'ERR_WORKER_TASK', `${e.name}: ${e.message}`);
}
