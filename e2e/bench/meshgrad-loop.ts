/**
 * The benchmark model inside the real ASGD loop: an `AsgdWorker` that sends every block every
 * step to a loopback sink and takes every block from 3 peers each step, so the figure includes
 * the readbacks, encodes, decodes, the receive-path guard (the page's default, clip-trust) and
 * merges that `meshgrad-mlp.ts`'s bare steps leave out. Its ratio against the bare steps
 * (`loop_vs_step_*`) is what communication costs.
 */
import type { Backend, Batch, ParameterLayout } from '@meshgrad/core';
import {
  AsgdWorker,
  blockRange,
  encodeStateMessage,
  idHash,
  Rng,
  SPREAD_WARMUP,
} from '@meshgrad/core';
import type { TrainingSession } from './timing.ts';

/** Peers whose blocks arrive every step. */
export const LOOP_PEERS = 3;
const JOB = 'bench';

/**
 * One message per peer and block, values near `params` (a peer a little way off, as after
 * training apart), so they pass the norm bound and the Parzen test sees real work.
 */
function peerMessages(layout: ParameterLayout, params: Float32Array): [string, Uint8Array][] {
  const rng = new Rng(7);
  const messages: [string, Uint8Array][] = [];
  for (let p = 0; p < LOOP_PEERS; p++) {
    const peer = `peer${p}`;
    for (let k = 0; k < layout.blockCount; k++) {
      const { start, end } = blockRange(layout, k);
      const values = params.slice(start, end).map((v) => v + 0.01 * rng.normal());
      const message = encodeStateMessage({
        job: idHash(JOB),
        sender: idHash(peer),
        seq: 0,
        block: k,
        encoding: 'f32',
        samples: 0,
        values,
      });
      messages.push([peer, message]);
    }
  }
  return messages;
}

export function meshgradLoopSession(
  backend: Backend,
  params: Float32Array,
  batches: readonly Batch[],
  learningRate: number,
): TrainingSession {
  const layout = backend.layout;
  let current = 0;
  let sentBytes = 0;
  const worker = new AsgdWorker({
    backend,
    nextBatch: () => batches[current]!,
    sink: {
      send(_peer, message) {
        sentBytes += message.byteLength;
        return true;
      },
    },
    jobId: JOB,
    workerId: 'self',
    learningRate,
    // A send of every block after every step: what the balancer chooses on a fast link.
    settings: {
      communicationPeriod: batches[0]!.size,
      blocksPerMessage: layout.blockCount,
      encoding: 'f32',
    },
    neighbours: ['loopback'],
    initialParams: params,
  });
  const incoming = peerMessages(layout, params);
  // The guard holds back each block index's first SPREAD_WARMUP blocks while it learns their
  // spread; offer the peers' blocks until it takes them all, before anything is timed.
  for (let round = 0; ; round++) {
    const taken = incoming.filter(([peer, message]) => worker.receive(peer, message)).length;
    if (taken === incoming.length) break;
    if (round > SPREAD_WARMUP) {
      throw new Error(`the loop's guard still refuses ${incoming.length - taken} peer blocks`);
    }
  }
  return {
    async step(index: number): Promise<void> {
      if (!batches[index]) throw new RangeError(`no minibatch ${index}`);
      current = index;
      for (const [peer, message] of incoming) {
        if (!worker.receive(peer, message)) throw new Error(`the loop rejected ${peer}'s block`);
      }
      await worker.step();
    },
    async sync(): Promise<number> {
      await worker.flush();
      const stats = await worker.drainStats();
      if (sentBytes === 0) throw new Error('the loop sent nothing');
      return stats.loss ?? NaN;
    },
    dispose(): void {
      backend.destroy();
    },
  };
}
