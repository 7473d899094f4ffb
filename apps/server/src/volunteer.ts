import type { Namespace, Socket } from 'socket.io';
import { Decoder, Encoder, protocol } from 'socket.io-parser';
import {
  helloSchema,
  relaySchema,
  signalSchema,
  spotCheckAnswerSchema,
  stateUploadSchema,
  statsSchema,
  syncContributionSchema,
  validate,
  type ErrorReply,
  type IceConfig,
  type ProtocolErrorCode,
  type SpotCheckMessage,
  type SyncRoundMessage,
  type VolunteerClientToServerEvents,
  type VolunteerServerToClientEvents,
  type WorkerSettings,
} from '@meshgrad/core';
import { compileSchema } from './compiled-schema.ts';
import type { BoundIdentity } from './credit/book.ts';
import { newChallenge, verifyIdentity } from './credit/identity.ts';
import type { Job, JobOutbox } from './jobs/job.ts';
import type { Logger } from './logger.ts';
import { workerRoom } from './scale/cluster.ts';
import type { ServerMetrics } from './metrics.ts';
import { RelayQuota } from './relay-quota.ts';

/**
 * Binary attachments one event may carry: every volunteer message has at most one (a relayed
 * block, a state, a contribution). socket.io's default is 10, each up to the frame size.
 */
export const MAX_ATTACHMENTS_PER_EVENT = 2;

/** The statistics report's check, compiled: every volunteer sends one a second. */
const checkStats = compileSchema(statsSchema);

/** socket.io's parser with `MAX_ATTACHMENTS_PER_EVENT`; an event over it closes its connection. */
class CappedDecoder extends Decoder {
  constructor() {
    super({ maxAttachments: MAX_ATTACHMENTS_PER_EVENT });
  }
}
export const socketParser = { protocol, Encoder, Decoder: CappedDecoder };

/** The worker ids this server issues (`Job.join`); a hello may only ask for one of this form. */
const ISSUED_WORKER_ID = /^w-[0-9a-f]{12}$/;

interface SocketData {
  workerId?: string;
  jobId?: string;
  /** The challenge this connection's next hello signs; used up by that hello (DESIGN §9). */
  challenge?: string;
}

/** Who learns which identity a worker proved (the credit book) and takes spot-check answers. */
export interface IdentityBinding {
  bind(workerId: string, identity: BoundIdentity): void;
  unbind(workerId: string): void;
  /** A spot check's answer; null when taken, else why it was refused. */
  spotCheckAnswer(workerId: string, checkId: string, params: Uint8Array): string | null;
}

/** For hubs without a credit book: identities are checked and then forgotten. */
const NO_BINDING: IdentityBinding = {
  bind: () => {},
  unbind: () => {},
  spotCheckAnswer: (_w, checkId) => `checkId: no open spot check ${checkId}`,
};

export type VolunteerNamespace = Namespace<
  VolunteerClientToServerEvents,
  VolunteerServerToClientEvents,
  Record<string, never>,
  SocketData
>;
type VolunteerSocket = Socket<
  VolunteerClientToServerEvents,
  VolunteerServerToClientEvents,
  Record<string, never>,
  SocketData
>;

/** A validated binary payload as bytes (socket.io hands out Buffers or ArrayBuffers). */
const asBytes = (v: Uint8Array | ArrayBuffer): Uint8Array =>
  v instanceof Uint8Array ? v : new Uint8Array(v);

/** Every worker's socket, so the job can reach it by worker id. */
export class VolunteerHub implements JobOutbox {
  private readonly sockets = new Map<string, VolunteerSocket>();
  private readonly relays = new RelayQuota();

  constructor(
    private readonly nsp: VolunteerNamespace,
    private readonly jobs: ReadonlyMap<string, Job>,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    private readonly publicPath: (path: string) => string,
    /** ICE servers (STUN, TURN with minted credentials) for a worker; default none. */
    private readonly ice: (workerId: string) => IceConfig = () => ({ iceServers: [] }),
    /** ServerOptions.namedWorkers. */
    private readonly namedWorkers = false,
    private readonly identities: IdentityBinding = NO_BINDING,
  ) {
    nsp.on('connection', (socket) => this.attach(socket));
  }

  neighbours(workerId: string, neighbours: readonly string[]): void {
    this.sockets.get(workerId)?.emit('neighbours', neighbours);
  }

  settings(workerId: string, settings: WorkerSettings): void {
    this.sockets.get(workerId)?.emit('settings', settings);
  }

  requestState(workerId: string, requestId: string): void {
    this.sockets.get(workerId)?.emit('requestState', { requestId });
  }

  syncRound(workerId: string, message: SyncRoundMessage): void {
    this.sockets.get(workerId)?.emit('syncRound', message);
  }

  spotCheck(workerId: string, message: SpotCheckMessage): void {
    this.sockets.get(workerId)?.emit('spotCheck', message);
  }

  control(workerId: string, state: 'running' | 'paused' | 'stopped', learningRate: number): void {
    this.sockets.get(workerId)?.emit('control', { state, learningRate });
  }

  ban(workerId: string, message: string): void {
    const socket = this.sockets.get(workerId);
    if (!socket) return;
    this.sockets.delete(workerId);
    this.relays.forget(workerId);
    socket.emit('banned', { message });
    socket.disconnect(true);
  }

  /** Whether `workerId` is a worker of `job` this process can reach (here or on another process). */
  private reachable(job: Job, workerId: string): boolean {
    return (this.sockets.has(workerId) && job.hasLocalWorker(workerId)) || job.isRemote(workerId);
  }

  /**
   * Sends a message to a worker of `job`: straight to its socket when it is connected here, else
   * to its room, which the Redis adapter carries to the process it is connected to.
   */
  private deliver<E extends 'relay' | 'signal'>(
    job: Job,
    workerId: string,
    event: E,
    payload: Parameters<VolunteerServerToClientEvents[E]>[0],
  ): void {
    const local = this.sockets.get(workerId);
    const args = [payload] as Parameters<VolunteerServerToClientEvents[E]>;
    if (local && job.hasLocalWorker(workerId)) local.emit(event, ...args);
    else this.nsp.to(workerRoom(workerId)).emit(event, ...args);
  }

  /** Counts and logs a refusal; the reply to send (see `refuse` in `attach`). */
  private refusal(event: string, code: ProtocolErrorCode, message: string): ErrorReply {
    this.metrics.rejectedMessages.inc({ event, code });
    this.log.debug({ event, code, message }, 'message refused');
    return { ok: false, code, message };
  }

  /**
   * Wraps a handler so a throw inside it becomes an ERR_INTERNAL reply instead of an
   * unhandled rejection: one bad message must never take the server down.
   */
  private guard<A extends unknown[]>(
    event: string,
    socket: VolunteerSocket,
    fn: (...args: A) => Promise<void> | void,
  ): (...args: A) => void {
    return (...args: A) => {
      Promise.resolve()
        .then(() => fn(...args))
        .catch((err: unknown) => {
          this.log.error({ err, event }, 'handler failed');
          this.reply(socket, event, args[args.length - 1], 'ERR_INTERNAL', 'internal error');
        });
    };
  }

  /**
   * Refuses a message: through its acknowledgement when it has one, else as a `refused` event
   * naming the event, so the sender always learns why.
   */
  private reply(
    socket: VolunteerSocket,
    event: string,
    ack: unknown,
    code: ProtocolErrorCode,
    message: string,
  ): void {
    const reply = this.refusal(event, code, message);
    if (typeof ack === 'function') (ack as (r: ErrorReply) => void)(reply);
    else socket.emit('refused', { ...reply, event });
  }

  private attach(socket: VolunteerSocket): void {
    const refuse = (event: string, ack: unknown, code: ProtocolErrorCode, message: string) =>
      this.reply(socket, event, ack, code, message);

    const joined = (event: string, ack: unknown): { job: Job; workerId: string } | null => {
      const { workerId, jobId } = socket.data;
      const job = jobId ? this.jobs.get(jobId) : undefined;
      // The id is this socket's only while the socket holds it (see `hello`).
      const owns = workerId !== undefined && this.sockets.get(workerId) === socket;
      if (!workerId || !job || !owns || !job.hasLocalWorker(workerId)) {
        refuse(event, ack, 'ERR_NOT_JOINED', `send hello before ${event}`);
        return null;
      }
      // Any message, even one refused below, shows the worker is alive: a worker whose stats
      // fail validation must hear about it, not be dropped as stale while it trains.
      job.touch(workerId);
      return { job, workerId };
    };

    socket.on(
      'challenge',
      this.guard('challenge', socket, (_payload: unknown, ack: unknown) => {
        if (typeof ack !== 'function') {
          refuse('challenge', ack, 'ERR_INVALID_PAYLOAD', 'challenge needs an acknowledgement');
          return;
        }
        // One at a time: asking again replaces the last, so a connection holds one challenge.
        socket.data.challenge = newChallenge();
        (ack as (r: { ok: true; challenge: string }) => void)({
          ok: true,
          challenge: socket.data.challenge,
        });
      }),
    );

    socket.on(
      'hello',
      this.guard('hello', socket, async (payload: unknown, ack: unknown) => {
        if (typeof ack !== 'function') {
          refuse('hello', ack, 'ERR_INVALID_PAYLOAD', 'hello needs an acknowledgement callback');
          return;
        }
        const r = validate(helloSchema, payload);
        if (!r.ok) {
          const code = r.message.startsWith('protocolVersion')
            ? 'ERR_PROTOCOL_VERSION'
            : 'ERR_INVALID_PAYLOAD';
          refuse('hello', ack, code, r.message);
          return;
        }
        let identity: BoundIdentity | undefined;
        if (r.value.identity) {
          const proof = r.value.identity;
          // Used up whatever the outcome: a challenge is good for one try (no replay).
          const expected = socket.data.challenge;
          delete socket.data.challenge;
          const check = await verifyIdentity(proof, expected);
          if (!check.ok) {
            refuse('hello', ack, check.code, check.message);
            return;
          }
          if (socket.disconnected) return;
          identity = {
            id: check.id,
            ...(proof.name !== undefined ? { name: proof.name } : {}),
            ...(proof.team !== undefined ? { team: proof.team } : {}),
          };
        }
        // A worker id is bound to its socket: a socket keeps the id it was issued (and gets it
        // back after being dropped for silence); another socket may take an id it asks for
        // only when the id has the form this server issues and no live socket holds it, which
        // is how a tab resumes after a reconnect or a failover to this process.
        const bound = socket.data.workerId;
        const boundJob = socket.data.jobId ? this.jobs.get(socket.data.jobId) : undefined;
        if (bound && boundJob?.hasLocalWorker(bound)) {
          refuse('hello', ack, 'ERR_UNEXPECTED', 'already joined on this connection');
          return;
        }
        const asked = r.value.workerId;
        const holder = asked === undefined ? undefined : this.sockets.get(asked);
        const requested =
          bound ??
          (asked !== undefined &&
          (this.namedWorkers || ISSUED_WORKER_ID.test(asked)) &&
          (holder === undefined || holder.disconnected)
            ? asked
            : undefined);
        const running = [...this.jobs.values()].filter(
          (j) => j.state !== 'stopped' && (boundJob === undefined || j === boundJob),
        );
        // A custom WGSL kernel has no CPU implementation: only WebGPU volunteers can run it.
        const webgpu = r.value.device.backend === 'webgpu';
        const job = running.find((j) => j.kernel === null || webgpu);
        if (!job) {
          const custom = running[0];
          if (custom) {
            refuse(
              'hello',
              ack,
              'ERR_NEEDS_WEBGPU',
              `job ${custom.id} runs the host's own WGSL kernel, which needs WebGPU; this browser has no usable WebGPU adapter${r.value.device.backendReason ? ` (${r.value.device.backendReason})` : ''}, so it cannot join`,
            );
          } else {
            refuse('hello', ack, 'ERR_UNKNOWN_JOB', 'no job is running on this server');
          }
          return;
        }
        if (requested !== undefined && job.isBanned(requested)) {
          refuse('hello', ack, 'ERR_BANNED', `worker ${requested} is banned from job ${job.id}`);
          return;
        }
        if (identity && job.isIdentityBanned(identity.id)) {
          refuse(
            'hello',
            ack,
            'ERR_BANNED',
            `identity ${identity.id} is banned from job ${job.id}`,
          );
          return;
        }
        const worker = job.join(requested, socket.id, r.value.device, identity?.id);
        if (identity) this.identities.bind(worker.id, identity);
        else this.identities.unbind(worker.id);
        socket.data.workerId = worker.id;
        socket.data.jobId = job.id;
        this.sockets.set(worker.id, socket);
        if (bound === undefined) {
          socket.conn.on('drain', () => this.relays.drained(worker.id));
        }
        // Sync mode: a round starts now if none runs; the new worker is reachable from here on.
        job.workerReachable();
        // Its room: with the Redis adapter, workers on other processes reach it through it.
        void socket.join(workerRoom(worker.id));
        const { manifest } = job.checkpointParams();
        ack({
          ok: true,
          workerId: worker.id,
          job: job.info(),
          shard: {
            index: worker.shard,
            count: job.shardCount(),
            samples: job.shardSize(worker.shard),
            url: this.publicPath(`/api/jobs/${job.id}/shards/${worker.shard}`),
          },
          checkpoint: {
            url: this.publicPath(
              manifest
                ? `/api/jobs/${job.id}/checkpoints/${manifest.seq}`
                : `/api/jobs/${job.id}/checkpoints/initial`,
            ),
            samples: manifest?.samples ?? 0,
          },
          neighbours: worker.neighbours,
          settings: worker.settings,
          ice: this.ice(worker.id),
          ...(identity ? { identity } : {}),
        });
      }),
    );

    socket.on(
      'stats',
      this.guard('stats', socket, (payload: unknown) => {
        const ctx = joined('stats', undefined);
        if (!ctx) return;
        const r = checkStats(payload);
        if (!r.ok) {
          refuse('stats', undefined, 'ERR_INVALID_PAYLOAD', r.message);
          return;
        }
        if (r.value.jobId !== ctx.job.id) {
          refuse('stats', undefined, 'ERR_UNKNOWN_JOB', `jobId: not this worker's job`);
          return;
        }
        ctx.job.report(ctx.workerId, r.value);
      }),
    );

    socket.on(
      'state',
      this.guard('state', socket, async (payload: unknown, ack: unknown) => {
        const ctx = joined('state', ack);
        if (!ctx) return;
        const r = validate(stateUploadSchema, payload);
        if (!r.ok) {
          refuse('state', ack, 'ERR_INVALID_PAYLOAD', r.message);
          return;
        }
        const problem = await ctx.job.acceptState(
          ctx.workerId,
          r.value.requestId,
          asBytes(r.value.params),
        );
        if (problem) {
          refuse('state', ack, 'ERR_INVALID_PAYLOAD', problem);
          return;
        }
        if (typeof ack === 'function') (ack as (r: { ok: true }) => void)({ ok: true });
      }),
    );

    // Sync mode (jobs/sync-rounds.ts): a worker's answer to the round's parameters.
    socket.on(
      'syncContribution',
      this.guard('syncContribution', socket, (payload: unknown) => {
        const ctx = joined('syncContribution', undefined);
        if (!ctx) return;
        const r = validate(syncContributionSchema, payload);
        const problem = !r.ok
          ? { code: 'ERR_INVALID_PAYLOAD' as const, message: r.message }
          : r.value.jobId !== ctx.job.id
            ? { code: 'ERR_UNKNOWN_JOB' as const, message: `jobId: not this worker's job` }
            : ctx.job.training.contribute(ctx.workerId, {
                round: r.value.round,
                samples: r.value.samples,
                loss: r.value.loss,
                params: asBytes(r.value.params),
              });
        if (problem) refuse('syncContribution', undefined, problem.code, problem.message);
      }),
    );

    // Credit (DESIGN §9): the answer to a spot check the credit room sent this worker.
    socket.on(
      'spotCheckAnswer',
      this.guard('spotCheckAnswer', socket, (payload: unknown) => {
        const ctx = joined('spotCheckAnswer', undefined);
        if (!ctx) return;
        const r = validate(spotCheckAnswerSchema, payload);
        if (!r.ok) {
          refuse('spotCheckAnswer', undefined, 'ERR_INVALID_PAYLOAD', r.message);
          return;
        }
        const problem = this.identities.spotCheckAnswer(
          ctx.workerId,
          r.value.checkId,
          asBytes(r.value.params),
        );
        if (problem) refuse('spotCheckAnswer', undefined, 'ERR_UNEXPECTED', problem);
      }),
    );

    socket.on(
      'relay',
      this.guard('relay', socket, (payload: unknown) => {
        const ctx = joined('relay', undefined);
        if (!ctx) return;
        const r = validate(relaySchema, payload);
        if (!r.ok) {
          refuse('relay', undefined, 'ERR_INVALID_PAYLOAD', r.message);
          return;
        }
        const { to } = r.value;
        if (!this.reachable(ctx.job, to)) {
          refuse('relay', undefined, 'ERR_UNKNOWN_PEER', `to: no worker ${to} in this job`);
          return;
        }
        if (!ctx.job.isNeighbour(ctx.workerId, to)) {
          const message = `to: worker ${to} is not a neighbour of this worker; relays go only between neighbours`;
          refuse('relay', undefined, 'ERR_UNKNOWN_PEER', message);
          return;
        }
        const local = this.sockets.has(to) && ctx.job.hasLocalWorker(to);
        const overQuota = this.relays.admit(ctx.workerId, to, r.value.data.byteLength, local);
        if (overQuota) {
          refuse('relay', undefined, 'ERR_RATE_LIMITED', overQuota);
          return;
        }
        this.metrics.bytesRelayed.inc(r.value.data.byteLength);
        this.deliver(ctx.job, r.value.to, 'relay', { from: ctx.workerId, data: r.value.data });
      }),
    );

    // WebRTC signaling between two workers of one job (DESIGN §4). Why only within a job: a
    // volunteer must not be able to open connections to, or learn about, workers of other jobs.
    socket.on(
      'signal',
      this.guard('signal', socket, (payload: unknown) => {
        const ctx = joined('signal', undefined);
        if (!ctx) return;
        const r = validate(signalSchema, payload);
        if (!r.ok) {
          refuse('signal', undefined, 'ERR_INVALID_PAYLOAD', r.message);
          return;
        }
        if (r.value.to === ctx.workerId || !this.reachable(ctx.job, r.value.to)) {
          refuse(
            'signal',
            undefined,
            'ERR_UNKNOWN_PEER',
            `to: no worker ${r.value.to} in this job`,
          );
          return;
        }
        this.deliver(ctx.job, r.value.to, 'signal', { from: ctx.workerId, data: r.value.data });
      }),
    );

    socket.on(
      'ice',
      this.guard('ice', socket, (_payload: unknown, ack: unknown) => {
        const ctx = joined('ice', ack);
        if (!ctx) return;
        if (typeof ack !== 'function') {
          refuse('ice', ack, 'ERR_INVALID_PAYLOAD', 'ice needs an acknowledgement callback');
          return;
        }
        (ack as (r: { ok: true } & IceConfig) => void)({ ok: true, ...this.ice(ctx.workerId) });
      }),
    );

    socket.on('disconnect', (reason) => {
      const { workerId, jobId } = socket.data;
      if (!workerId || !jobId) return;
      // Only the socket that holds the id may end the worker it names.
      if (this.sockets.get(workerId) !== socket) return;
      this.sockets.delete(workerId);
      this.relays.forget(workerId);
      this.identities.unbind(workerId);
      this.jobs.get(jobId)?.leave(workerId, `disconnected: ${reason}`);
    });
  }
}
