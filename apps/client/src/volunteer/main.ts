/**
 * The volunteer page's wiring: shows the job, asks for consent, then connects the session with
 * the job server (session.ts), the peer mesh (peers.ts, over simple-peer-link.ts), the training
 * Web Worker (trainer.ts) and the page (view.ts), and reports link statistics (link-stats.ts).
 *
 * URL parameters: `backend=webgpu|cpu` forces a backend; `ice=relay` forces
 * iceTransportPolicy "relay" (every link through TURN, for tests of NAT traversal);
 * `stopAfter=N` stops training after N samples (for comparisons at equal work).
 *
 * Debugging hook, for tests and the console: `window.meshgrad` (see `MeshgradDebug`).
 */
import {
  LINK_STATUS_INTERVAL_MS,
  type Assignment,
  type CreditReport,
  type JobInfo,
  type LinkStats,
  type SyncRoundMessage,
  type WorkerSettings,
} from '@meshgrad/core';
import { jobTraffic, valveLimit } from './backpressure.ts';
import { chooseBackend, type BackendDecision } from './device-probe.ts';
import { cleanProfile, profileProblem, VolunteerIdentity } from './identity.ts';
import { LinkStatsReporter } from './link-stats.ts';
import type { BackendChoice, WorkerStats } from './messages.ts';
import { PeerMesh } from './peers.ts';
import { VolunteerSession, WORKER_ID_KEY, type IdentitySigner } from './session.ts';
import { simplePeerLinks } from './simple-peer-link.ts';
import { Trainer, type ParameterSnapshot, type WorkerEvent } from './trainer.ts';
import * as view from './view.ts';
import type { PauseReasons } from './view.ts';

/**
 * What `window.meshgrad` offers: the worker id, the latest link statistics as reported to the
 * server, and a copy of the current parameters. For tests and debugging; it changes nothing.
 */
export interface MeshgradDebug {
  readonly workerId: () => string | null;
  /** The identity the server bound at the last hello; null while anonymous or not joined. */
  readonly identity: () => string | null;
  readonly links: () => readonly LinkStats[];
  readonly readParameters: () => Promise<ParameterSnapshot>;
}

/** How often the page asks for its own credit and rank (ms). */
const CREDIT_POLL_MS = 5_000;

/** The page's URL parameters. */
interface PageOptions {
  readonly backend: BackendChoice;
  readonly forceRelay: boolean;
  readonly stopAfterSamples: number | undefined;
}

function pageOptions(params: URLSearchParams): PageOptions {
  const backend = params.get('backend');
  const stopAfter = Number(params.get('stopAfter') ?? '');
  return {
    backend: backend === 'webgpu' || backend === 'cpu' ? backend : 'auto',
    forceRelay: params.get('ice') === 'relay',
    stopAfterSamples: Number.isInteger(stopAfter) && stopAfter > 0 ? stopAfter : undefined,
  };
}

/** One joined volunteer: made on consent, lives as long as the tab. */
class Volunteer {
  private readonly session: VolunteerSession;
  private readonly trainer: Trainer;
  private readonly linkStats = new LinkStatsReporter();
  private mesh: PeerMesh | null = null;
  private assignment: Assignment | null = null;
  /** The settings the training worker runs (from the assignment and `settings`), for the valve. */
  private settings: WorkerSettings | null = null;
  /**
   * The server's latest neighbour list. The worker's start message takes it at the end of the
   * download, not the assignment's: lists that came while shard and checkpoint downloaded would
   * otherwise be lost, and the tab would send to only the peers that were there when it joined.
   */
  private neighbours: readonly string[] = [];
  /** Samples/s in the worker's last statistics, for the valve. */
  private samplesPerSec = 0;
  private lastLinks: LinkStats[] = [];
  private learningRate = 0;
  /** The worker said `ready`: it trains. */
  private training = false;
  /** Sync mode: the newest round that arrived before the training worker was ready. */
  private heldRound: SyncRoundMessage | null = null;
  private creditPoll: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly options: PageOptions,
    private readonly decision: BackendDecision,
    /** Shared with the page's controls, which set `user` and `hidden`; the host sets `job`. */
    private readonly pause: PauseReasons,
    identity: IdentitySigner | null,
  ) {
    this.trainer = new Trainer(
      (m) => this.onWorkerMessage(m),
      (message) => view.showError(message),
    );
    this.session = new VolunteerSession(
      decision.device,
      {
        onConnection: view.showConnection,
        onAssignment: (a) => void this.onAssignment(a),
        onJoinRefused: (message) => view.showError(`The server refused to join: ${message}`),
        onBanned: (message) => {
          // Every link closes now, also those the peers opened (theirs to close otherwise, after
          // a minute of silence): a banned tab must not keep talking to the job's volunteers.
          this.mesh?.destroy();
          this.mesh = null;
          this.neighbours = [];
          this.trainer.post({ type: 'neighbours', neighbours: [] });
          this.pause.job = true;
          this.applyPause();
          // Last, so the page's state line says why rather than "paused".
          view.showError(`The host banned this volunteer from the job: ${message}`);
        },
        onNeighbours: (neighbours) => {
          this.neighbours = neighbours;
          view.showNeighbourCount(neighbours.length);
          this.mesh?.setNeighbours(neighbours);
          this.trainer.post({ type: 'neighbours', neighbours });
        },
        onSignal: (from, data) => this.mesh?.handleSignal(from, data),
        onSettings: (settings) => {
          this.settings = settings;
          this.trainer.post({ type: 'settings', settings });
        },
        onControl: (control) => {
          this.pause.job = control.state !== 'running';
          this.learningRate = control.learningRate;
          view.showLearningRate(control.learningRate);
          this.applyPause();
        },
        onRequestState: (requestId) => this.trainer.post({ type: 'readState', requestId }),
        onSyncRound: (round) => this.syncRound(round),
        onSpotCheck: (c) => {
          const own = (b: ArrayBuffer | Uint8Array): ArrayBuffer =>
            b instanceof ArrayBuffer ? b : (b.slice().buffer as ArrayBuffer);
          const params = own(c.params);
          const x = own(c.x);
          const labels = c.labels === null ? null : own(c.labels);
          this.trainer.post(
            {
              type: 'spotCheck',
              checkId: c.checkId,
              learningRate: c.learningRate,
              params,
              size: c.size,
              x,
              labels,
            },
            labels ? [params, x, labels] : [params, x],
          );
        },
        onRelay: (from, data) => {
          if (this.mesh) this.mesh.receiveRelayed(from, data);
          else this.trainer.post({ type: 'receive', from, data }, [data]);
        },
      },
      options.forceRelay,
      identity,
    );
  }

  dutyCycle(dutyCycle: number): void {
    this.trainer.post({ type: 'duty', dutyCycle });
  }

  readonly debug: MeshgradDebug = {
    workerId: () => this.session.workerId,
    identity: () => this.assignment?.identity?.id ?? null,
    links: () => this.lastLinks,
    readParameters: () => this.trainer.readParameters(),
  };

  private paused(): boolean {
    return this.pause.user || this.pause.hidden || this.pause.job;
  }

  /** Tells the worker and the page whether training is held, after any pause reason changed. */
  applyPause(): void {
    this.trainer.post({ type: 'control', paused: this.paused(), learningRate: this.learningRate });
    view.showPause(this.pause, this.training);
  }

  private async onAssignment(a: Assignment): Promise<void> {
    const first = this.assignment === null;
    this.assignment = a;
    this.settings = a.settings;
    this.neighbours = a.neighbours;
    view.showJob(a.job);
    view.showIdentity(a.identity ?? null);
    if (a.identity && this.creditPoll === undefined) {
      const id = a.identity.id;
      void this.pollCredit(id);
      this.creditPoll = setInterval(() => void this.pollCredit(id), CREDIT_POLL_MS);
    }
    this.learningRate = a.job.learningRate;
    this.pause.job = a.job.state !== 'running';
    view.showNeighbourCount(a.neighbours.length);
    this.mesh ??= this.startMesh(a.workerId);
    this.mesh.setNeighbours(a.neighbours);
    if (!first) {
      // A reconnect (e.g. after a server restart): keep training with our own parameters.
      this.trainer.post({ type: 'neighbours', neighbours: a.neighbours });
      this.trainer.post({ type: 'settings', settings: a.settings });
      this.applyPause();
      return;
    }
    view.setState('Downloading data…', 'idle');
    const [shard, params] = await Promise.all([
      fetchBytes(a.shard.url),
      fetchBytes(a.checkpoint.url),
    ]);
    view.setState('Starting…', 'idle');
    this.trainer.start({
      type: 'start',
      job: a.job,
      workerId: a.workerId,
      backend: this.decision.backend,
      backendReason: this.decision.reason,
      shard,
      params,
      settings: this.settings,
      neighbours: this.neighbours,
      dutyCycle: view.dutyCycle(),
      paused: this.paused(),
      stopAfterSamples: this.options.stopAfterSamples,
    });
    this.postLinks();
  }

  /** This volunteer's credit and rank; a failed poll leaves the last figures shown. */
  private async pollCredit(identity: string): Promise<void> {
    try {
      const res = await fetch(`/api/credit?identity=${encodeURIComponent(identity)}`);
      if (!res.ok) return;
      const report = (await res.json()) as CreditReport;
      view.showCredit(report.you, report.identities);
    } catch {
      // The server restarts or the network blinks: the next poll tries again.
    }
  }

  /** The peer mesh, made as soon as the worker id is known, so no early offer is missed. */
  private startMesh(workerId: string): PeerMesh {
    const mesh = new PeerMesh({
      selfId: workerId,
      createLink: simplePeerLinks(() => this.session.rtcConfiguration()),
      signal: (to, data) => this.session.signal(to, data),
      relay: this.session.relay,
      onMessage: (from, data) => this.trainer.post({ type: 'receive', from, data }, [data]),
      onChange: () => this.postLinks(),
      valve: (drain) =>
        this.settings && this.assignment
          ? valveLimit(
              this.settings,
              jobTraffic(this.assignment.job),
              this.assignment.job.batchSize,
              this.samplesPerSec,
              drain,
            )
          : null,
    });
    setInterval(() => this.postLinks(), LINK_STATUS_INTERVAL_MS);
    return mesh;
  }

  private postLinks(): void {
    if (this.mesh) this.trainer.post({ type: 'links', links: this.mesh.status() });
  }

  /** Sync mode: hands a round's parameters to the training worker (jobs/sync-rounds.ts). */
  private syncRound(m: SyncRoundMessage): void {
    view.showRound(m.round);
    if (!this.training) {
      this.heldRound = m;
      return;
    }
    const params =
      m.params instanceof ArrayBuffer ? m.params : (m.params.slice().buffer as ArrayBuffer);
    this.trainer.post({ type: 'syncRound', round: m.round, learningRate: m.learningRate, params }, [
      params,
    ]);
  }

  private onWorkerMessage(msg: WorkerEvent): void {
    switch (msg.type) {
      case 'ready': {
        this.training = true;
        view.showBackend(msg.backend, msg.reason, true);
        this.applyPause();
        if (this.heldRound) this.syncRound(this.heldRound);
        this.heldRound = null;
        return;
      }
      case 'stats':
        this.onStats(msg.stats);
        return;
      case 'send':
        this.mesh?.send(msg.peer, msg.data);
        return;
      case 'state':
        this.session.uploadState(msg.requestId, msg.samples, msg.params);
        return;
      case 'syncContribution':
        view.markContributedRound(msg.round);
        this.session.contribute({
          round: msg.round,
          samples: msg.samples,
          ...(msg.loss !== undefined ? { loss: msg.loss } : {}),
          params: msg.params,
        });
        return;
      case 'spotCheckAnswer':
        this.session.spotCheckAnswer(msg.checkId, msg.params);
        return;
      case 'error':
        view.showError(`Training stopped: ${msg.message}`);
        return;
    }
  }

  /** The worker's statistics: shown, joined with the link measurements, reported. */
  private onStats(stats: WorkerStats): void {
    view.showTraining(stats);
    this.samplesPerSec = stats.samplesPerSec;
    const measured =
      this.mesh?.measure() ?? Promise.resolve({ links: [], sendBusyFraction: undefined });
    void measured.then(({ links: reports, sendBusyFraction: busy }) => {
      const links = this.linkStats.report(reports, stats.peers, stats.offered, stats.accepted);
      this.lastLinks = links;
      view.showPeers(links);
      this.session.reportStats({
        samples: stats.samples,
        samplesPerSec: stats.samplesPerSec,
        ...(stats.loss !== undefined ? { loss: stats.loss } : {}),
        offered: stats.offered,
        accepted: stats.accepted,
        paused: stats.paused,
        links,
        ...(busy !== undefined ? { sendBusyFraction: busy } : {}),
      });
    });
  }
}

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} failed: ${res.status} ${res.statusText}`);
  return res.arrayBuffer();
}

/** Before consent: shows the job; on Join, probes the device and starts a `Volunteer`. */
async function init(): Promise<void> {
  const options = pageOptions(new URLSearchParams(location.search));
  let shownJob: JobInfo | null = null;
  let volunteer: Volunteer | null = null;
  const debug: MeshgradDebug = {
    workerId: () => volunteer?.debug.workerId() ?? null,
    identity: () => volunteer?.debug.identity() ?? null,
    links: () => volunteer?.debug.links() ?? [],
    readParameters: () =>
      volunteer?.debug.readParameters() ?? Promise.reject(new Error('training has not started')),
  };
  (window as unknown as { meshgrad: MeshgradDebug }).meshgrad = debug;

  // Pause reasons outlive the device check: a click or a hidden tab during it still counts.
  const pause: PauseReasons = { user: false, hidden: false, job: false };
  // The identity this browser keeps, if any, fills the name and team fields.
  const kept = VolunteerIdentity.load().catch((err: unknown) => {
    console.warn(`no identity in this browser: ${(err as Error).message}`);
    return null;
  });
  void kept.then((identity) => identity && view.showProfileInput(identity.profile));
  view.wireControls({
    onJoin: () => {
      const typed = view.profileInput();
      const profile = cleanProfile(typed.name, typed.team);
      const problem = profileProblem(profile);
      if (problem) {
        view.showJoinProblem(problem);
        return;
      }
      view.showJoined();
      view.setState('Checking your device…', 'idle');
      // Without IndexedDB or WebCrypto (a private window, say) the volunteer joins anonymously.
      const identity = kept.then(async (id) => {
        // Kept for the next visit; this join carries the profile whether or not that worked.
        await id?.setProfile(profile).catch((err: unknown) => {
          console.warn(`could not keep the name and team: ${(err as Error).message}`);
        });
        return id;
      });
      Promise.all([chooseBackend(options.backend, shownJob), identity])
        .then(([decision, id]) => {
          view.showDevice(decision.device);
          view.showBackend(decision.backend, decision.reason, false);
          view.setState('Connecting…', 'idle');
          volunteer = new Volunteer(options, decision, pause, id);
        })
        .catch((err: unknown) => view.showError(`Device check failed: ${(err as Error).message}`));
    },
    onResetIdentity: () => {
      if (
        !confirm(
          'Forget this identity? Its credit stays on the server but this browser gets a new key.',
        )
      ) {
        return;
      }
      sessionStorage.removeItem(WORKER_ID_KEY);
      void VolunteerIdentity.reset()
        .catch((err: unknown) => console.warn(`identity reset: ${(err as Error).message}`))
        .finally(() => location.reload());
    },
    onPauseToggle: () => {
      pause.user = !pause.user;
      if (volunteer) volunteer.applyPause();
      else view.showPause(pause, false);
    },
    onDutyCycle: (dutyCycle) => volunteer?.dutyCycle(dutyCycle),
    onHiddenPause: (paused) => {
      pause.hidden = paused;
      if (volunteer) volunteer.applyPause();
      else view.showPause(pause, false);
    },
  });
  try {
    const res = await fetch('/api/jobs');
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const { jobs } = (await res.json()) as { jobs: JobInfo[] };
    const job = jobs[0];
    if (!job) throw new Error('this server runs no job right now');
    shownJob = job;
    view.showJob(job);
    view.enableJoin(
      options.backend === 'auto' ? '' : `Backend forced to ${options.backend} by the URL.`,
    );
  } catch (err) {
    view.showNoJob((err as Error).message);
  }
}

void init();
