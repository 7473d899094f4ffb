/**
 * One worker thread that answers requests (workers/protocol.ts) by id. The thread is started on
 * the first request, kept while it lives, and started afresh on the request after it died. A
 * thread that dies fails the requests it held with `WorkerCrashedError`, and only those: the
 * server process goes on (docs/design.md §8).
 */
import { Worker, type TransferListItem } from 'node:worker_threads';
import {
  deserializeError,
  WorkerCrashedError,
  type WorkerReply,
  type WorkerRequest,
} from './protocol.ts';

/** Where the thread's code comes from: a module file, or (in tests) source code to eval. */
export type WorkerSource = URL | { readonly eval: string };

/** A request without its id: the client numbers them. */
export type Request = WorkerRequest extends infer R
  ? R extends WorkerRequest
    ? Omit<R, 'requestId'>
    : never
  : never;

interface Waiting {
  readonly resolve: (reply: WorkerReply) => void;
  readonly reject: (err: Error) => void;
}

export class TaskWorker {
  private thread: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  /** What the thread reported before it died, for the crash message. */
  private lastError: unknown = null;

  /**
   * @param source the worker's module or code.
   * @param onStart posted first to every new thread (an evaluator's test set), so a thread that
   *   replaces a dead one starts where it left off.
   */
  constructor(
    private readonly source: WorkerSource,
    private readonly label: string,
    private readonly onStart: () => Request | null = () => null,
  ) {}

  /** Sends `request`; resolves with its reply, rejects with its error or the thread's crash. */
  async request(request: Request, transfer: TransferListItem[] = []): Promise<WorkerReply> {
    const thread = this.start();
    const requestId = this.nextId++;
    const reply = new Promise<WorkerReply>((resolve, reject) => {
      this.waiting.set(requestId, { resolve, reject });
    });
    // An idle thread must not keep the process alive; one that works for us must.
    thread.ref();
    thread.postMessage({ ...request, requestId }, transfer);
    const r = await reply;
    if (r.type === 'error') throw deserializeError(r.error);
    return r;
  }

  /** Ends the thread; requests it held fail as crashed. */
  async close(): Promise<void> {
    const thread = this.thread;
    if (thread) await thread.terminate();
  }

  private start(): Worker {
    if (this.thread) return this.thread;
    const thread =
      this.source instanceof URL
        ? new Worker(this.source, { name: this.label })
        : new Worker(this.source.eval, { eval: true, name: this.label });
    this.thread = thread;
    this.lastError = null;
    thread.unref();
    thread.on('message', (reply: WorkerReply) => {
      const w = this.waiting.get(reply.requestId);
      if (!w) return;
      this.waiting.delete(reply.requestId);
      if (this.waiting.size === 0) thread.unref();
      w.resolve(reply);
    });
    thread.on('error', (err) => {
      this.lastError = err;
    });
    // A reply that cannot be deserialized cannot be matched to its request: end the thread,
    // which fails everything it held.
    thread.on('messageerror', (err) => {
      this.lastError = err;
      void thread.terminate();
    });
    thread.on('exit', (exitCode) => {
      if (this.thread === thread) this.thread = null;
      const why =
        this.lastError instanceof Error ? this.lastError.message : `exit code ${exitCode}`;
      const failed = [...this.waiting.values()];
      this.waiting.clear();
      for (const w of failed) {
        w.reject(
          new WorkerCrashedError(`the ${this.label} worker thread died: ${why}`, {
            cause: this.lastError ?? undefined,
          }),
        );
      }
    });
    const first = this.onStart();
    if (first) {
      // Its reply (ready, or an error) is matched like any other; a failure shows in the next
      // request, which the thread then cannot answer.
      const requestId = this.nextId++;
      thread.postMessage({ ...first, requestId });
    }
    return thread;
  }
}
