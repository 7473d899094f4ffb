/**
 * Minimal SVG charts (no dependency): grouped horizontal bars and line charts, in the page's
 * default font, readable on light and dark backgrounds alike.
 */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#e15759',
  '#76b7b2',
  '#b07aa1',
  '#edc948',
  '#9c755f',
];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (x: number) =>
  Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2);

export interface BarGroup {
  readonly label: string;
  readonly bars: readonly {
    readonly label: string;
    readonly value: number | null;
    readonly cap?: number;
    readonly highlight?: boolean;
  }[];
}

/**
 * Horizontal bars, one group per profile. A null value is drawn to its cap, hatched and
 * labelled "> cap" (did not reach the target before the run was cut off).
 */
export function barChart(title: string, unit: string, groups: readonly BarGroup[]): string {
  const rowH = 16;
  const labelW = 190;
  const plotW = 420;
  const max = Math.max(1e-9, ...groups.flatMap((g) => g.bars.map((b) => b.value ?? b.cap ?? 0)));
  let y = 40;
  const parts: string[] = [];
  for (const g of groups) {
    parts.push(`<text x="8" y="${y + 12}" font-weight="bold">${esc(g.label)}</text>`);
    y += 20;
    for (const b of g.bars) {
      const value = b.value ?? b.cap ?? 0;
      const w = (value / max) * plotW;
      const fill = b.highlight ? PALETTE[1] : PALETTE[0];
      const style = b.value === null ? `fill="url(#hatch)" stroke="${fill}"` : `fill="${fill}"`;
      parts.push(
        `<text x="${labelW - 6}" y="${y + 12}" text-anchor="end">${esc(b.label)}</text>`,
        `<rect x="${labelW}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 4}" ${style}/>`,
        `<text x="${labelW + w + 4}" y="${y + 12}">${b.value === null ? '&gt; ' + fmt(value) : fmt(value)} ${esc(unit)}</text>`,
      );
      y += rowH;
    }
    y += 8;
  }
  const width = labelW + plotW + 90;
  return svgDocument(width, y + 10, title, parts.join('\n'));
}

export interface Series {
  readonly label: string;
  readonly points: readonly { readonly x: number; readonly y: number }[];
  readonly dashed?: boolean;
}

/** A line chart; `logY` draws y on a log scale. */
export function lineChart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: readonly Series[],
  options: {
    readonly logX?: boolean;
    readonly logY?: boolean;
    readonly marks?: readonly { readonly x: number; readonly label: string }[];
  } = {},
): string {
  const W = 640;
  const H = 340;
  const left = 70;
  const right = 170;
  const top = 40;
  const bottom = 50;
  const all = series
    .flatMap((s) => s.points)
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const tx = (v: number) => (options.logX ? Math.log10(v) : v);
  const ty = (v: number) => (options.logY ? Math.log10(Math.max(v, 1e-12)) : v);
  const xs = all.map((p) => tx(p.x));
  const ys = all.map((p) => ty(p.y));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (!options.logY) y0 = Math.min(0, y0);
  if (y1 === y0) y1 = y0 + 1;
  const px = (v: number) => left + ((tx(v) - x0) / Math.max(x1 - x0, 1e-12)) * (W - left - right);
  const py = (v: number) => H - bottom - ((ty(v) - y0) / (y1 - y0)) * (H - top - bottom);
  const parts: string[] = [
    `<line x1="${left}" y1="${H - bottom}" x2="${W - right}" y2="${H - bottom}" stroke="currentColor"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${H - bottom}" stroke="currentColor"/>`,
    `<text x="${(left + W - right) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="16" y="${(top + H - bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(top + H - bottom) / 2})">${esc(yLabel)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    const value = options.logY ? 10 ** v : v;
    const y = H - bottom - ((v - y0) / (y1 - y0)) * (H - top - bottom);
    parts.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${fmt(value)}</text>`);
    const xv = x0 + ((x1 - x0) * i) / 4;
    const xValue = options.logX ? 10 ** xv : xv;
    const x = left + ((xv - x0) / Math.max(x1 - x0, 1e-12)) * (W - left - right);
    parts.push(`<text x="${x}" y="${H - bottom + 16}" text-anchor="middle">${fmt(xValue)}</text>`);
  }
  for (const mark of options.marks ?? []) {
    const x = px(mark.x);
    parts.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${H - bottom}" stroke="currentColor" stroke-dasharray="2 3"/>`,
      `<text x="${x + 4}" y="${top + 10}">${esc(mark.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (pts.length) {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.5"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${pts
          .map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`)
          .join(' ')}"/>`,
      );
    }
    const ly = top + 14 * i;
    parts.push(
      `<line x1="${W - right + 10}" y1="${ly}" x2="${W - right + 28}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      `<text x="${W - right + 32}" y="${ly + 4}">${esc(s.label)}</text>`,
    );
  });
  return svgDocument(W, H, title, parts.join('\n'));
}

function svgDocument(width: number, height: number, title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11" fill="currentColor" style="color:#333;background:#fff">
<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#999" stroke-width="2"/></pattern></defs>
<title>${esc(title)}</title>
<text x="8" y="20" font-size="14" font-weight="bold">${esc(title)}</text>
${body}
</svg>
`;
}
