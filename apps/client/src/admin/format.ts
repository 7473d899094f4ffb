/**
 * Text for numbers, devices and models as the console shows them. Pure functions (no DOM), so
 * the console and its tests agree on what a cell says.
 */
import type { DeviceInfo, Encoding, ModelSpecPayload, WorkerSettings } from '@meshgrad/core';
import { bytesPerValue, describeModel, ENCODINGS } from '@meshgrad/core';

const en = (digits: number) =>
  new Intl.NumberFormat('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

/** Integers with thousands separators: `12,345`. */
export function formatCount(n: number): string {
  return en(0).format(Math.round(n));
}

/** Rates such as samples/s: no decimals from 100 up, one below. */
export function formatRate(n: number): string {
  return n >= 100 ? formatCount(n) : en(1).format(n);
}

/** A loss or similar real value: four significant digits. */
export function formatLoss(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n.toPrecision(4);
}

/**
 * An accuracy in [0, 1] as a percentage with two decimals: `91.35%`. Test sets of up to 10,000
 * rows give accuracies on a 0.01% grid, so the text is exact for them.
 */
export function formatAccuracy(a: number | undefined): string {
  if (a === undefined || !Number.isFinite(a)) return '–';
  return `${(a * 100).toFixed(2)}%`;
}

/** A fraction as a percentage with one decimal: `42.5%`. */
export function formatShare(f: number): string {
  return `${(f * 100).toFixed(1)}%`;
}

/** Bytes/s with a binary unit: `1.2 MiB/s`. */
export function formatBytesPerSec(n: number): string {
  return `${formatBytes(n)}/s`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u] as string}`;
}

/** Milliseconds as `850 ms`, `12 s`, `3 min`, `2.5 h`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 1_000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** Local wall-clock time with seconds, e.g. `14:03:27`, or date and time when not today. */
export function formatTime(iso: string, now = new Date()): string {
  const d = new Date(iso);
  const time = d.toLocaleTimeString('en-GB', { hour12: false });
  return d.toDateString() === now.toDateString()
    ? time
    : `${d.toLocaleDateString('en-CA')} ${time}`;
}

export function modelText(m: ModelSpecPayload): string {
  return describeModel(m);
}

/** The paper's knobs in its own notation (DESIGN §3): `b=256 · m=1 · f32`. */
export function settingsText(s: WorkerSettings): string {
  return `b=${s.communicationPeriod} · m=${s.blocksPerMessage} · ${s.encoding}`;
}

/** Bits per value of an encoding, for charting it. */
export function encodingBits(e: Encoding): number {
  return bytesPerValue(e) * 8;
}

/** The most precise encoding whose values fit in `bits` (a chart's axis tick back to a name). */
export function encodingFromBits(bits: number): Encoding {
  return ENCODINGS.find((e) => encodingBits(e) <= bits) ?? 'int8';
}

/** The adapter a worker reported, or why it has none. */
export function adapterText(d: DeviceInfo): string {
  if (!d.adapter) return 'no WebGPU adapter';
  const a = d.adapter;
  const name = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ');
  return `${name || 'unnamed adapter'}${d.software ? ' (software)' : ''}`;
}

/** Browser and OS from a user agent, e.g. `Chrome 131 on Linux`; the raw string if unknown. */
export function browserText(userAgent: string): string {
  const browser =
    /(Firefox|Edg|OPR|HeadlessChrome|Chrome|Version)\/(\d+)/.exec(userAgent) ??
    /(Safari)\/(\d+)/.exec(userAgent);
  const os = /(Windows|Android|iPhone|iPad|Mac OS X|CrOS|Linux)/.exec(userAgent);
  if (!browser) return userAgent.slice(0, 60) || 'unknown browser';
  const names: Record<string, string> = {
    Edg: 'Edge',
    OPR: 'Opera',
    Version: 'Safari',
    HeadlessChrome: 'Headless Chrome',
  };
  const name = names[browser[1] as string] ?? (browser[1] as string);
  const osName = os?.[1] === 'Mac OS X' ? 'macOS' : os?.[1] === 'CrOS' ? 'ChromeOS' : os?.[1];
  return `${name} ${browser[2] as string}${osName ? ` on ${osName}` : ''}`;
}

/** A worker id shortened for dense places (graph labels): `w-3f2a…`. */
export function shortId(id: string): string {
  return id.length > 8 ? `${id.slice(0, 6)}…` : id;
}
