/**
 * Chart data from a job's metrics history (the server's metrics.jsonl): columns aligned on the
 * records' times, in uPlot's layout (x in Unix seconds, one array per series, null for a gap).
 * Pure, so a reload, which replays the whole history, draws exactly what the live view drew.
 */
import type { AdminMetricsRecord } from '@meshgrad/core';
import { encodingBits } from './format.ts';

export type Column = (number | null)[];

export interface OverviewSeries {
  readonly time: number[];
  readonly trainLoss: Column;
  readonly testLoss: Column;
  readonly testAccuracy: Column;
  readonly testObjective: Column;
  readonly samplesPerSec: Column;
  readonly workers: Column;
}

export type WorkerMetric = 'communicationPeriod' | 'blocksPerMessage' | 'encodingBits';

export interface PerWorkerSeries {
  readonly time: number[];
  /** Worker ids in order of first appearance, so colours stay put as workers come and go. */
  readonly workers: string[];
  /** `values[i][t]`: worker i's value at time t, or null while it was not connected. */
  readonly values: Column[];
}

const seconds = (r: AdminMetricsRecord) => Date.parse(r.time) / 1000;
const orNull = (v: number | undefined): number | null =>
  v === undefined || !Number.isFinite(v) ? null : v;

/** Records in time order (a server restart may append out of order); bad times dropped. */
export function ordered(history: readonly AdminMetricsRecord[]): AdminMetricsRecord[] {
  return history
    .filter((r) => Number.isFinite(seconds(r)))
    .map((r, i) => ({ r, i }))
    .sort((a, b) => seconds(a.r) - seconds(b.r) || a.i - b.i)
    .map(({ r }) => r);
}

export function overviewSeries(history: readonly AdminMetricsRecord[]): OverviewSeries {
  const rows = ordered(history);
  return {
    time: rows.map(seconds),
    trainLoss: rows.map((r) => orNull(r.trainLoss)),
    testLoss: rows.map((r) => orNull(r.testLoss)),
    testAccuracy: rows.map((r) => orNull(r.testAccuracy)),
    testObjective: rows.map((r) => orNull(r.testObjective)),
    samplesPerSec: rows.map((r) => orNull(r.samplesPerSec)),
    workers: rows.map((r) => orNull(r.workers)),
  };
}

export function perWorkerSeries(
  history: readonly AdminMetricsRecord[],
  metric: WorkerMetric,
): PerWorkerSeries {
  const rows = ordered(history);
  const workers: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    for (const id of Object.keys(r.perWorker ?? {})) {
      if (!seen.has(id)) {
        seen.add(id);
        workers.push(id);
      }
    }
  }
  const values = workers.map((id) =>
    rows.map((r) => {
      const w = r.perWorker?.[id];
      if (!w) return null;
      return metric === 'encodingBits' ? encodingBits(w.encoding) : w[metric];
    }),
  );
  return { time: rows.map(seconds), workers, values };
}

/** The last known value of a sparse column (e.g. the latest test accuracy), or undefined. */
export function lastValue(column: Column): number | undefined {
  for (let i = column.length - 1; i >= 0; i--) {
    const v = column[i];
    if (v !== null && v !== undefined) return v;
  }
  return undefined;
}
