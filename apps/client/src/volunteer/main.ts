/**
 * The volunteer page: shows the job, asks for consent, then runs the training Web Worker and
 * connects it to the job server (socket.io) and to peers (relay through the server for now).
 */
import { io, type Socket } from 'socket.io-client';
import { probeWebGpu } from '@meshgrad/shaders';
import {
  PROTOCOL_VERSION,
  type Assignment,
  type DeviceInfo,
  type JobInfo,
  type VolunteerClientToServerEvents,
  type VolunteerServerToClientEvents,
} from '@meshgrad/core';
import type { BackendChoice, FromWorker, ToWorker } from './messages.ts';

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

let socket: VolunteerSocket | null = null;
let worker: Worker | null = null;
let assignment: Assignment | null = null;
let userPaused = false;
let hiddenPaused = false;
let jobPaused = false;
let learningRate = 0;
let started = false;

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

function modelText(job: JobInfo): string {
  const m = job.model;
  if (m.kind === 'mlp') return `MLP ${[m.inputs, ...m.hidden, m.classes].join('-')}`;
  if (m.kind === 'softmax') return `softmax regression ${m.inputs}-${m.classes}`;
  return `K-Means, ${m.clusters} centres in ${m.dims} dimensions`;
}

function showJob(job: JobInfo): void {
  $('job-name').textContent = job.name;
  $('job-description').textContent = job.description;
  $('job-description').classList.toggle('hidden', !job.description);
  $('job-host').textContent = job.host;
  $('job-model').textContent = modelText(job);
  $('job-data').textContent =
    `${job.dataset.name} (${job.dataset.features} features${job.dataset.classes ? `, ${job.dataset.classes} classes` : ''})`;
  $('lr').textContent = String(job.learningRate);
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
      return;
    }
    case 'stats': {
      $('sps').textContent = msg.stats.samplesPerSec.toFixed(0);
      $('loss').textContent = msg.stats.loss === undefined ? '–' : msg.stats.loss.toFixed(3);
      $('samples').textContent = msg.stats.samples.toLocaleString('en-US');
      document.body.dataset.samples = String(msg.stats.samples);
      if (socket?.connected && assignment) {
        socket.emit('stats', {
          jobId: assignment.job.id,
          samples: msg.stats.samples,
          samplesPerSec: msg.stats.samplesPerSec,
          ...(msg.stats.loss !== undefined ? { loss: msg.stats.loss } : {}),
          offered: msg.stats.offered,
          accepted: msg.stats.accepted,
          paused: msg.stats.paused,
          links: [],
        });
      }
      return;
    }
    case 'send':
      if (socket?.connected) socket.emit('relay', { to: msg.peer, data: msg.data });
      return;
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
    case 'error':
      showError(`Training stopped: ${msg.message}`);
      return;
  }
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
  sessionStorage.setItem(WORKER_ID_KEY, a.workerId);
  showJob(a.job);
  learningRate = a.job.learningRate;
  jobPaused = a.job.state !== 'running';
  $('peers').textContent = String(a.neighbours.length);
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
    },
    [shard, weights],
  );
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
    toWorker({ type: 'neighbours', neighbours });
  });
  s.on('settings', (settings) => toWorker({ type: 'settings', settings }));
  s.on('control', (control) => {
    jobPaused = control.state !== 'running';
    learningRate = control.learningRate;
    $('lr').textContent = String(learningRate);
    applyPause();
  });
  s.on('requestState', ({ requestId }) => toWorker({ type: 'readState', requestId }));
  s.on('relay', ({ from, data }) => {
    const buffer = data instanceof ArrayBuffer ? data : (data.slice().buffer as ArrayBuffer);
    toWorker({ type: 'receive', from, data: buffer }, [buffer]);
  });
  s.on('refused', (e) => {
    // A relay to a neighbour that just left races the neighbour update; nothing to report.
    if (e.event === 'relay' && e.code === 'ERR_UNKNOWN_PEER') return;
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

void init();
