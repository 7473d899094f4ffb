import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stdout (pino). Level from `MESHGRAD_LOG_LEVEL` or `LOG_LEVEL`,
 * default `info`; tests pass `silent`.
 */
export function createLogger(level?: string): Logger {
  return pino({
    name: 'meshgrad',
    level: level ?? process.env.MESHGRAD_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info',
  });
}
