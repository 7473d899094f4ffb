/** The workers table: every volunteer of the watched job as it last reported. */
import type { AdminJobSnapshot, AdminWorker } from '@meshgrad/core';
import { $, h, replaceChildren, setText, show } from '../dom.ts';
import {
  adapterText,
  browserText,
  formatBytesPerSec,
  formatCount,
  formatDuration,
  formatRate,
  formatShare,
  formatTime,
  settingsText,
} from '../format.ts';

const STATE_TEXT: Record<AdminWorker['state'], string> = {
  training: 'training',
  paused: 'paused',
  idle: 'idle',
  silent: 'not reporting',
};

/** Why the automatic balancer chose a worker's settings: its rule, budget and capacity. */
function balanceText(b: NonNullable<AdminWorker['balance']>): string {
  const capacity =
    b.capacityBytesPerSec === null ? 'unknown' : formatBytesPerSec(b.capacityBytesPerSec);
  return `${b.reason}${b.congested ? ' (congested)' : ''} · budget ${formatBytesPerSec(b.budgetBytesPerSec)} · capacity ${capacity}`;
}

/** What the worker's neighbours reported of its messages (the evidence behind a suspicion). */
function trustCell(w: AdminWorker, onBan: (workerId: string) => void): HTMLTableCellElement {
  const s = w.suspicion;
  if (!s) return h('td', { class: 'trust' }, '–');
  const evidence =
    `rejected by ${s.rejecting} of ${s.reporters} neighbours · ` +
    `${formatCount(s.rejected)} messages refused, ${formatCount(s.received)} blocks taken`;
  if (!s.suspected) return h('td', { class: 'trust' }, h('span', { class: 'sub' }, evidence));
  const ban = h('button', { type: 'button', class: 'danger ban', 'data-ban': w.id }, 'Ban');
  ban.addEventListener('click', () => {
    ban.disabled = true;
    onBan(w.id);
  });
  return h(
    'td',
    { class: 'trust' },
    h('span', { class: 'badge worker-suspected' }, 'suspected'),
    h('span', { class: 'sub' }, evidence),
    ban,
  );
}

function row(
  w: AdminWorker,
  sync: boolean,
  onBan: (workerId: string) => void,
): HTMLTableRowElement {
  const d = w.device;
  return h(
    'tr',
    { 'data-worker': w.id, 'data-state': w.state },
    h(
      'td',
      {},
      h('code', { class: 'worker-id' }, w.id),
      h('span', { class: 'sub' }, `shard ${w.shard} · joined ${formatTime(w.joinedAt)}`),
    ),
    h(
      'td',
      { title: d.userAgent },
      h('span', { class: 'device' }, adapterText(d)),
      h('span', { class: 'sub' }, browserText(d.userAgent)),
    ),
    h(
      'td',
      { class: 'backend' },
      h('span', { class: `badge backend-${d.backend}` }, d.backend === 'webgpu' ? 'WebGPU' : 'CPU'),
      d.backendReason ? h('span', { class: 'sub' }, d.backendReason) : null,
    ),
    h('td', { class: 'num sps' }, formatRate(w.samplesPerSec)),
    h(
      'td',
      { class: 'num contribution' },
      formatCount(w.contributed),
      h('span', { class: 'sub' }, `${formatShare(w.share)} of all`),
    ),
    h(
      'td',
      {},
      // Sync mode exchanges no blocks: the server's rounds replace the settings.
      h('span', { class: 'settings' }, sync ? 'sync rounds' : settingsText(w.settings)),
      !sync && w.balance ? h('span', { class: 'sub balance' }, balanceText(w.balance)) : null,
    ),
    h(
      'td',
      { class: 'neighbours' },
      String(w.neighbours.length),
      w.neighbours.length > 0
        ? h('span', { class: 'sub' }, ...w.neighbours.map((n) => h('span', { class: 'peer' }, n)))
        : null,
    ),
    h(
      'td',
      { class: 'state' },
      h('span', { class: `badge worker-${w.state}` }, STATE_TEXT[w.state]),
      w.state === 'silent'
        ? h('span', { class: 'sub' }, `last report ${formatDuration(w.lastSeenMsAgo)} ago`)
        : null,
    ),
    trustCell(w, onBan),
  );
}

/** Renders the table; `onBan` bans a suspected worker (its button disables itself). */
export function renderWorkers(snapshot: AdminJobSnapshot, onBan: (workerId: string) => void): void {
  const table = $('workers-table') as HTMLTableElement;
  const body = table.tBodies[0] as HTMLTableSectionElement;
  const sync = snapshot.job.training?.mode === 'sync';
  replaceChildren(
    body,
    snapshot.workers.map((w) => row(w, sync, onBan)),
  );
  show(table, snapshot.workers.length > 0);
  show($('workers-empty'), snapshot.workerCount === 0);
  // A large job's snapshot lists one page of its workers (MAX_SNAPSHOT_WORKERS), suspects first.
  const more = $('workers-more');
  const listed = snapshot.workers.length;
  show(more, listed < snapshot.workerCount);
  setText(
    more,
    `Listing ${listed.toLocaleString('en')} of ${snapshot.workerCount.toLocaleString('en')} workers: ` +
      `suspects first, then the longest connected. The admin API pages through the rest ` +
      `(GET /api/admin/jobs/${snapshot.job.id}?offset=${snapshot.offset + listed}).`,
  );
  setText(
    $('tab-workers'),
    snapshot.suspectCount > 0
      ? `${snapshot.workerCount} · ${snapshot.suspectCount} suspected`
      : String(snapshot.workerCount),
  );
}
