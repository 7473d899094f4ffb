/**
 * A job's metrics history (DESIGN §5), bounded in memory, on disk and per answer. The file
 * `metrics.jsonl` takes one JSON line per record; only its tail is ever read back, and once it
 * outgrows its cap it is rewritten from what memory holds. Memory keeps every record's summary,
 * thinned to half resolution in the older half whenever the count reaches its cap, so the whole
 * run stays drawable at a coarser grain; per-worker detail is kept for the newest records only.
 */
import type { AdminMetricsRecord } from '@meshgrad/core';

/** Bytes of the file's tail parsed on start: a bounded parse that cannot stall the server. */
export const METRICS_TAIL_BYTES = 8 * 1024 * 1024;
/** The file is compacted once it grows past this many bytes. */
export const METRICS_FILE_CAP_BYTES = 32 * 1024 * 1024;
/** Records held in memory; reaching it thins the older half to every other record. */
export const METRICS_RECORD_CAP = 20_000;
/** How many of the newest records keep their per-worker detail. */
export const PER_WORKER_RECORDS = 120;
/** Records in one answer: the default, and the most a request may ask for. */
export const DEFAULT_METRICS_LIMIT = 1_000;
export const MAX_METRICS_LIMIT = 5_000;
/** The most JSON bytes of records in one answer. */
export const MAX_METRICS_ANSWER_BYTES = 4 * 1024 * 1024;

export interface MetricsRange {
  /** ISO time or epoch ms: records at or after it. */
  readonly since?: number;
  /** Records at or before it. */
  readonly until?: number;
  /** At most this many records (the newest in range), capped at MAX_METRICS_LIMIT. */
  readonly limit?: number;
}

export interface MetricsAnswer {
  readonly history: AdminMetricsRecord[];
  /** Records in range that the limit or the byte cap left out (the oldest ones). */
  readonly omitted: number;
}

interface Entry {
  readonly at: number;
  record: AdminMetricsRecord;
  bytes: number;
}

const lineBytes = (r: AdminMetricsRecord) => Buffer.byteLength(JSON.stringify(r)) + 1;

function summary(r: AdminMetricsRecord): AdminMetricsRecord {
  if (r.perWorker === undefined) return r;
  const { perWorker: _dropped, ...rest } = r;
  return rest;
}

/** The in-memory side of one job's history; the store does the file I/O around it. */
export class MetricsHistory {
  private entries: Entry[] = [];

  /** Bytes of the file as the store last knew them. */
  fileBytes = 0;

  /**
   * Fills the history from the tail of the file. `startsMidLine` says the text began inside the
   * file, so its first line is a fragment; a torn last line (a crash mid-append) is skipped too.
   */
  load(text: string, startsMidLine: boolean, fileBytes: number): void {
    const lines = text.split('\n');
    if (startsMidLine) lines.shift();
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        this.add(JSON.parse(line) as AdminMetricsRecord);
      } catch {
        // A torn line: skip it, keep the rest.
      }
    }
    this.fileBytes = fileBytes;
  }

  add(record: AdminMetricsRecord): void {
    const at = Date.parse(record.time);
    this.entries.push({
      at: Number.isFinite(at) ? at : Date.now(),
      record,
      bytes: lineBytes(record),
    });
    const stripAt = this.entries.length - 1 - PER_WORKER_RECORDS;
    const old = this.entries[stripAt];
    if (old?.record.perWorker !== undefined) {
      old.record = summary(old.record);
      old.bytes = lineBytes(old.record);
    }
    if (this.entries.length >= METRICS_RECORD_CAP) this.thin();
  }

  get size(): number {
    return this.entries.length;
  }

  /** Whether the file has outgrown its cap and should be rewritten from `lines()`. */
  get needsCompaction(): boolean {
    return this.fileBytes > METRICS_FILE_CAP_BYTES;
  }

  /** The whole history as file content (what compaction writes). */
  text(): string {
    return this.entries.map((e) => JSON.stringify(e.record) + '\n').join('');
  }

  /** The newest records in range, at most `limit` and MAX_METRICS_ANSWER_BYTES of them, oldest first. */
  query(range: MetricsRange = {}): MetricsAnswer {
    const limit = Math.min(Math.max(1, range.limit ?? DEFAULT_METRICS_LIMIT), MAX_METRICS_LIMIT);
    const since = range.since ?? -Infinity;
    const until = range.until ?? Infinity;
    const picked: AdminMetricsRecord[] = [];
    let bytes = 0;
    let inRange = 0;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i] as Entry;
      if (e.at > until) continue;
      if (e.at < since) break;
      inRange++;
      if (picked.length >= limit || bytes + e.bytes > MAX_METRICS_ANSWER_BYTES) continue;
      picked.push(e.record);
      bytes += e.bytes;
    }
    return { history: picked.reverse(), omitted: inRange - picked.length };
  }

  /** Halves the resolution of the older half: every other record there goes. */
  private thin(): void {
    const half = Math.floor(this.entries.length / 2);
    const older = this.entries.slice(0, half).filter((_e, i) => i % 2 === 0);
    this.entries = [...older, ...this.entries.slice(half)];
  }
}
