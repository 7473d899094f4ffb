/**
 * The timing protocol every backend goes through, so the figures compare like with like.
 *
 * Per repetition: `warmupSteps` untimed steps and a sync, then `steps` timed steps with a sync
 * every `syncEvery` steps and one at the end, so work a GPU backend merely queued is counted.
 * A fresh model is built for each repetition and repetitions of different backends interleave
 * (round-robin), so a burst of load from other processes on this shared machine hits all of
 * them alike rather than one backend's whole run.
 */
import type { BenchOptions, Progress } from './types.ts';

/** One model instance under test. */
export interface TrainingSession {
  /**
   * Queues one forward + backward + SGD update on minibatch `index` (a loop with communication
   * returns a promise: its step may wait for a send's readback).
   */
  step(index: number): void | Promise<void>;
  /** Resolves once all queued work is done; returns the latest step's mean loss. */
  sync(): Promise<number>;
  dispose(): void;
}

export interface TimedRun {
  readonly samplesPerSecond: number;
  readonly lastLoss: number;
}

export async function timeSession(
  session: TrainingSession,
  options: BenchOptions,
  label: string,
  progress: Progress,
): Promise<TimedRun> {
  let index = 0;
  for (let i = 0; i < options.warmupSteps; i++) await session.step(index++ % options.batchCount);
  await session.sync();
  const started = performance.now();
  let lastLoss = NaN;
  for (let i = 1; i <= options.steps; i++) {
    await session.step(index++ % options.batchCount);
    if (i % options.syncEvery === 0 || i === options.steps) {
      lastLoss = await session.sync();
      const seconds = (performance.now() - started) / 1000;
      progress(
        `  ${label}: ${i}/${options.steps} steps, ${((i * options.batchSize) / seconds).toFixed(0)} samples/s so far`,
      );
    }
  }
  const seconds = (performance.now() - started) / 1000;
  return { samplesPerSecond: (options.steps * options.batchSize) / seconds, lastLoss };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return NaN;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
