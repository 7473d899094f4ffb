/**
 * The admin console (DESIGN §1): sign in with the admin token, then watch one job live (charts,
 * workers, links) and steer it (control, checkpoints, new jobs). History comes from the server's
 * metrics history; the `/admin` socket adds records, snapshots and job summaries as they happen.
 */
import type {
  AdminCheckpoint,
  AdminJobSnapshot,
  AdminJobSummary,
  AdminMetricsHistory,
  AdminMetricsRecord,
} from '@meshgrad/core';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '@meshgrad/core';
import { AdminApi, ApiError } from './api.ts';
import { $, h, replaceChildren, setText, show } from './dom.ts';
import { connectLive, type AdminSocket, type LiveStatus } from './live.ts';
import { CheckpointsView } from './views/checkpoints.ts';
import { ControlView } from './views/control.ts';
import { renderLinks } from './views/links.ts';
import { NewJobView } from './views/new-job.ts';
import { OverviewView } from './views/overview.ts';
import { renderWorkers } from './views/workers.ts';
import { CreditView } from './views/credit.ts';

/**
 * Where the token is kept: this tab's session storage, so a reload stays signed in but closing
 * the tab forgets it, and no other site or tab can read it.
 */
const TOKEN_KEY = 'meshgrad.adminToken';
const JOB_KEY = 'meshgrad.adminJob';
const VIEWS = [
  'overview',
  'workers',
  'links',
  'control',
  'checkpoints',
  'credit',
  'new-job',
] as const;
type View = (typeof VIEWS)[number];

let api: AdminApi | null = null;
let socket: AdminSocket | null = null;
let jobs: readonly AdminJobSummary[] = [];
let jobId: string | null = null;
let history: AdminMetricsRecord[] = [];
let checkpoints: AdminCheckpoint[] = [];
/** Bumped on every job switch, so answers for the previous job are dropped. */
let generation = 0;

const currentApi = (): AdminApi => {
  if (!api) throw new Error('not signed in');
  return api;
};

const overview = new OverviewView();
const control = new ControlView(currentApi, (job) => onSummary(job));
const checkpointsView = new CheckpointsView(currentApi);
const creditView = new CreditView(currentApi, (err) => handleApiError(err));
new NewJobView(currentApi, (job) => {
  jobs = [...jobs.filter((j) => j.id !== job.id), job];
  renderJobPicker();
  selectJob(job.id);
  location.hash = '#overview';
});

function currentJob(): AdminJobSummary | undefined {
  return jobs.find((j) => j.id === jobId);
}

// ---- views and routing ----

function currentView(): View {
  const v = location.hash.slice(1);
  return (VIEWS as readonly string[]).includes(v) ? (v as View) : 'overview';
}

function showView(): void {
  const view = currentView();
  for (const el of document.querySelectorAll<HTMLElement>('section.view')) {
    show(el, el.dataset.view === view);
  }
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav.tabs a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.body.dataset.view = view;
  if (view === 'overview') overview.shown();
}

function renderJobPicker(): void {
  const select = $('job-select') as HTMLSelectElement;
  const firstRunning = jobs.find((j) => j.state !== 'stopped');
  const options = jobs.map((j) =>
    h(
      'option',
      { value: j.id, selected: j.id === jobId },
      `${j.name} (${j.id}, ${j.state}${j === firstRunning ? ', takes new volunteers' : ''})`,
    ),
  );
  // Rebuilding the options while the list is open would close it; only do it on a change.
  const signature = options.map((o) => o.textContent).join('\n');
  if (select.dataset.signature !== signature) {
    replaceChildren(select, options);
    select.dataset.signature = signature;
  }
  if (jobId) select.value = jobId;
}

function onSummary(job: AdminJobSummary): void {
  jobs = jobs.some((j) => j.id === job.id)
    ? jobs.map((j) => (j.id === job.id ? job : j))
    : [...jobs, job];
  renderJobPicker();
  if (job.id !== jobId) return;
  const badge = $('job-state');
  setText(badge, job.state);
  badge.className = `badge job-${job.state}`;
  overview.renderSummary(job);
  control.render(job);
  document.body.dataset.jobState = job.state;
}

function onSnapshot(s: AdminJobSnapshot): void {
  if (s.job.id !== jobId) return;
  onSummary(s.job);
  renderWorkers(s, (worker) => {
    currentApi()
      .post(
        `/api/admin/jobs/${encodeURIComponent(s.job.id)}/workers/${encodeURIComponent(worker)}/ban`,
      )
      .catch((err: unknown) => handleApiError(err));
  });
  renderLinks(s);
}

function renderHistory(): void {
  const job = currentJob();
  overview.renderHistory(history, job ? job.model.kind !== 'kmeans' : true);
}

function renderCheckpoints(): void {
  const job = currentJob();
  if (job) checkpointsView.render(job, checkpoints);
}

// ---- data ----

async function loadJobData(id: string, gen: number): Promise<void> {
  const path = `/api/admin/jobs/${encodeURIComponent(id)}`;
  const [metrics, c] = await Promise.all([
    currentApi().get<AdminMetricsHistory>(`${path}/metrics`),
    currentApi().get<{ checkpoints: AdminCheckpoint[] }>(`${path}/checkpoints`),
  ]);
  if (gen !== generation) return;
  history = [...metrics.history];
  checkpoints = c.checkpoints;
  document.body.dataset.historyRecords = String(history.length);
  renderHistory();
  renderCheckpoints();
}

function watch(id: string): void {
  const gen = generation;
  socket?.timeout(DEFAULT_REQUEST_TIMEOUT_MS).emit('watch', { jobId: id }, (err, reply) => {
    if (gen !== generation) return;
    // A timeout while disconnected is retried by the reconnect handler (onLiveStatus).
    if (err) setText($('tagline'), `The server did not answer in time; retrying on reconnect.`);
    else if (reply.ok) onSnapshot(reply.snapshot);
    else setText($('tagline'), `Cannot watch ${id}: ${reply.message}`);
  });
  loadJobData(id, gen).catch((err: unknown) => handleApiError(err));
}

function selectJob(id: string): void {
  if (id === jobId) return;
  generation++;
  jobId = id;
  sessionStorage.setItem(JOB_KEY, id);
  history = [];
  checkpoints = [];
  renderJobPicker();
  const job = currentJob();
  if (job) onSummary(job);
  renderHistory();
  renderCheckpoints();
  watch(id);
}

function onJobs(list: readonly AdminJobSummary[]): void {
  jobs = list;
  const remembered = sessionStorage.getItem(JOB_KEY);
  const wanted =
    (jobId && list.some((j) => j.id === jobId) && jobId) ||
    (remembered && list.some((j) => j.id === remembered) && remembered) ||
    list.find((j) => j.state !== 'stopped')?.id ||
    list[0]?.id;
  renderJobPicker();
  if (wanted && wanted !== jobId) selectJob(wanted);
  const job = currentJob();
  if (job) onSummary(job);
}

function onRecord(message: { jobId: string; record: AdminMetricsRecord }): void {
  if (message.jobId !== jobId) return;
  history.push(message.record);
  document.body.dataset.historyRecords = String(history.length);
  renderHistory();
  if (message.record.checkpoint !== undefined) {
    const gen = generation;
    currentApi()
      .get<{ checkpoints: AdminCheckpoint[] }>(
        `/api/admin/jobs/${encodeURIComponent(message.jobId)}/checkpoints`,
      )
      .then((c) => {
        if (gen !== generation) return;
        checkpoints = c.checkpoints;
        renderCheckpoints();
      })
      .catch((err: unknown) => handleApiError(err));
  }
}

function onLiveStatus(status: LiveStatus): void {
  const el = $('live');
  el.className = `live live-${status.kind}`;
  if (status.kind === 'live') {
    setText(el, 'live');
    // After a reconnect, records written meanwhile were missed: watch again and reload history.
    if (jobId) watch(jobId);
  } else if (status.kind === 'reconnecting') {
    setText(el, 'reconnecting…');
    el.title = status.reason;
  } else {
    signOut(`The server refused the token: ${status.message}`);
  }
}

function handleApiError(err: unknown): void {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    signOut(`The server refused the token: ${err.message}`);
    return;
  }
  setText($('tagline'), `Error: ${(err as Error).message}`);
}

// ---- session ----

function startConsole(token: string): void {
  api = new AdminApi(token);
  show($('login-card'), false);
  show($('console'), true);
  show($('session'), true);
  setText($('tagline'), 'Live view of this server’s jobs.');
  document.body.dataset.signedIn = 'true';
  showView();
  socket = connectLive(token, onLiveStatus);
  socket.on('jobs', onJobs);
  socket.on('snapshot', onSnapshot);
  socket.on('record', onRecord);
  socket.on('refused', (e) => setText($('tagline'), `Refused: ${e.message}`));
  creditView.start();
}

function signOut(message = ''): void {
  sessionStorage.removeItem(TOKEN_KEY);
  creditView.stop();
  socket?.disconnect();
  socket = null;
  api = null;
  jobId = null;
  generation++;
  show($('console'), false);
  show($('session'), false);
  show($('login-card'), true);
  document.body.dataset.signedIn = 'false';
  setText($('tagline'), 'Sign in to watch and steer this server’s jobs.');
  setText($('login-error'), message);
  ($('token') as HTMLInputElement).value = '';
  $('token').focus();
}

async function signIn(token: string): Promise<void> {
  const error = $('login-error');
  setText(error, '');
  if (!token) {
    setText(error, 'Enter the admin token.');
    return;
  }
  const button = $('sign-in') as HTMLButtonElement;
  button.disabled = true;
  try {
    await new AdminApi(token).get('/api/admin/session');
    sessionStorage.setItem(TOKEN_KEY, token);
    startConsole(token);
  } catch (err) {
    const e = err as ApiError;
    setText(
      error,
      e.status === 403
        ? 'That token is wrong. Check the token printed by meshgrad serve.'
        : e.status === 401
          ? 'The server needs the admin token.'
          : e.message,
    );
    $('token').setAttribute('aria-invalid', 'true');
  } finally {
    button.disabled = false;
  }
}

function init(): void {
  window.addEventListener('hashchange', showView);
  ($('job-select') as HTMLSelectElement).addEventListener('change', (e) =>
    selectJob((e.target as HTMLSelectElement).value),
  );
  $('sign-out').addEventListener('click', () => signOut());
  ($('login-form') as HTMLFormElement).addEventListener('submit', (e) => {
    e.preventDefault();
    void signIn(($('token') as HTMLInputElement).value.trim());
  });
  $('token').addEventListener('input', () => $('token').removeAttribute('aria-invalid'));
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    // Check it again: the server may have a new token since this tab signed in.
    void signIn(saved);
  } else {
    document.body.dataset.signedIn = 'false';
    $('token').focus();
  }
}

init();
