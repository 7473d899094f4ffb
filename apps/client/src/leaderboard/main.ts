/**
 * The public leaderboard (DESIGN §9): top volunteers and teams from `/api/credit`, overall or
 * for one job. Names and teams are what volunteers typed: they reach the page as text nodes only.
 */
import { formatFlops, type CreditBoard, type CreditEntry, type CreditReport } from '@meshgrad/core';

/** How often the board is fetched again (ms). */
const REFRESH_MS = 10_000;

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

function cell(value: string, numeric = false, title?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = value;
  if (numeric) td.className = 'num';
  if (title !== undefined) td.title = title;
  return td;
}

function volunteerRow(e: CreditEntry): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.dataset.identity = e.id;
  tr.append(
    cell(String(e.rank), true),
    cell(e.name ?? `anonymous ${e.id.slice(2, 8)}`, false, e.id),
    cell(e.team ?? '–'),
    cell(formatFlops(e.credit), true),
    cell(e.samples.toLocaleString('en-US'), true),
  );
  return tr;
}

function teamRow(e: CreditEntry): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.append(
    cell(String(e.rank), true),
    cell(e.id),
    cell(String(e.members ?? 0), true),
    cell(formatFlops(e.credit), true),
    cell(e.samples.toLocaleString('en-US'), true),
  );
  return tr;
}

function empty(columns: number, text: string): HTMLTableRowElement {
  const tr = document.createElement('tr');
  const td = cell(text);
  td.colSpan = columns;
  td.className = 'hint';
  tr.append(td);
  return tr;
}

function render(board: CreditBoard | undefined): void {
  const volunteers = board?.volunteers ?? [];
  const teams = board?.teams ?? [];
  $<HTMLTableElement>('volunteers-table').tBodies[0]?.replaceChildren(
    ...(volunteers.length ? volunteers.map(volunteerRow) : [empty(5, 'No credit yet.')]),
  );
  $<HTMLTableElement>('teams-table').tBodies[0]?.replaceChildren(
    ...(teams.length ? teams.map(teamRow) : [empty(5, 'No team yet.')]),
  );
}

/** Keeps the job choices in step with the report, without resetting the current choice. */
function renderChoices(report: CreditReport): void {
  const select = $<HTMLSelectElement>('board-select');
  const have = new Set([...select.options].map((o) => o.value));
  for (const job of Object.keys(report.jobs)) {
    if (have.has(job)) continue;
    const option = document.createElement('option');
    option.value = job;
    option.textContent = `job ${job}`;
    select.append(option);
  }
}

async function refresh(): Promise<void> {
  const status = $('board-status');
  try {
    const res = await fetch('/api/credit', { cache: 'no-store' });
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const report = (await res.json()) as CreditReport;
    renderChoices(report);
    const job = $<HTMLSelectElement>('board-select').value;
    render(job ? report.jobs[job] : report.overall);
    status.textContent = `${report.identities.toLocaleString('en-US')} volunteers hold credit. Updated ${new Date().toLocaleTimeString()}.`;
    document.body.dataset.loaded = 'true';
  } catch (err) {
    status.textContent = `Could not load the leaderboard: ${(err as Error).message}`;
  }
}

$<HTMLSelectElement>('board-select').addEventListener('change', () => void refresh());
void refresh();
setInterval(() => void refresh(), REFRESH_MS);
