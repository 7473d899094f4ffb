/**
 * The volunteer page's side of the control protocol (DESIGN §4): the `/volunteer` socket, the
 * `hello` that joins the job (again after every reconnect), ICE servers and their refresh, and
 * the events the page sends. Requests that expect a reply wait DEFAULT_REQUEST_TIMEOUT_MS.
 */
import { io, type Socket } from 'socket.io-client';
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  PROTOCOL_VERSION,
  type Assignment,
  type ControlMessage,
  type DeviceInfo,
  type IceConfig,
  type IdentityProof,
  type SignalData,
  type SpotCheckMessage,
  type Stats,
  type SyncContribution,
  type SyncRoundMessage,
  type VolunteerClientToServerEvents,
  type VolunteerServerToClientEvents,
  type WorkerSettings,
} from '@meshgrad/core';
import type { RelaySender } from './peers.ts';

type VolunteerSocket = Socket<VolunteerServerToClientEvents, VolunteerClientToServerEvents>;

/** Remembers this tab's worker id so a reconnect after a server restart keeps its identity. */
export const WORKER_ID_KEY = 'meshgrad.workerId';

/** Fresh TURN credentials are asked for this often once half their lifetime has passed, ms. */
const ICE_REFRESH_CHECK_MS = 60_000;

const TIMEOUT_TEXT = `${DEFAULT_REQUEST_TIMEOUT_MS / 1000} s`;

/** Signs a connection's challenge (identity.ts): how a hello proves who the volunteer is. */
export interface IdentitySigner {
  proof(challenge: string): Promise<IdentityProof>;
}

/** What the server tells the page. */
export interface SessionHandlers {
  /** The connection's state, for the page to show ("connected", "reconnecting (…)"). */
  readonly onConnection: (status: string) => void;
  /** `hello` answered with the job (first join, or again after a reconnect). */
  readonly onAssignment: (assignment: Assignment) => void;
  /** `hello` refused: the page cannot join. */
  readonly onJoinRefused: (message: string) => void;
  /** The host banned this worker; the server closed the connection and it stays closed. */
  readonly onBanned: (message: string) => void;
  readonly onNeighbours: (neighbours: readonly string[]) => void;
  readonly onSignal: (from: string, data: SignalData) => void;
  readonly onSettings: (settings: WorkerSettings) => void;
  readonly onControl: (control: ControlMessage) => void;
  readonly onRequestState: (requestId: string) => void;
  readonly onSyncRound: (round: SyncRoundMessage) => void;
  /** The server's spot check of this worker (DESIGN §9). */
  readonly onSpotCheck: (check: SpotCheckMessage) => void;
  readonly onRelay: (from: string, data: ArrayBuffer) => void;
}

/** Statistics as the page reports them; the job id is the session's. */
export type StatsReport = Omit<Stats, 'jobId'>;

/** One connection to the job server, reconnecting on its own. */
export class VolunteerSession {
  private readonly socket: VolunteerSocket;
  private assignment: Assignment | null = null;
  private ice: IceConfig = { iceServers: [] };
  /** When `ice` arrived, to refresh TURN credentials halfway through their lifetime. */
  private iceReceivedAt = 0;
  private iceRefresh: ReturnType<typeof setInterval> | undefined;

  /** The server relay, the mesh's fallback route. */
  readonly relay: RelaySender;

  constructor(
    private readonly device: DeviceInfo,
    private readonly handlers: SessionHandlers,
    /** Every link through TURN (`iceTransportPolicy: relay`), for tests of NAT traversal. */
    private readonly forceRelay: boolean,
    /** The volunteer's identity; null joins anonymously (no credit). */
    private readonly identity: IdentitySigner | null,
  ) {
    const s: VolunteerSocket = io('/volunteer', {
      transports: ['websocket'],
      reconnectionDelayMax: 2_000,
    });
    this.socket = s;
    this.relay = {
      get available() {
        return s.connected;
      },
      send: (to, data) => s.emit('relay', { to, data }),
    };
    s.on('connect', () => {
      handlers.onConnection('connected');
      void this.hello();
    });
    // The server closing the connection on purpose (a ban) is the one case socket.io does not
    // reconnect after.
    s.on('disconnect', (reason) =>
      handlers.onConnection(
        reason === 'io server disconnect' ? 'closed by the server' : `reconnecting (${reason})`,
      ),
    );
    s.on('connect_error', () => handlers.onConnection('reconnecting…'));
    s.on('neighbours', (neighbours) => handlers.onNeighbours(neighbours));
    s.on('signal', ({ from, data }) => handlers.onSignal(from, data));
    s.on('settings', (settings) => handlers.onSettings(settings));
    s.on('control', (control) => handlers.onControl(control));
    s.on('requestState', ({ requestId }) => handlers.onRequestState(requestId));
    s.on('syncRound', (round) => handlers.onSyncRound(round));
    s.on('spotCheck', (check) => handlers.onSpotCheck(check));
    s.on('relay', ({ from, data }) => handlers.onRelay(from, ownBuffer(data)));
    s.on('banned', ({ message }) => handlers.onBanned(message));
    s.on('refused', (e) => {
      // A relay or signal to a neighbour that just left races the neighbour update.
      if ((e.event === 'relay' || e.event === 'signal') && e.code === 'ERR_UNKNOWN_PEER') return;
      // A sync round that ended (timeout, everyone else answered) while this tab computed it.
      if (e.event === 'syncContribution' && e.code === 'ERR_UNEXPECTED') return;
      console.warn(`server refused ${e.event}: ${e.code}: ${e.message}`);
    });
  }

  get workerId(): string | null {
    return this.assignment?.workerId ?? null;
  }

  /** ICE servers and policy for a new peer connection (the TURN credentials current now). */
  rtcConfiguration(): RTCConfiguration {
    return {
      iceServers: this.ice.iceServers.map((s) => ({
        urls: typeof s.urls === 'string' ? s.urls : [...s.urls],
        ...(s.username !== undefined ? { username: s.username } : {}),
        ...(s.credential !== undefined ? { credential: s.credential } : {}),
      })),
      iceTransportPolicy: this.forceRelay ? 'relay' : 'all',
    };
  }

  signal(to: string, data: SignalData): void {
    if (this.socket.connected) this.socket.emit('signal', { to, data });
  }

  /** Reports statistics; dropped while disconnected or before the job is known. */
  reportStats(stats: StatsReport): void {
    if (this.socket.connected && this.assignment) {
      this.socket.emit('stats', { jobId: this.assignment.job.id, ...stats });
    }
  }

  /** Answers the server's `requestState` with this worker's parameters. */
  uploadState(requestId: string, samples: number, params: ArrayBuffer): void {
    this.socket
      .timeout(DEFAULT_REQUEST_TIMEOUT_MS)
      .emit(
        'state',
        { requestId, jobId: this.jobId(), samples, params },
        (err: Error | null, reply) => {
          if (err) console.warn(`state upload: no answer within ${TIMEOUT_TEXT}`);
          else if (!reply.ok) console.warn(`state upload refused: ${reply.code}: ${reply.message}`);
        },
      );
  }

  /** The answer to a spot check: the parameters after its step. */
  spotCheckAnswer(checkId: string, params: ArrayBuffer): void {
    if (this.socket.connected) this.socket.emit('spotCheckAnswer', { checkId, params });
  }

  /** Sync mode: this worker's answer to a round. */
  contribute(contribution: Omit<SyncContribution, 'jobId'>): void {
    this.socket.emit('syncContribution', { jobId: this.jobId(), ...contribution });
  }

  private jobId(): string {
    return this.assignment?.job.id ?? '';
  }

  /** Gives up this connection after a request went unanswered: a fresh one says hello again. */
  private reconnect(what: string): void {
    if (!this.socket.connected) return; // the reconnect says hello again
    this.socket.disconnect().connect();
    this.handlers.onConnection(
      `reconnecting (the server did not answer ${what} within ${TIMEOUT_TEXT})`,
    );
  }

  /** This connection's challenge signed, or null when the connection was given up. */
  private async proveIdentity(identity: IdentitySigner): Promise<IdentityProof | null> {
    let reply;
    try {
      reply = await this.socket.timeout(DEFAULT_REQUEST_TIMEOUT_MS).emitWithAck('challenge', {});
    } catch {
      this.reconnect('challenge');
      return null;
    }
    if (!reply.ok) {
      this.handlers.onJoinRefused(reply.message);
      return null;
    }
    return identity.proof(reply.challenge);
  }

  /**
   * Joins the job: asks for this connection's challenge and signs it (DESIGN §9), then says
   * hello. A request the server does not answer in time is given up with the connection: a
   * fresh one says hello again (the server dropped the half-joined socket).
   */
  private async hello(): Promise<void> {
    const proof = this.identity ? await this.proveIdentity(this.identity) : undefined;
    if (proof === null) return;
    const known = sessionStorage.getItem(WORKER_ID_KEY);
    this.socket.timeout(DEFAULT_REQUEST_TIMEOUT_MS).emit(
      'hello',
      {
        protocolVersion: PROTOCOL_VERSION,
        ...(known ? { workerId: known } : {}),
        device: this.device,
        ...(proof ? { identity: proof } : {}),
      },
      (err: Error | null, reply) => {
        if (err) {
          this.reconnect('hello');
          return;
        }
        if (!reply.ok) {
          this.handlers.onJoinRefused(reply.message);
          return;
        }
        this.assignment = reply;
        sessionStorage.setItem(WORKER_ID_KEY, reply.workerId);
        this.setIce(reply.ice);
        this.iceRefresh ??= setInterval(() => this.refreshIce(), ICE_REFRESH_CHECK_MS);
        this.handlers.onAssignment(reply);
      },
    );
  }

  private setIce(config: IceConfig | undefined): void {
    this.ice = config ?? { iceServers: [] };
    this.iceReceivedAt = Date.now();
  }

  /** Fresh TURN credentials once half their lifetime has passed (links made later need them). */
  private refreshIce(): void {
    const expiresAt = this.ice.expiresAt;
    if (expiresAt === undefined || !this.socket.connected) return;
    if (Date.now() < this.iceReceivedAt + (expiresAt - this.iceReceivedAt) / 2) return;
    this.socket.timeout(DEFAULT_REQUEST_TIMEOUT_MS).emit('ice', {}, (err: Error | null, reply) => {
      // A later check asks again; links keep the credentials they were made with.
      if (err) console.warn(`fresh ICE servers: no answer within ${TIMEOUT_TEXT}`);
      else if (reply.ok) this.setIce(reply);
    });
  }
}

/** Relayed bytes as an ArrayBuffer of their own (socket.io may hand a view into a larger one). */
function ownBuffer(data: ArrayBuffer | Uint8Array): ArrayBuffer {
  return data instanceof ArrayBuffer ? data : (data.slice().buffer as ArrayBuffer);
}
