/**
 * The page's end of the training Web Worker (training.worker.ts): starts it, posts it messages,
 * and answers the debugging hook's parameter reads. Messages posted before the worker exists
 * are dropped: the worker's `start` carries everything known by then.
 */
import type { FromWorker, ToWorker } from './messages.ts';

/** A copy of the worker's parameters, with the samples they were trained on. */
export interface ParameterSnapshot {
  readonly samples: number;
  readonly params: Float32Array;
}

/** A message from the worker other than a reply to `readParameters`. */
export type WorkerEvent = Exclude<FromWorker, { type: 'parameters' }>;

export class Trainer {
  private worker: Worker | null = null;
  private readonly parameterRequests = new Map<string, (r: ParameterSnapshot) => void>();
  private requestCounter = 0;

  constructor(
    /** Every message from the worker except the replies to `readParameters`. */
    private readonly onMessage: (message: WorkerEvent) => void,
    private readonly onFailure: (message: string) => void,
  ) {}

  get started(): boolean {
    return this.worker !== null;
  }

  /** Starts the worker with its `start` message (the shard and weights are transferred). */
  start(message: Extract<ToWorker, { type: 'start' }>): void {
    const worker = new Worker(new URL('./training.worker.ts', import.meta.url), {
      type: 'module',
      name: 'meshgrad-training',
    });
    this.worker = worker;
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.receive(e.data);
    worker.onerror = (e) => this.onFailure(`Training worker failed: ${e.message}`);
    this.post(message, [message.shard, message.params]);
  }

  post(message: ToWorker, transfer: Transferable[] = []): void {
    this.worker?.postMessage(message, transfer);
  }

  /** A copy of the current parameters (for tests and the console; changes nothing). */
  readParameters(): Promise<ParameterSnapshot> {
    return new Promise((resolve, reject) => {
      if (!this.worker) {
        reject(new Error('training has not started'));
        return;
      }
      const requestId = `p${++this.requestCounter}`;
      this.parameterRequests.set(requestId, resolve);
      this.post({ type: 'readParameters', requestId });
    });
  }

  private receive(message: FromWorker): void {
    if (message.type !== 'parameters') {
      this.onMessage(message);
      return;
    }
    const resolve = this.parameterRequests.get(message.requestId);
    this.parameterRequests.delete(message.requestId);
    resolve?.({ samples: message.samples, params: new Float32Array(message.params) });
  }
}
