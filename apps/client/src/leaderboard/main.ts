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

/** One column of a board: its heading and what each entry shows in it. */
interface Column {
  readonly heading: string;
  readonly numeric?: boolean;
  readonly cell: (e: CreditEntry) => HTMLTableCellElement;
}

const RANK: Column = { heading: '#', numeric: true, cell: (e) => cell(String(e.rank), true) };
const CREDIT: Column = {
  heading: 'Credit',
  numeric: true,
  cell: (e) => cell(formatFlops(e.credit), true),
};
const SAMPLES: Column = {
  heading: 'Samples',
  numeric: true,
  cell: (e) => cell(e.samples.toLocaleString('en-US'), true),
};

const VOLUNTEER_COLUMNS: readonly Column[] = [
  RANK,
  {
    heading: 'Volunteer',
    cell: (e) => cell(e.name ?? `anonymous ${e.id.slice(2, 8)}`, false, e.id),
  },
  { heading: 'Team', cell: (e) => cell(e.team ?? '–') },
  CREDIT,
  SAMPLES,
];

const TEAM_COLUMNS: readonly Column[] = [
  RANK,
  { heading: 'Team', cell: (e) => cell(e.id) },
  { heading: 'Members', numeric: true, cell: (e) => cell(String(e.members ?? 0), true) },
  CREDIT,
  SAMPLES,
];

/** Gives table `id` its header row and an empty body, once. */
function headTable(id: string, columns: readonly Column[]): void {
  const table = $<HTMLTableElement>(id);
  const tr = document.createElement('tr');
  for (const c of columns) {
    const th = document.createElement('th');
    th.textContent = c.heading;
    if (c.numeric) th.className = 'num';
    tr.append(th);
  }
  table.createTHead().append(tr);
  table.createTBody();
}

/**
 * Table `id`'s body: a row an entry, or `none` across all columns. With `identities`, each row
 * carries its entry's id as `data-identity`.
 */
function fill(
  id: string,
  columns: readonly Column[],
  entries: readonly CreditEntry[],
  none: string,
  identities = false,
): void {
  const rows = entries.map((e) => {
    const tr = document.createElement('tr');
    if (identities) tr.dataset.identity = e.id;
    tr.append(...columns.map((c) => c.cell(e)));
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement('tr');
    const td = cell(none);
    td.colSpan = columns.length;
    td.className = 'hint';
    tr.append(td);
    rows.push(tr);
  }
  $<HTMLTableElement>(id).tBodies[0]?.replaceChildren(...rows);
}

function render(board: CreditBoard | undefined): void {
  fill('volunteers-table', VOLUNTEER_COLUMNS, board?.volunteers ?? [], 'No credit yet.', true);
  fill('teams-table', TEAM_COLUMNS, board?.teams ?? [], 'No team yet.');
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

headTable('volunteers-table', VOLUNTEER_COLUMNS);
headTable('teams-table', TEAM_COLUMNS);
$<HTMLSelectElement>('board-select').addEventListener('change', () => void refresh());
void refresh();
setInterval(() => void refresh(), REFRESH_MS);
