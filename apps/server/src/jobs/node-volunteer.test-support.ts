/**
 * Test support: volunteers in Node that speak the real `/volunteer` protocol to a real server
 * (hello, shard and checkpoint over HTTP, stats, state uploads, blocks relayed through the
 * server) and train with core's AsgdWorker on a pluggable backend (the CPU one by default).
 * Several run interleaved in one process, like tabs sharing a machine.
 */
import { io as connect, type Socket } from 'socket.io-client';
import {
  AsgdWorker,
  Batcher,
  CpuBackend,
  decodeDataset,
  idHash,
  parameterLayout,
  PROTOCOL_VERSION,
  type Assignment,
  type Backend,
  type DeviceInfo,
  type HelloReply,
  type JobInfo,
  type ParameterLayout,
} from '@meshgrad/core';

/** How often a volunteer reports statistics (ms). */
const STATS_INTERVAL_MS = 250;
/** Steps one volunteer takes before the next gets its turn. */
const STEPS_PER_TURN = 4;

export type BackendFactory = (
  layout: ParameterLayout,
  params: Float32Array,
  job: JobInfo,
) => Promise<Backend>;

export interface NodeVolunteerOptions {
  /** Builds the backend; default the CPU backend. */
  readonly backend?: BackendFactory;
  readonly device?: DeviceInfo;
  /** Asks for this worker id back (a reconnect, or a failover to another process). */
  readonly workerId?: string;
}

export class NodeVolunteer {
  state: 'running' | 'paused' | 'stopped' = 'running';
  /** Relayed blocks received. */
  received = 0;
  /** Relayed blocks received, by sender. */
  readonly receivedFrom = new Map<string, number>();
  private lastStats = 0;
  private samplesAtLast = 0;
  private lossSum = 0;
  private lossCount = 0;

  private constructor(
    readonly socket: Socket,
    readonly assignment: Assignment,
    readonly worker: AsgdWorker,
    readonly backend: Backend,
  ) {}

  get workerId(): string {
    return this.assignment.workerId;
  }

  get job(): JobInfo {
    return this.assignment.job;
  }

  /** Connects to `url`, says hello and prepares to train; throws with the server's refusal. */
  static async join(url: string, options: NodeVolunteerOptions = {}): Promise<NodeVolunteer> {
    const socket = connect(`${url}/volunteer`, { transports: ['websocket'], reconnection: false });
    const reply = (await socket.timeout(10_000).emitWithAck('hello', {
      protocolVersion: PROTOCOL_VERSION,
      device: options.device ?? { backend: 'cpu', userAgent: 'node-volunteer' },
      ...(options.workerId ? { workerId: options.workerId } : {}),
    })) as HelloReply;
    if (!reply.ok) {
      socket.disconnect();
      throw new Error(`hello refused: ${reply.code}: ${reply.message}`);
    }
    const fetchBytes = async (path: string) => {
      const res = await fetch(url + path);
      if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    };
    const shard = decodeDataset(await fetchBytes(reply.shard.url));
    const paramBytes = await fetchBytes(reply.checkpoint.url);
    const params = new Float32Array(
      paramBytes.buffer,
      paramBytes.byteOffset,
      paramBytes.byteLength / 4,
    );
    const layout = parameterLayout(reply.job.model, reply.job.blockSize);
    const backend = options.backend
      ? await options.backend(layout, params, reply.job)
      : new CpuBackend(layout, params, reply.job.merge && { merge: reply.job.merge });
    const seed = idHash(reply.workerId);
    const batcher = new Batcher(shard, reply.job.batchSize, reply.job.seed ^ seed);
    const worker = new AsgdWorker({
      backend,
      nextBatch: () => batcher.next(),
      sink: {
        send(peer, message) {
          socket.emit('relay', { to: peer, data: message.slice() });
          return true;
        },
      },
      jobId: reply.job.id,
      workerId: reply.workerId,
      learningRate: reply.job.learningRate,
      settings: reply.settings,
      neighbours: reply.neighbours,
      initialParams: params,
      seed,
    });
    const v = new NodeVolunteer(socket, reply, worker, backend);
    socket.on('relay', (m: { from: string; data: ArrayBuffer | Uint8Array }) => {
      v.received++;
      v.receivedFrom.set(m.from, (v.receivedFrom.get(m.from) ?? 0) + 1);
      worker.receive(m.from, m.data instanceof Uint8Array ? m.data : new Uint8Array(m.data));
    });
    socket.on('neighbours', (n: readonly string[]) => {
      worker.neighbours = [...n];
    });
    socket.on('settings', (s: Assignment['settings']) => {
      worker.settings = s;
    });
    socket.on('control', (c: { state: 'running' | 'paused' | 'stopped'; learningRate: number }) => {
      v.state = c.state;
      worker.learningRate = c.learningRate;
    });
    socket.on('requestState', ({ requestId }: { requestId: string }) => {
      const samples = worker.counters.samples;
      void worker.readParameters().then((p) =>
        socket.emit('state', {
          requestId,
          jobId: reply.job.id,
          samples,
          params: new Uint8Array(p.buffer, p.byteOffset, p.byteLength),
        }),
      );
    });
    socket.on('disconnect', () => {
      if (v.state !== 'stopped') v.state = 'stopped';
    });
    return v;
  }

  /** A few training steps, then statistics when they are due. */
  async turn(): Promise<void> {
    if (this.state !== 'running') return;
    for (let i = 0; i < STEPS_PER_TURN; i++) await this.worker.step();
    const s = await this.worker.drainStats();
    if (s.loss !== undefined) {
      this.lossSum += s.loss * s.steps;
      this.lossCount += s.steps;
    }
    const now = performance.now();
    if (now - this.lastStats >= STATS_INTERVAL_MS) {
      const c = this.worker.counters;
      const elapsed = this.lastStats ? now - this.lastStats : STATS_INTERVAL_MS;
      this.socket.emit('stats', {
        jobId: this.job.id,
        samples: c.samples,
        samplesPerSec: ((c.samples - this.samplesAtLast) * 1000) / elapsed,
        ...(this.lossCount ? { loss: this.lossSum / this.lossCount } : {}),
        offered: c.offered,
        accepted: c.accepted,
        paused: false,
        links: [],
      });
      this.lastStats = now;
      this.samplesAtLast = c.samples;
      this.lossSum = 0;
      this.lossCount = 0;
    }
  }

  close(): void {
    this.state = 'stopped';
    this.socket.disconnect();
    this.backend.destroy();
  }
}

const yieldToEvents = () => new Promise<void>((r) => setImmediate(r));

/**
 * Runs volunteers in turns until `done()` holds, every volunteer has stopped, or `timeoutMs`
 * passes; yields to the event loop between turns so messages flow. Resolves whether `done()`
 * held at the end.
 */
export async function trainUntil(
  volunteers: readonly NodeVolunteer[],
  done: () => boolean,
  timeoutMs: number,
  everySecond?: () => void,
): Promise<boolean> {
  const start = performance.now();
  let lastTick = start;
  while (!done() && performance.now() - start < timeoutMs) {
    if (volunteers.every((v) => v.state === 'stopped')) break;
    for (const v of volunteers) {
      await v.turn();
      await yieldToEvents();
    }
    if (everySecond && performance.now() - lastTick >= 1_000) {
      lastTick = performance.now();
      everySecond();
    }
  }
  return done();
}
