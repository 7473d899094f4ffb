/**
 * One pino JSON line as one line a person reads: `12:04:31.207 INFO  message  key=value …`, an
 * error's stack indented below it. Written here rather than taken from pino-pretty: a few dozen
 * lines, no worker thread, and nothing for the bundle to resolve at run time.
 */

/** pino's numeric levels and the names shown for them, padded to one width. */
const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};

/** ANSI colours by level, used on a terminal only. */
const LEVEL_COLOURS: Readonly<Record<number, string>> = {
  10: '\x1b[90m',
  20: '\x1b[36m',
  30: '\x1b[32m',
  40: '\x1b[33m',
  50: '\x1b[31m',
  60: '\x1b[35m',
};
const RESET = '\x1b[0m';

/** Fields every line has, shown in fixed places or not at all (the same on every line). */
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'v']);

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

function clock(time: unknown): string {
  if (typeof time !== 'number') return '--:--:--.---';
  return new Date(time).toISOString().slice(11, 23);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Formats one line pino wrote; a line that is not a JSON object passes through unchanged. */
export function prettyLogLine(line: string, colour = false): string {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (!isRecord(entry)) return line;
  const level = typeof entry.level === 'number' ? entry.level : 30;
  const name = LEVEL_NAMES[level] ?? String(level).padEnd(5);
  const shownLevel = colour ? `${LEVEL_COLOURS[level] ?? ''}${name}${RESET}` : name;
  const fields: string[] = [];
  let stack = '';
  for (const [key, value] of Object.entries(entry)) {
    if (OMITTED.has(key)) continue;
    if (key === 'err' && isRecord(value)) {
      fields.push(`err=${formatValue(value.message ?? value.type)}`);
      if (typeof value.stack === 'string') {
        stack = value.stack
          .split('\n')
          .map((l) => `    ${l}`)
          .join('\n');
      }
      continue;
    }
    fields.push(`${key}=${formatValue(value)}`);
  }
  const msg = typeof entry.msg === 'string' ? entry.msg : '';
  const head = [clock(entry.time), shownLevel, msg].join(' ');
  return `${fields.length ? `${head}  ${fields.join(' ')}` : head}\n${stack ? `${stack}\n` : ''}`;
}
