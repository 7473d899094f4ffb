/**
 * The server's worker thread (workers/protocol.ts): builds a job's data and evaluates its
 * checkpoints, so neither blocks the event loop (docs/design.md §8). The server build emits it
 * as dist/workers/entry.js; tests bundle it first (workers/entry-file.ts).
 */
import { parentPort, type TransferListItem } from 'node:worker_threads';
import {
  encodeDataset,
  evaluate,
  parameterLayout,
  shardDataset,
  type Dataset,
  type ParameterLayout,
} from '@meshgrad/core';
import { loadJobData } from '../jobs/data.ts';
import { coreModelSpec, type JobSpec } from '../jobs/job-spec.ts';
import {
  serializeError,
  type BuiltJobData,
  type WorkerReply,
  type WorkerRequest,
} from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('workers/entry.ts runs only as a worker thread');

/** The job this thread evaluates checkpoints of, once told (`evaluator`). */
let evaluator: { layout: ParameterLayout; test: Dataset } | null = null;

port.on('message', (request: WorkerRequest) => {
  void answer(request).then(
    ({ reply, transfer }) => port.postMessage(reply, transfer),
    (err: unknown) =>
      port.postMessage({
        type: 'error',
        requestId: request.requestId,
        error: serializeError(err),
      } satisfies WorkerReply),
  );
});

async function answer(
  request: WorkerRequest,
): Promise<{ reply: WorkerReply; transfer: TransferListItem[] }> {
  switch (request.type) {
    case 'build-data': {
      const data = await buildJobData(request.spec);
      return {
        reply: { type: 'data', requestId: request.requestId, data },
        transfer: ownedBuffers([
          data.train.x,
          data.train.labels,
          ...data.shards.map((s) => s.bytes),
        ]),
      };
    }
    case 'evaluator':
      evaluator = {
        layout: parameterLayout(coreModelSpec(request.spec.model), request.spec.blockSize),
        test: request.test,
      };
      return { reply: { type: 'ready', requestId: request.requestId }, transfer: [] };
    case 'evaluate': {
      if (!evaluator) throw new Error('this worker thread was given no job to evaluate');
      const result = evaluate(evaluator.layout, request.params, evaluator.test);
      return { reply: { type: 'evaluated', requestId: request.requestId, result }, transfer: [] };
    }
  }
}

/** Loads (or generates) the job's data, cuts and encodes its shards, shares its test set. */
async function buildJobData(spec: JobSpec): Promise<BuiltJobData> {
  const { train, test } = await loadJobData(spec);
  const shards = [];
  for (let i = 0; i < spec.shards; i++) {
    const shard = shardDataset(train, i, spec.shards, spec.seed);
    shards.push({ count: shard.count, bytes: encodeDataset(shard) });
  }
  return { train, test: inSharedMemory(test), shards };
}

/** A copy of `ds` whose arrays live in shared memory: posting it copies nothing. */
function inSharedMemory(ds: Dataset): Dataset {
  const x = new Float32Array(new SharedArrayBuffer(ds.x.byteLength));
  x.set(ds.x);
  let labels: Uint32Array | null = null;
  if (ds.labels) {
    labels = new Uint32Array(new SharedArrayBuffer(ds.labels.byteLength));
    labels.set(ds.labels);
  }
  return { ...ds, x, labels };
}

/**
 * The buffers of `arrays` to transfer rather than copy: each once, and only one a view spans
 * whole (a view into a larger buffer is copied, so the rest of that buffer stays here).
 */
function ownedBuffers(arrays: readonly (ArrayBufferView | null)[]): TransferListItem[] {
  const buffers = new Set<ArrayBuffer>();
  for (const a of arrays) {
    if (!a || !(a.buffer instanceof ArrayBuffer)) continue;
    if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) buffers.add(a.buffer);
  }
  return [...buffers];
}
