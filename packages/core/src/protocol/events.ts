/**
 * Typed socket.io event maps shared by server and client (DESIGN §4).
 *
 * Requests that expect a reply use socket.io acknowledgements; every reply is either
 * `{ ok: true, ... }` or an `ErrorReply`. Fire-and-forget events that fail validation are
 * answered with a `refused` event naming the offending event.
 */
import type { Encoding } from '../codec/encoding.ts';
import type { MergeRule } from '../model/merge-rule.ts';
import type { JobGuardMode } from '../asgd/robust.ts';
import type { ErrorReply } from './errors.ts';
import type {
  Hello,
  ModelSpecPayload,
  RelayOut,
  SignalData,
  SignalOut,
  SpotCheckAnswer,
  StateUpload,
  Stats,
  SyncContribution,
} from './schemas.ts';

/** Per-worker communication settings chosen by the balancer (DESIGN §3). */
export interface WorkerSettings {
  /** Samples between two sends (the paper's b). */
  readonly communicationPeriod: number;
  /** Blocks per send (the paper's m). */
  readonly blocksPerMessage: number;
  readonly encoding: Encoding;
}

/** Every state of a job as the host sets it; the one list (schemas and views derive from it). */
export const JOB_STATES = ['running', 'paused', 'stopped'] as const;

export type JobState = (typeof JOB_STATES)[number];

/** What a volunteer needs to know about its job. */
export interface JobInfo {
  readonly id: string;
  readonly name: string;
  /** Who runs the job server, shown on the volunteer page. */
  readonly host: string;
  readonly description: string;
  readonly model: ModelSpecPayload;
  readonly blockSize: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly seed: number;
  readonly state: JobState;
  readonly dataset: { readonly name: string; readonly features: number; readonly classes: number };
  /**
   * How workers combine their work: `asgd` (peer exchange, DESIGN §3) or `sync` (the server's
   * rounds, `syncRound`/`syncContribution`). Absent from servers that predate sync mode: `asgd`.
   */
  readonly mode?: 'asgd' | 'sync';
  /**
   * How an ASGD step merges peer blocks (job spec `training.merge`, DESIGN §3.1). Absent from
   * servers that predate it: `PARZEN_MERGE_RULE`, the first rule.
   */
  readonly merge?: MergeRule;
  /**
   * The receive-path guard (job spec `training.guard`, docs/design.md §8.1). Absent from servers
   * that predate it: `off`.
   */
  readonly guard?: JobGuardMode;
  /**
   * A custom model's gradient kernel (docs/custom-wgsl.md), compiled and checked by the server;
   * present exactly when `model.kind` is `custom`. Such a job needs WebGPU: the server refuses
   * volunteers on the CPU backend.
   */
  readonly kernel?: { readonly wgsl: string; readonly entryPoint: string };
}

/** One ICE server, as `RTCIceServer` (core sees no DOM types). */
export interface IceServer {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/**
 * ICE servers for a worker's peer connections (DESIGN §4): STUN and TURN from the server's
 * configuration, TURN with short-lived HMAC credentials minted for this worker.
 */
export interface IceConfig {
  readonly iceServers: readonly IceServer[];
  /** When minted TURN credentials expire (ms since the epoch); absent when none were minted. */
  readonly expiresAt?: number;
}

export type IceReply = ({ readonly ok: true } & IceConfig) | ErrorReply;

export interface Assignment {
  readonly ok: true;
  readonly workerId: string;
  readonly job: JobInfo;
  /** The data shard this worker trains on, fetched over HTTP (binary dataset format). */
  readonly shard: {
    readonly index: number;
    readonly count: number;
    readonly samples: number;
    readonly url: string;
  };
  /** Parameters to start from (the latest checkpoint, or the seeded initial ones), float32 LE over HTTP. */
  readonly checkpoint: { readonly url: string; readonly samples: number };
  readonly neighbours: readonly string[];
  readonly settings: WorkerSettings;
  /** ICE servers for peer links; absent from servers that predate peer-to-peer links. */
  readonly ice?: IceConfig;
  /** The identity the hello proved (DESIGN §9); absent for an anonymous worker. */
  readonly identity?: { readonly id: string; readonly name?: string; readonly team?: string };
}

export type HelloReply = Assignment | ErrorReply;

/** A fresh random challenge for this connection's `hello` to sign (base64url). */
export type ChallengeReply = { readonly ok: true; readonly challenge: string } | ErrorReply;
export type OkReply = { readonly ok: true } | ErrorReply;

export interface RelayIn {
  readonly from: string;
  readonly data: ArrayBuffer | Uint8Array;
}

export interface SignalIn {
  readonly from: string;
  readonly data: SignalData;
}

export interface ControlMessage {
  readonly state: JobState;
  readonly learningRate: number;
}

/** One synchronous round's parameters for a worker (training mode `sync`). */
export interface SyncRoundMessage {
  readonly jobId: string;
  readonly round: number;
  readonly learningRate: number;
  /** float32 little-endian parameter vector. */
  readonly params: ArrayBuffer | Uint8Array;
}

/**
 * A spot check (DESIGN §9): compute one step, with no peer blocks, from `params` on this
 * minibatch at `learningRate`, and answer `spotCheckAnswer` with the parameters after it.
 */
export interface SpotCheckMessage {
  readonly checkId: string;
  readonly jobId: string;
  readonly learningRate: number;
  /** float32 little-endian parameter vector. */
  readonly params: ArrayBuffer | Uint8Array;
  /** Samples in the minibatch. */
  readonly size: number;
  /** `size × features` float32 little-endian, row-major. */
  readonly x: ArrayBuffer | Uint8Array;
  /** `size` uint32 little-endian labels; null for unlabelled models. */
  readonly labels: ArrayBuffer | Uint8Array | null;
}

export interface VolunteerClientToServerEvents {
  /** A challenge for the next `hello` on this connection to sign; payload `{}`. */
  challenge: (payload: Record<string, never>, reply: (r: ChallengeReply) => void) => void;
  hello: (payload: Hello, reply: (r: HelloReply) => void) => void;
  stats: (payload: Stats) => void;
  state: (payload: StateUpload, reply: (r: OkReply) => void) => void;
  relay: (payload: RelayOut) => void;
  /** WebRTC signaling for a peer of the same job; the server forwards it as `signal`. */
  signal: (payload: SignalOut) => void;
  /** Fresh ICE servers (TURN credentials expire); payload `{}`. */
  ice: (payload: Record<string, never>, reply: (r: IceReply) => void) => void;
  /** Sync mode: the answer to a `syncRound`; refused (`refused`) when it cannot count. */
  syncContribution: (payload: SyncContribution) => void;
  /** The answer to a `spotCheck`; refused (`refused`) when no such check is open. */
  spotCheckAnswer: (payload: SpotCheckAnswer) => void;
}

export interface VolunteerServerToClientEvents {
  settings: (settings: WorkerSettings) => void;
  neighbours: (neighbours: readonly string[]) => void;
  control: (control: ControlMessage) => void;
  requestState: (request: { requestId: string }) => void;
  relay: (message: RelayIn) => void;
  signal: (message: SignalIn) => void;
  /** Sync mode: a round began; compute one step from these parameters and contribute. */
  syncRound: (message: SyncRoundMessage) => void;
  /** Compute one step on this minibatch from these parameters and answer `spotCheckAnswer`. */
  spotCheck: (message: SpotCheckMessage) => void;
  /** A fire-and-forget event was refused. */
  refused: (error: ErrorReply & { readonly event: string }) => void;
  /** The host banned this worker; the server closes the connection right after. */
  banned: (notice: { readonly message: string }) => void;
}
