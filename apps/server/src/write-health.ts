/**
 * The health of the server's durable writes (DESIGN §5): which kinds of file are failing to be
 * written, since when and why. /healthz reports these as `degraded`; a failure never exits the
 * process, and recorded progress is never overwritten by a failed write.
 */
import type { Counter } from 'prom-client';
import type { Logger } from './logger.ts';

/** The kinds of file a job writes; one fact, one home for the label values. */
export type DurableFile = 'events' | 'metrics' | 'progress' | 'checkpoint' | 'spec';

/** A kind of write that is failing now. */
export interface WriteProblem {
  readonly file: DurableFile;
  readonly job: string;
  /** The error's code (`EISDIR`, `ENOSPC`, `EMFILE`…), or `unknown`. */
  readonly code: string;
  readonly reason: string;
  /** When the current run of failures began (ISO time). */
  readonly since: string;
  /** Failed attempts in the current run. */
  readonly failures: number;
}

export type WriteOutcome = 'retried' | 'failed';

/**
 * Keeps the failing writes, one entry per job and kind of file. A run of failures is logged
 * once when it begins and once when the write works again, not on every attempt: under EMFILE
 * every append fails, and a line per attempt would flood the log it tries to write.
 */
export class WriteHealth {
  private readonly failing = new Map<string, WriteProblem>();

  constructor(
    private readonly log: Logger,
    private readonly counter?: Counter<'file' | 'outcome'>,
  ) {}

  /** A write of `file` for `job` failed; `outcome` says whether it will be tried again. */
  failed(file: DurableFile, job: string, err: unknown, outcome: WriteOutcome): void {
    this.counter?.inc({ file, outcome });
    const key = `${job}\u0000${file}`;
    const before = this.failing.get(key);
    const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'unknown';
    const reason = err instanceof Error ? err.message : String(err);
    this.failing.set(key, {
      file,
      job,
      code,
      reason,
      since: before?.since ?? new Date().toISOString(),
      failures: (before?.failures ?? 0) + 1,
    });
    if (!before) this.log.error({ err, job, file, outcome }, 'a durable write is failing');
  }

  /** A write of `file` for `job` worked: a run of failures, if any, is over. */
  succeeded(file: DurableFile, job: string): void {
    const key = `${job}\u0000${file}`;
    const before = this.failing.get(key);
    if (!before) return;
    this.failing.delete(key);
    this.log.info(
      { job, file, failures: before.failures, since: before.since },
      'a durable write works again',
    );
  }

  /** The writes failing now, oldest first. */
  problems(): WriteProblem[] {
    return [...this.failing.values()].sort((a, b) => a.since.localeCompare(b.since));
  }
}
