import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyLogLine } from './log-pretty.ts';

export type { Logger };

/** How log lines are written: `json` (one pino object per line) or `pretty` (for people). */
export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where a logger writes; `process.stdout` by default. */
export interface LogOutput {
  write(text: string): unknown;
  /** True on a terminal: the default format is then `pretty`. */
  readonly isTTY?: boolean;
}

export interface LoggerOptions {
  /** Default: `pretty` when `output` is a terminal, `json` otherwise (a file, a pipe, a collector). */
  readonly format?: LogFormat;
  readonly output?: LogOutput;
}

/**
 * Structured logs (pino). Level from `level`, else `MESHGRAD_LOG_LEVEL` or `LOG_LEVEL`, default
 * `info`; tests pass `silent`. JSON lines stay the format for machines; a person at a terminal
 * gets one readable line per entry instead (the same fields, formatted by log-pretty.ts).
 */
export function createLogger(level?: string, options: LoggerOptions = {}): Logger {
  const output: LogOutput = options.output ?? process.stdout;
  const format = options.format ?? (output.isTTY === true ? 'pretty' : 'json');
  const colour = format === 'pretty' && output.isTTY === true && !process.env.NO_COLOR;
  const destination: DestinationStream = {
    write:
      format === 'json'
        ? (line: string) => void output.write(line)
        : (line: string) => void output.write(prettyLogLine(line, colour)),
  };
  return pino(
    {
      name: 'meshgrad',
      level: level ?? process.env.MESHGRAD_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info',
    },
    destination,
  );
}
