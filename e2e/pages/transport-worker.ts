/// <reference lib="webworker" />
/**
 * The training loop's half of the transport benchmark (pages/transport.ts), in a Web Worker as
 * in the volunteer page: on the sending tab it reads and encodes blocks into state messages, on
 * the receiving tab it runs AsgdWorker.receive on each one (size, header, CRC, finite values,
 * norm bound, mailbox). Built like the pages (buildPages), loaded with `new Worker`.
 */
import {
  AsgdWorker,
  blockRange,
  CpuBackend,
  encodeStateMessage,
  idHash,
  initParameters,
  parameterLayout,
  type Encoding,
  type ParameterLayout,
} from '@meshgrad/core';

export type ToBenchWorker =
  | { type: 'init'; hidden: number[]; blockSize: number; jobId: string }
  /** Encode messages `from` … `from + count − 1` (message i carries block i mod K). */
  | { type: 'encode'; encoding: Encoding; from: number; count: number }
  /** Expect `count` messages; report when all arrived. */
  | { type: 'expect'; count: number }
  | { type: 'receive'; data: ArrayBuffer };

export type FromBenchWorker =
  | { type: 'encoded'; messages: ArrayBuffer[] }
  | { type: 'received'; count: number; accepted: number };

declare const self: DedicatedWorkerGlobalScope;

let layout: ParameterLayout | null = null;
let params: Float32Array | null = null;
let receiver: AsgdWorker | null = null;
let jobHash = 0;
let seq = 0;
let expected = 0;
let count = 0;
let accepted = 0;

self.onmessage = (e: MessageEvent<ToBenchWorker>) => {
  const m = e.data;
  switch (m.type) {
    case 'init': {
      layout = parameterLayout(
        { kind: 'mlp', inputs: 784, hidden: m.hidden, classes: 10 },
        m.blockSize,
      );
      params = initParameters(layout, 1);
      jobHash = idHash(m.jobId);
      receiver = new AsgdWorker({
        backend: new CpuBackend(layout, params),
        nextBatch: () => {
          throw new Error('the benchmark never steps');
        },
        sink: { send: () => false },
        jobId: m.jobId,
        workerId: 'b',
        learningRate: 0.1,
        settings: { communicationPeriod: 1, blocksPerMessage: 1, encoding: 'f32' },
        initialParams: params,
      });
      return;
    }
    case 'encode': {
      if (!layout || !params) return;
      const messages: ArrayBuffer[] = [];
      for (let i = m.from; i < m.from + m.count; i++) {
        const k = i % layout.blockCount;
        const { start, end } = blockRange(layout, k);
        const bytes = encodeStateMessage({
          job: jobHash,
          sender: idHash('a'),
          seq: seq++,
          block: k,
          encoding: m.encoding,
          samples: 0,
          values: params.subarray(start, end),
        });
        messages.push(bytes.buffer as ArrayBuffer);
      }
      const reply: FromBenchWorker = { type: 'encoded', messages };
      self.postMessage(reply, messages);
      return;
    }
    case 'expect':
      expected = m.count;
      count = 0;
      accepted = 0;
      return;
    case 'receive': {
      if (receiver?.receive('a', m.data)) accepted++;
      if (++count === expected) {
        receiver?.mailbox.drain();
        const reply: FromBenchWorker = { type: 'received', count, accepted };
        self.postMessage(reply);
      }
      return;
    }
  }
};
