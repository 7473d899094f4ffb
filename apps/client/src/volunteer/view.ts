/**
 * The volunteer page's DOM (index.html): what it shows and the controls a volunteer touches.
 * Nothing here talks to the server or the training worker; main.ts wires the two together.
 */
import {
  describeModel,
  formatFlops,
  type CreditEntry,
  type DeviceInfo,
  type JobInfo,
  type LinkStats,
} from '@meshgrad/core';

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

const text = (id: string, value: string): void => {
  $(id).textContent = value;
};

export type StateKind = 'training' | 'paused' | 'error' | 'idle';

/** Why training is held, each reason set by its own control; any one pauses. */
export interface PauseReasons {
  /** The volunteer's own Pause button. */
  user: boolean;
  /** The tab is hidden and "pause while hidden" is ticked. */
  hidden: boolean;
  /** The host paused or stopped the job. */
  job: boolean;
}

/** What the volunteer's controls ask for. */
export interface ControlHandlers {
  readonly onJoin: () => void;
  /** "Forget my identity": a new key at the next join. */
  readonly onResetIdentity: () => void;
  readonly onPauseToggle: () => void;
  /** The duty cycle slider moved: the fraction of time the GPU may compute, in (0, 1]. */
  readonly onDutyCycle: (dutyCycle: number) => void;
  /** The tab was hidden or shown, or "pause while hidden" changed: whether to hold training. */
  readonly onHiddenPause: (paused: boolean) => void;
}

export function showJob(job: JobInfo): void {
  text('job-name', job.name);
  text('job-description', job.description);
  $('job-description').classList.toggle('hidden', !job.description);
  text('job-host', job.host);
  text('job-model', describeModel(job.model));
  text(
    'job-data',
    `${job.dataset.name} (${job.dataset.features} features${job.dataset.classes ? `, ${job.dataset.classes} classes` : ''})`,
  );
  showLearningRate(job.learningRate);
  text(
    'mode',
    job.mode === 'sync'
      ? 'synchronous rounds (parameter server)'
      : 'asynchronous SGD with peer exchange',
  );
  document.body.dataset.mode = job.mode ?? 'asgd';
}

/** No job to join: why. */
export function showNoJob(reason: string): void {
  text('job-name', 'No job available');
  text('join-hint', `Could not load the job: ${reason}`);
}

/** The job loaded: Join may be clicked. `hint` says how the URL changed the backend choice. */
export function enableJoin(hint: string): void {
  $('join').removeAttribute('disabled');
  text('join-hint', hint);
}

/** Consent given: the consent card gives way to the status card. */
export function showJoined(): void {
  $('join').setAttribute('disabled', '');
  $('consent-card').classList.add('hidden');
  $('status-card').classList.remove('hidden');
}

export function showLearningRate(learningRate: number): void {
  text('lr', String(learningRate));
}

export function setState(label: string, kind: StateKind): void {
  const el = $('state');
  el.textContent = label;
  el.className = `value state-${kind}`;
}

export function showError(message: string): void {
  const el = $('error');
  el.textContent = message;
  el.classList.remove('hidden');
  setState('Error', 'error');
}

/** The state line and the Pause button for the current pause reasons, once training runs. */
export function showPause(reasons: Readonly<PauseReasons>, training: boolean): void {
  text('pause', reasons.user ? 'Resume' : 'Pause');
  if (!training) return;
  if (reasons.job) setState('Paused by the host', 'paused');
  else if (reasons.user) setState('Paused', 'paused');
  else if (reasons.hidden) setState('Paused (tab hidden)', 'paused');
  else setState('Training', 'training');
}

export function showConnection(status: string): void {
  text('connection', status);
}

export function showRound(round: number): void {
  text('round', round.toLocaleString('en-US'));
}

/** The worker's last sync contribution, for tests that wait on rounds. */
export function markContributedRound(round: number): void {
  document.body.dataset.round = String(round);
}

export function showDevice(device: DeviceInfo): void {
  text('device', deviceText(device));
}

function deviceText(d: DeviceInfo): string {
  if (!d.adapter) return 'no WebGPU adapter';
  const a = d.adapter;
  return `${[a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unnamed adapter'}${d.software ? ' (software)' : ''}`;
}

/** The backend chosen by the probe (`started` false) or the one the worker runs (true). */
export function showBackend(
  backend: 'webgpu' | 'cpu',
  reason: string | undefined,
  started: boolean,
): void {
  if (backend === 'webgpu') text('backend', started && reason ? `WebGPU (${reason})` : 'WebGPU');
  else text('backend', `CPU backend: ${reason ?? (started ? 'chosen' : '')}`);
  if (started) document.body.dataset.backend = backend;
}

export function showTraining(stats: {
  readonly samples: number;
  readonly samplesPerSec: number;
  readonly loss: number | undefined;
}): void {
  text('sps', stats.samplesPerSec.toFixed(0));
  text('loss', stats.loss === undefined ? '–' : stats.loss.toFixed(3));
  text('samples', stats.samples.toLocaleString('en-US'));
  document.body.dataset.samples = String(stats.samples);
}

/** The neighbour count, before links report their routes. */
export function showNeighbourCount(count: number): void {
  text('peers', String(count));
}

/** Links by route: "3 (2 direct, 1 via TURN)". */
export function showPeers(links: readonly LinkStats[]): void {
  const direct = links.filter((l) => l.route === 'direct').length;
  const turn = links.filter((l) => l.route === 'turn').length;
  const server = links.filter((l) => l.route === 'server').length;
  const parts = [
    direct ? `${direct} direct` : '',
    turn ? `${turn} via TURN` : '',
    server ? `${server} via server` : '',
  ].filter(Boolean);
  text('peers', `${links.length}${parts.length ? ` (${parts.join(', ')})` : ''}`);
}

/** The name and team typed on the consent card. */
export function profileInput(): { name: string; team: string } {
  return {
    name: $<HTMLInputElement>('display-name').value,
    team: $<HTMLInputElement>('team-name').value,
  };
}

/** Fills the consent card's name and team with what this browser kept. */
export function showProfileInput(profile: { name?: string; team?: string }): void {
  $<HTMLInputElement>('display-name').value = profile.name ?? '';
  $<HTMLInputElement>('team-name').value = profile.team ?? '';
}

/** What the join hint says when the name or team will not do. */
export function showJoinProblem(message: string): void {
  text('join-hint', message);
}

/** The identity the server bound (`v-…`), with its name and team as text; null: anonymous. */
export function showIdentity(
  identity: { readonly id: string; readonly name?: string; readonly team?: string } | null,
): void {
  text('identity', identity ? identity.id : 'anonymous (no credit)');
  const profile = identity ? [identity.name, identity.team && `team ${identity.team}`] : [];
  text('identity-profile', profile.filter(Boolean).join(', '));
  if (identity) document.body.dataset.identity = identity.id;
}

/** This volunteer's line of the leaderboard, or none yet. */
export function showCredit(you: CreditEntry | undefined, identities: number): void {
  text('credit', you ? formatFlops(you.credit) : '0 FLOP');
  text('rank', you ? `${you.rank} of ${identities}` : '–');
  document.body.dataset.credit = String(you?.credit ?? 0);
}

/** The duty cycle the slider shows now, in (0, 1]. */
export function dutyCycle(): number {
  return Number($<HTMLInputElement>('duty').value) / 100;
}

/** Wires the Join and Pause buttons, the duty-cycle slider and the hidden-tab pause. */
export function wireControls(handlers: ControlHandlers): void {
  $('join').addEventListener('click', handlers.onJoin);
  $('reset-identity').addEventListener('click', handlers.onResetIdentity);
  $('pause').addEventListener('click', handlers.onPauseToggle);
  const duty = $<HTMLInputElement>('duty');
  duty.addEventListener('input', () => {
    text('duty-value', `${duty.value}%`);
    handlers.onDutyCycle(dutyCycle());
  });
  const pauseHidden = $<HTMLInputElement>('pause-hidden');
  const onVisibility = () =>
    handlers.onHiddenPause(pauseHidden.checked && document.visibilityState === 'hidden');
  document.addEventListener('visibilitychange', onVisibility);
  pauseHidden.addEventListener('change', onVisibility);
}
