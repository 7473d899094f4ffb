/**
 * The credit table: every volunteer identity with its credit, spot checks, trust and flags
 * (DESIGN §9), from `/api/admin/credit`. Names and teams are volunteers' text: text nodes only.
 */
import { formatFlops, type AdminCreditIdentity, type AdminCreditReport } from '@meshgrad/core';
import type { AdminApi } from '../api.ts';
import { $, h, replaceChildren, setText, show } from '../dom.ts';
import { formatCount, formatTime } from '../format.ts';

/** How often the table is fetched again while the console is open (ms). */
const CREDIT_REFRESH_MS = 5_000;

function row(r: AdminCreditIdentity): HTMLTableRowElement {
  const jobs = Object.entries(r.perJob);
  return h(
    'tr',
    { 'data-identity': r.id, 'data-flagged': r.flags.length > 0 },
    h(
      'td',
      {},
      h('code', { class: 'identity-id' }, r.id),
      h('span', { class: 'sub' }, `first seen ${formatTime(r.firstSeen)}`),
    ),
    h(
      'td',
      {},
      r.name ?? '–',
      r.team !== undefined ? h('span', { class: 'sub' }, `team ${r.team}`) : null,
    ),
    h(
      'td',
      { class: 'num credit' },
      formatFlops(r.credit),
      h('span', { class: 'sub' }, `${formatCount(r.samples)} samples`),
    ),
    h(
      'td',
      {},
      ...jobs.map(([job, l]) => h('span', { class: 'sub' }, `${job}: ${formatFlops(l.credit)}`)),
    ),
    h('td', { class: 'num checks' }, `${r.checksPassed} passed · ${r.checksFailed} failed`),
    h('td', { class: 'num trust' }, r.trust.toFixed(2)),
    h(
      'td',
      { class: 'flags' },
      r.flags.length === 0
        ? h('span', { class: 'badge worker-training' }, 'ok')
        : h('span', { class: 'badge worker-silent' }, 'flagged'),
      ...r.flags.map((f) => h('span', { class: 'sub flag' }, f)),
      r.inflatedReports > 0
        ? h('span', { class: 'sub' }, `${r.inflatedReports} inflated reports`)
        : null,
    ),
    h('td', {}, formatTime(r.lastSeen)),
  );
}

export class CreditView {
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly api: () => AdminApi,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Fetches now and every `CREDIT_REFRESH_MS` until `stop`. */
  start(): void {
    this.stop();
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), CREDIT_REFRESH_MS);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  async refresh(): Promise<void> {
    try {
      this.render(await this.api().get<AdminCreditReport>('/api/admin/credit'));
    } catch (err) {
      this.stop();
      this.onError(err);
    }
  }

  private render(report: AdminCreditReport): void {
    const table = $('credit-table') as HTMLTableElement;
    const body = table.tBodies[0] as HTMLTableSectionElement;
    replaceChildren(body, report.identities.map(row));
    show(table, report.identities.length > 0);
    show($('credit-empty'), report.identities.length === 0);
    setText($('tab-credit'), String(report.total));
    const shown = report.identities.length;
    setText(
      $('credit-shown'),
      shown < report.total ? `The ${shown} with most credit of ${report.total} identities.` : '',
    );
  }
}
