/**
 * The links view: every peer link a worker reports (`stats.links`), as a table and as a small
 * graph whose edges are the server's neighbour assignments, coloured and thickened where a link
 * reports measurements.
 */
import type { LinkStats } from '@meshgrad/core';
import type { AdminJobSnapshot } from '@meshgrad/core';
import { $, h, replaceChildren, setText, show } from '../dom.ts';
import { formatBytes, formatBytesPerSec, formatCount, formatShare, shortId } from '../format.ts';

const SVG_NS = 'http://www.w3.org/2000/svg';
const SIZE = 320;
const NODE_RADIUS = 16;
const COLORS = {
  direct: '#1f8a4c',
  relayed: '#e8710a',
  assigned: '#b8bfcc',
  node: { training: '#2f6fed', paused: '#b26a00', idle: '#8a93a3', silent: '#c62828' },
} as const;

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  ...children: (SVGElement | string)[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

interface LinkRow {
  readonly from: string;
  readonly link: LinkStats;
}

function linkRows(snapshot: AdminJobSnapshot): LinkRow[] {
  return snapshot.workers.flatMap((w) => w.links.map((link) => ({ from: w.id, link })));
}

function tableRow({ from, link: l }: LinkRow): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-from': from, 'data-to': l.peer },
    h('td', {}, h('code', {}, from)),
    h('td', {}, h('code', {}, l.peer)),
    h(
      'td',
      {},
      h(
        'span',
        { class: `badge link-${l.relayed ? 'relayed' : 'direct'}` },
        l.relayed ? 'relayed' : 'direct',
      ),
    ),
    h('td', { class: 'num' }, formatBytesPerSec(l.goodputBytesPerSec)),
    h('td', { class: 'num' }, l.rttMs === undefined ? '–' : `${l.rttMs.toFixed(0)} ms`),
    h('td', { class: 'num' }, formatBytes(l.backlogBytes)),
    h('td', { class: 'num' }, `${formatCount(l.blocksSent)} / ${formatCount(l.blocksReceived)}`),
    h('td', { class: 'num' }, formatCount(l.overwritten)),
    h('td', { class: 'num' }, l.acceptanceRate === undefined ? '–' : formatShare(l.acceptanceRate)),
  );
}

/** Edge width from goodput: 1.5 px at nothing, up to 7 px at 10 MB/s and beyond (log scale). */
function edgeWidth(bytesPerSec: number): number {
  const t = Math.min(1, Math.log10(1 + bytesPerSec) / 7);
  return 1.5 + 5.5 * t;
}

function renderGraph(snapshot: AdminJobSnapshot, rows: readonly LinkRow[]): void {
  const root = $('links-graph') as unknown as SVGSVGElement;
  root.setAttribute('viewBox', `0 0 ${SIZE} ${SIZE}`);
  const workers = snapshot.workers;
  const n = workers.length;
  const centre = SIZE / 2;
  const radius = n <= 1 ? 0 : centre - NODE_RADIUS - 28;
  const pos = new Map<string, { x: number; y: number }>();
  workers.forEach((w, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(n, 1);
    pos.set(w.id, { x: centre + radius * Math.cos(angle), y: centre + radius * Math.sin(angle) });
  });
  const parts: SVGElement[] = [];
  // Assigned neighbour pairs, once per pair.
  const pairs = new Set<string>();
  for (const w of workers) {
    for (const peer of w.neighbours) {
      const key = [w.id, peer].sort().join('|');
      const a = pos.get(w.id);
      const b = pos.get(peer);
      if (pairs.has(key) || !a || !b) continue;
      pairs.add(key);
      parts.push(
        svg('line', {
          x1: a.x,
          y1: a.y,
          x2: b.x,
          y2: b.y,
          stroke: COLORS.assigned,
          'stroke-width': 1.5,
          'stroke-dasharray': '4 4',
        }),
      );
    }
  }
  // Measured links on top, one per direction, offset so both directions show.
  for (const { from, link } of rows) {
    const a = pos.get(from);
    const b = pos.get(link.peer);
    if (!a || !b) continue;
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    const ox = (-dy / len) * 3;
    const oy = (dx / len) * 3;
    parts.push(
      svg(
        'line',
        {
          x1: a.x + ox,
          y1: a.y + oy,
          x2: b.x + ox,
          y2: b.y + oy,
          stroke: link.relayed ? COLORS.relayed : COLORS.direct,
          'stroke-width': edgeWidth(link.goodputBytesPerSec),
          'stroke-linecap': 'round',
        },
        svg('title', {}, `${from} → ${link.peer}: ${formatBytesPerSec(link.goodputBytesPerSec)}`),
      ),
    );
  }
  for (const w of workers) {
    const p = pos.get(w.id);
    if (!p) continue;
    parts.push(
      svg(
        'g',
        { class: 'node' },
        svg('circle', { cx: p.x, cy: p.y, r: NODE_RADIUS, fill: COLORS.node[w.state] }),
        svg(
          'text',
          { x: p.x, y: p.y + NODE_RADIUS + 14, 'text-anchor': 'middle', class: 'node-label' },
          shortId(w.id),
        ),
        svg('title', {}, `${w.id} (${w.state})`),
      ),
    );
  }
  if (n === 0) {
    parts.push(
      svg(
        'text',
        { x: centre, y: centre, 'text-anchor': 'middle', class: 'node-label' },
        'no workers',
      ),
    );
  }
  root.replaceChildren(...parts);
}

export function renderLinks(snapshot: AdminJobSnapshot): void {
  const rows = linkRows(snapshot);
  const table = $('links-table') as HTMLTableElement;
  replaceChildren(table.tBodies[0] as HTMLTableSectionElement, rows.map(tableRow));
  show(table, rows.length > 0);
  const empty = $('links-empty');
  show(empty, rows.length === 0);
  setText(
    empty,
    snapshot.workerCount === 0
      ? 'No workers are connected, so there are no links.'
      : 'No link statistics reported yet. Workers currently exchange blocks through the server ' +
          'relay and report no per-link measurements; this table fills in once peer-to-peer ' +
          'links report goodput, RTT and backlog. The graph shows the neighbour assignments.',
  );
  setText($('tab-links'), rows.length > 0 ? String(rows.length) : '');
  renderGraph(snapshot, rows);
  const relayed = rows.filter((r) => r.link.relayed).length;
  const goodput = rows.reduce((sum, r) => sum + r.link.goodputBytesPerSec, 0);
  const pairs = new Set(
    snapshot.workers.flatMap((w) => w.neighbours.map((p) => [w.id, p].sort().join('|'))),
  ).size;
  replaceChildren($('links-summary'), [
    h('dt', {}, 'Workers'),
    h(
      'dd',
      {},
      snapshot.workers.length < snapshot.workerCount
        ? `${snapshot.workerCount} (the links of ${snapshot.workers.length} listed)`
        : String(snapshot.workerCount),
    ),
    h('dt', {}, 'Neighbour pairs'),
    h('dd', {}, String(pairs)),
    h('dt', {}, 'Links reporting'),
    h(
      'dd',
      {},
      rows.length === 0
        ? 'none'
        : `${rows.length} (${rows.length - relayed} direct, ${relayed} relayed)`,
    ),
    h('dt', {}, 'Total goodput'),
    h('dd', {}, rows.length === 0 ? '–' : formatBytesPerSec(goodput)),
  ]);
  const legend = $('links-legend');
  replaceChildren(legend, [
    h('span', { class: 'key assigned' }, 'assigned neighbours'),
    h('span', { class: 'key direct' }, 'direct link'),
    h('span', { class: 'key relayed' }, 'relayed link'),
    h('span', { class: 'sub' }, 'Line width grows with goodput.'),
  ]);
}
