/**
 * The volunteer page: shows the job, asks for consent, then runs the training Web Worker and
 * connects it to the job server (socket.io) and to its neighbours (WebRTC data channels, with
 * the server relay as the fallback; see peers.ts).
 *
 * URL parameters: `backend=webgpu|cpu` forces a backend; `ice=relay` forces
 * iceTransportPolicy "relay" (every link through TURN, for tests of NAT traversal);
 * `stopAfter=N` stops training after N samples (for comparisons at equal work).
 *
 * Debugging hook, for tests and the console: `window.meshgrad` (see `MeshgradDebug`).
 */
import { io, type Socket } from 'socket.io-client';
import { probeWebGpu } from '@meshgrad/shaders';
import {
  describeModel,
  LINK_STATUS_INTERVAL_MS,
  PROTOCOL_VERSION,
  type Assignment,
  type DeviceInfo,
  type IceConfig,
  type JobInfo,
  type LinkStats,
  type SyncRoundMessage,
  type VolunteerClientToServerEvents,
  type VolunteerServerToClientEvents,
  type WorkerSettings,
} from '@meshgrad/core';
import { jobTraffic, valveLimit } from './backpressure.ts';
import type { BackendChoice, FromWorker, PeerCountersReport, ToWorker } from './messages.ts';
import { PeerMesh, type LinkReport } from './peers.ts';

type VolunteerSocket = Socket<VolunteerServerToClientEvents, VolunteerClientToServerEvents>;

/** Remembers this tab's worker id so a reconnect after a server restart keeps its identity. */
const WORKER_ID_KEY = 'meshgrad.workerId';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
};

const params = new URLSearchParams(location.search);
const backendParam = params.get('backend');
const backendChoice: BackendChoice =
  backendParam === 'webgpu' || backendParam === 'cpu' ? backendParam : 'auto';
const forceRelay = params.get('ice') === 'relay';
const stopAfterParam = Number(params.get('stopAfter') ?? '');
const stopAfterSamples =
  Number.isInteger(stopAfterParam) && stopAfterParam > 0 ? stopAfterParam : undefined;

/**
 * What `window.meshgrad` offers: the worker id, the latest link statistics as reported to the
 * server, and a copy of the current parameters. For tests and debugging; it changes nothing.
 */
export interface MeshgradDebug {
  readonly workerId: () => string | null;
  readonly links: () => readonly LinkStats[];
  readonly readParameters: () => Promise<{ samples: number; params: Float32Array }>;
}

let socket: VolunteerSocket | null = null;
let worker: Worker | null = null;
let assignment: Assignment | null = null;
let userPaused = false;
let hiddenPaused = false;
let jobPaused = false;
let learningRate = 0;
let started = false;
/** Sync mode: the newest round that arrived before the training worker was ready. */
let heldRound: SyncRoundMessage | null = null;
let mesh: PeerMesh | null = null;
let ice: IceConfig = { iceServers: [] };
/** When `ice` arrived, to refresh TURN credentials halfway through their lifetime. */
let iceReceivedAt = 0;
let lastLinks: LinkStats[] = [];
/** The settings the training worker runs (from the assignment and `settings`), for the valve. */
let currentSettings: WorkerSettings | null = null;
/** Samples/s in the worker's last statistics, for the valve. */
let lastSamplesPerSec = 0;
/** Counters at the previous statistics report, for per-interval rates. */
let previousReport: { offered: number; accepted: number; received: Map<string, number> } = {
  offered: 0,
  accepted: 0,
  received: new Map(),
};
const parameterRequests = new Map<string, (r: { samples: number; params: Float32Array }) => void>();
let requestCounter = 0;

interface BackendDecision {
  readonly backend: 'webgpu' | 'cpu';
  readonly reason: string | undefined;
  readonly device: DeviceInfo;
}

let decision: BackendDecision | null = null;

/**
 * The capability probe, run once after consent: which adapter this browser offers and which
 * backend to use. A software adapter (SwiftShader) runs WGSL hundreds of times slower than the
 * CPU backend (DESIGN §7), so `auto` picks the CPU backend there and says why.
 */
/** The job the page showed before consent; a custom-WGSL job needs WebGPU whatever the adapter. */
let shownJob: JobInfo | null = null;

async function probe(): Promise<BackendDecision> {
  const result = await probeWebGpu((navigator as Navigator & { gpu?: GPU }).gpu);
  const adapter = result.ok ? result.adapterInfo : undefined;
  const base = {
    userAgent: navigator.userAgent.slice(0, 512),
    ...(adapter ? { adapter, software: result.software } : {}),
  };
  const decide = (backend: 'webgpu' | 'cpu', reason: string | undefined): BackendDecision => ({
    backend,
    reason,
    device: { ...base, backend, ...(reason ? { backendReason: reason.slice(0, 256) } : {}) },
  });
  if (backendChoice === 'cpu') return decide('cpu', 'chosen by the backend=cpu URL parameter');
  if (!result.ok) return decide('cpu', result.reason ?? 'no WebGPU adapter');
  if (shownJob?.kernel) {
    // The host's own WGSL kernel has no CPU implementation: even a software adapter must run it.
    return decide('webgpu', 'this job runs its own WGSL kernel, which needs WebGPU');
  }
  if (backendChoice === 'webgpu')
    return decide('webgpu', 'chosen by the backend=webgpu URL parameter');
  if (result.software) {
    const name = adapter?.architecture || adapter?.description || 'fallback';
    return decide('cpu', `software adapter (${name}) is slower than the CPU backend`);
  }
  return decide('webgpu', undefined);
}

function deviceText(d: DeviceInfo): string {
  if (!d.adapter) return 'no WebGPU adapter';
  const a = d.adapter;
  return `${[a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unnamed adapter'}${d.software ? ' (software)' : ''}`;
}

function showJob(job: JobInfo): void {
  $('job-name').textContent = job.name;
  $('job-description').textContent = job.description;
  $('job-description').classList.toggle('hidden', !job.description);
  $('job-host').textContent = job.host;
  $('job-model').textContent = describeModel(job.model);
  $('job-data').textContent =
    `${job.dataset.name} (${job.dataset.features} features${job.dataset.classes ? `, ${job.dataset.classes} classes` : ''})`;
  $('lr').textContent = String(job.learningRate);
  $('mode').textContent =
    job.mode === 'sync'
      ? 'synchronous rounds (parameter server)'
      : 'asynchronous SGD with peer exchange';
  document.body.dataset.mode = job.mode ?? 'asgd';
}

/** Sync mode: hands a round's parameters to the training worker (jobs/sync-rounds.ts). */
function syncRound(m: SyncRoundMessage): void {
  $('round').textContent = m.round.toLocaleString('en-US');
  if (!started) {
    heldRound = m;
    return;
  }
  const params =
    m.params instanceof ArrayBuffer ? m.params : (m.params.slice().buffer as ArrayBuffer);
  toWorker({ type: 'syncRound', round: m.round, learningRate: m.learningRate, params }, [params]);
}

function setState(text: string, kind: 'training' | 'paused' | 'error' | 'idle'): void {
  const el = $('state');
  el.textContent = text;
  el.className = `value state-${kind}`;
}

function showError(message: string): void {
  const el = $('error');
  el.textContent = message;
  el.classList.remove('hidden');
  setState('Error', 'error');
}

function paused(): boolean {
  return userPaused || hiddenPaused || jobPaused;
}

function toWorker(message: ToWorker, transfer: Transferable[] = []): void {
  worker?.postMessage(message, transfer);
}

function applyPause(): void {
  toWorker({ type: 'control', paused: paused(), learningRate });
  $('pause').textContent = userPaused ? 'Resume' : 'Pause';
  if (!started) return;
  if (jobPaused) setState('Paused by the host', 'paused');
  else if (userPaused) setState('Paused', 'paused');
  else if (hiddenPaused) setState('Paused (tab hidden)', 'paused');
  else setState('Training', 'training');
}

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} failed: ${res.status} ${res.statusText}`);
  return res.arrayBuffer();
}

function onWorkerMessage(msg: FromWorker): void {
  switch (msg.type) {
    case 'ready': {
      started = true;
      $('backend').textContent =
        msg.backend === 'webgpu'
          ? `WebGPU${msg.reason ? ` (${msg.reason})` : ''}`
          : `CPU backend: ${msg.reason ?? 'chosen'}`;
      document.body.dataset.backend = msg.backend;
      applyPause();
      if (heldRound) syncRound(heldRound);
      heldRound = null;
      return;
    }
    case 'stats': {
      $('sps').textContent = msg.stats.samplesPerSec.toFixed(0);
      $('loss').textContent = msg.stats.loss === undefined ? '–' : msg.stats.loss.toFixed(3);
      $('samples').textContent = msg.stats.samples.toLocaleString('en-US');
      document.body.dataset.samples = String(msg.stats.samples);
      const stats = msg.stats;
      lastSamplesPerSec = stats.samplesPerSec;
      const measured =
        mesh?.measure() ?? Promise.resolve({ links: [], sendBusyFraction: undefined });
      void measured.then(({ links: reports, sendBusyFraction: busy }) => {
        const links = linkStats(reports, stats.peers, stats.offered, stats.accepted);
        lastLinks = links;
        showPeers(links);
        if (socket?.connected && assignment) {
          socket.emit('stats', {
            jobId: assignment.job.id,
            samples: stats.samples,
            samplesPerSec: stats.samplesPerSec,
            ...(stats.loss !== undefined ? { loss: stats.loss } : {}),
            offered: stats.offered,
            accepted: stats.accepted,
            paused: stats.paused,
            links,
            ...(busy !== undefined ? { sendBusyFraction: busy } : {}),
          });
        }
      });
      return;
    }
    case 'send':
      mesh?.send(msg.peer, msg.data);
      return;
    case 'parameters': {
      const resolve = parameterRequests.get(msg.requestId);
      parameterRequests.delete(msg.requestId);
      resolve?.({ samples: msg.samples, params: new Float32Array(msg.params) });
      return;
    }
    case 'state':
      socket?.emit(
        'state',
        {
          requestId: msg.requestId,
          jobId: assignment?.job.id ?? '',
          samples: msg.samples,
          params: msg.params,
        },
        (reply) => {
          if (!reply.ok) console.warn(`state upload refused: ${reply.code}: ${reply.message}`);
        },
      );
      return;
    case 'syncContribution':
      document.body.dataset.round = String(msg.round);
      socket?.emit('syncContribution', {
        jobId: assignment?.job.id ?? '',
        round: msg.round,
        samples: msg.samples,
        ...(msg.loss !== undefined ? { loss: msg.loss } : {}),
        params: msg.params,
      });
      return;
    case 'error':
      showError(`Training stopped: ${msg.message}`);
      return;
  }
}

/**
 * Per-link statistics for the server (DESIGN §3 signals): the page's measurements of each link
 * joined with the training loop's per-peer counters. Sends the page had to drop count as
 * skipped, not sent. The backend counts Parzen acceptance per worker, not per peer, so every
 * link that delivered blocks in the interval reports the worker's rate for that interval.
 */
function linkStats(
  reports: readonly LinkReport[],
  peers: readonly PeerCountersReport[],
  offered: number,
  accepted: number,
): LinkStats[] {
  const counters = new Map(peers.map((p) => [p.peer, p]));
  const offeredNow = offered - previousReport.offered;
  const rate = offeredNow > 0 ? (accepted - previousReport.accepted) / offeredNow : undefined;
  const received = new Map<string, number>();
  const links = reports.slice(0, 64).map((r): LinkStats => {
    const c = counters.get(r.peer);
    const blocksReceived = c?.blocksReceived ?? 0;
    received.set(r.peer, blocksReceived);
    const fresh = blocksReceived > (previousReport.received.get(r.peer) ?? 0);
    return {
      peer: r.peer,
      relayed: r.route === 'turn' || r.route === 'server',
      ...(r.route !== 'connecting' ? { route: r.route } : {}),
      goodputBytesPerSec: r.goodputBytesPerSec,
      ...(r.rttMs !== undefined ? { rttMs: r.rttMs } : {}),
      backlogBytes: r.backlogBytes,
      blocksSent: Math.max(0, (c?.blocksSent ?? 0) - r.dropped),
      blocksReceived,
      overwritten: c?.overwritten ?? 0,
      rejected: c?.rejected ?? 0,
      ...(fresh && rate !== undefined ? { acceptanceRate: Math.min(1, Math.max(0, rate)) } : {}),
      skippedSends: (c?.sendsSkipped ?? 0) + r.dropped,
    };
  });
  previousReport = { offered, accepted, received };
  return links;
}

function showPeers(links: readonly LinkStats[]): void {
  const direct = links.filter((l) => l.route === 'direct').length;
  const turn = links.filter((l) => l.route === 'turn').length;
  const server = links.filter((l) => l.route === 'server').length;
  const parts = [
    direct ? `${direct} direct` : '',
    turn ? `${turn} via TURN` : '',
    server ? `${server} via server` : '',
  ].filter(Boolean);
  $('peers').textContent = `${links.length}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

function rtcConfiguration(): RTCConfiguration {
  return {
    iceServers: ice.iceServers.map((s) => ({
      urls: typeof s.urls === 'string' ? s.urls : [...s.urls],
      ...(s.username !== undefined ? { username: s.username } : {}),
      ...(s.credential !== undefined ? { credential: s.credential } : {}),
    })),
    iceTransportPolicy: forceRelay ? 'relay' : 'all',
  };
}

function setIce(config: IceConfig | undefined): void {
  ice = config ?? { iceServers: [] };
  iceReceivedAt = Date.now();
}

/** Fresh TURN credentials once half their lifetime has passed (links made later need them). */
function refreshIce(): void {
  const expiresAt = ice.expiresAt;
  if (expiresAt === undefined || !socket?.connected) return;
  if (Date.now() < iceReceivedAt + (expiresAt - iceReceivedAt) / 2) return;
  socket.emit('ice', {}, (reply) => {
    if (reply.ok) setIce(reply);
  });
}

function postLinks(): void {
  if (mesh) toWorker({ type: 'links', links: mesh.status() });
}

/** The peer mesh, made as soon as the worker id is known, so no early offer is missed. */
function startMesh(workerId: string): PeerMesh {
  const m = new PeerMesh({
    selfId: workerId,
    rtc: rtcConfiguration,
    signal: (to, data) => {
      if (socket?.connected) socket.emit('signal', { to, data });
    },
    relay: {
      get available() {
        return socket?.connected ?? false;
      },
      send: (to, data) => socket?.emit('relay', { to, data }),
    },
    onMessage: (from, data) => toWorker({ type: 'receive', from, data }, [data]),
    onChange: postLinks,
    valve: (drain) =>
      currentSettings && assignment
        ? valveLimit(
            currentSettings,
            jobTraffic(assignment.job),
            assignment.job.batchSize,
            lastSamplesPerSec,
            drain,
          )
        : null,
  });
  setInterval(postLinks, LINK_STATUS_INTERVAL_MS);
  setInterval(refreshIce, 60_000);
  return m;
}

function hello(s: VolunteerSocket, d: BackendDecision): void {
  const known = sessionStorage.getItem(WORKER_ID_KEY);
  s.emit(
    'hello',
    {
      protocolVersion: PROTOCOL_VERSION,
      ...(known ? { workerId: known } : {}),
      device: d.device,
    },
    (reply) => {
      if (!reply.ok) {
        showError(`The server refused to join: ${reply.message}`);
        return;
      }
      void onAssignment(reply);
    },
  );
}

async function onAssignment(a: Assignment): Promise<void> {
  const first = assignment === null;
  assignment = a;
  currentSettings = a.settings;
  sessionStorage.setItem(WORKER_ID_KEY, a.workerId);
  showJob(a.job);
  learningRate = a.job.learningRate;
  jobPaused = a.job.state !== 'running';
  $('peers').textContent = String(a.neighbours.length);
  setIce(a.ice);
  mesh ??= startMesh(a.workerId);
  mesh.setNeighbours(a.neighbours);
  if (!first) {
    // A reconnect (e.g. after a server restart): keep training with our own parameters.
    toWorker({ type: 'neighbours', neighbours: a.neighbours });
    toWorker({ type: 'settings', settings: a.settings });
    applyPause();
    return;
  }
  setState('Downloading data…', 'idle');
  const [shard, weights] = await Promise.all([
    fetchBytes(a.shard.url),
    fetchBytes(a.checkpoint.url),
  ]);
  setState('Starting…', 'idle');
  worker = new Worker(new URL('./training.worker.ts', import.meta.url), {
    type: 'module',
    name: 'meshgrad-training',
  });
  worker.onmessage = (e: MessageEvent<FromWorker>) => onWorkerMessage(e.data);
  worker.onerror = (e) => showError(`Training worker failed: ${e.message}`);
  toWorker(
    {
      type: 'start',
      job: a.job,
      workerId: a.workerId,
      backend: decision?.backend ?? 'cpu',
      backendReason: decision?.reason,
      shard,
      params: weights,
      settings: a.settings,
      neighbours: a.neighbours,
      dutyCycle: Number(($('duty') as HTMLInputElement).value) / 100,
      paused: paused(),
      stopAfterSamples,
    },
    [shard, weights],
  );
  postLinks();
}

function connect(d: BackendDecision): void {
  const s: VolunteerSocket = io('/volunteer', {
    transports: ['websocket'],
    reconnectionDelayMax: 2_000,
  });
  socket = s;
  s.on('connect', () => {
    $('connection').textContent = 'connected';
    hello(s, d);
  });
  s.on('disconnect', (reason) => {
    $('connection').textContent = `reconnecting (${reason})`;
  });
  s.on('connect_error', () => {
    $('connection').textContent = 'reconnecting…';
  });
  s.on('neighbours', (neighbours) => {
    $('peers').textContent = String(neighbours.length);
    mesh?.setNeighbours(neighbours);
    toWorker({ type: 'neighbours', neighbours });
  });
  s.on('signal', ({ from, data }) => mesh?.handleSignal(from, data));
  s.on('settings', (settings) => {
    currentSettings = settings;
    toWorker({ type: 'settings', settings });
  });
  s.on('control', (control) => {
    jobPaused = control.state !== 'running';
    learningRate = control.learningRate;
    $('lr').textContent = String(learningRate);
    applyPause();
  });
  s.on('requestState', ({ requestId }) => toWorker({ type: 'readState', requestId }));
  s.on('syncRound', syncRound);
  s.on('relay', ({ from, data }) => {
    const buffer = data instanceof ArrayBuffer ? data : (data.slice().buffer as ArrayBuffer);
    if (mesh) mesh.receiveRelayed(from, buffer);
    else toWorker({ type: 'receive', from, data: buffer }, [buffer]);
  });
  s.on('refused', (e) => {
    // A relay or signal to a neighbour that just left races the neighbour update.
    if ((e.event === 'relay' || e.event === 'signal') && e.code === 'ERR_UNKNOWN_PEER') return;
    // A sync round that ended (timeout, everyone else answered) while this tab computed it.
    if (e.event === 'syncContribution' && e.code === 'ERR_UNEXPECTED') return;
    console.warn(`server refused ${e.event}: ${e.code}: ${e.message}`);
  });
}

function wireControls(): void {
  $('pause').addEventListener('click', () => {
    userPaused = !userPaused;
    applyPause();
  });
  const duty = $('duty') as HTMLInputElement;
  duty.addEventListener('input', () => {
    $('duty-value').textContent = `${duty.value}%`;
    toWorker({ type: 'duty', dutyCycle: Number(duty.value) / 100 });
  });
  const pauseHidden = $('pause-hidden') as HTMLInputElement;
  const onVisibility = () => {
    hiddenPaused = pauseHidden.checked && document.visibilityState === 'hidden';
    applyPause();
  };
  document.addEventListener('visibilitychange', onVisibility);
  pauseHidden.addEventListener('change', onVisibility);
}

async function init(): Promise<void> {
  wireControls();
  try {
    const res = await fetch('/api/jobs');
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const { jobs } = (await res.json()) as { jobs: JobInfo[] };
    const job = jobs[0];
    if (!job) throw new Error('this server runs no job right now');
    shownJob = job;
    showJob(job);
    $('join').removeAttribute('disabled');
    $('join-hint').textContent =
      backendChoice === 'auto' ? '' : `Backend forced to ${backendChoice} by the URL.`;
  } catch (err) {
    $('job-name').textContent = 'No job available';
    $('join-hint').textContent = `Could not load the job: ${(err as Error).message}`;
  }
  $('join').addEventListener('click', () => {
    $('join').setAttribute('disabled', '');
    $('consent-card').classList.add('hidden');
    $('status-card').classList.remove('hidden');
    setState('Checking your device…', 'idle');
    probe()
      .then((d) => {
        decision = d;
        $('device').textContent = deviceText(d.device);
        $('backend').textContent =
          d.backend === 'webgpu' ? 'WebGPU' : `CPU backend: ${d.reason ?? ''}`;
        setState('Connecting…', 'idle');
        connect(d);
      })
      .catch((err: unknown) => showError(`Device check failed: ${(err as Error).message}`));
  });
}

const debug: MeshgradDebug = {
  workerId: () => assignment?.workerId ?? null,
  links: () => lastLinks,
  readParameters: () =>
    new Promise((resolve, reject) => {
      if (!worker) {
        reject(new Error('training has not started'));
        return;
      }
      const requestId = `p${++requestCounter}`;
      parameterRequests.set(requestId, resolve);
      toWorker({ type: 'readParameters', requestId });
    }),
};
(window as unknown as { meshgrad: MeshgradDebug }).meshgrad = debug;

void init();
