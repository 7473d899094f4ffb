import { describe, expect, it } from 'vitest';
import { simulate } from './run.ts';
import { Schedule } from './schedule.ts';
import type { SimulationConfig, SimWorkerSpec } from './simulation.ts';
import { kmeansWorkload } from './workloads.ts';

// A small K-Means task: 8 clusters in 8 dimensions, 8 blocks of 8 floats. Shards of a few
// hundred samples are too small to pin 8 centres down alone, so exchange has something to add.
const kmeansTask = {
  clusters: 8,
  dims: 8,
  count: 1_600,
  testCount: 1_000,
  minSeparation: 12,
  batchSize: 8,
  learningRate: 1,
  blockSize: 8,
  seed: 3,
};
const workload = kmeansWorkload(kmeansTask);

const worker = (
  id: string,
  samplesPerSec: number,
  bytesPerSec = 1e7,
  extra: Partial<SimWorkerSpec> = {},
): SimWorkerSpec => ({
  id,
  samplesPerSec: Schedule.constant(samplesPerSec),
  uplink: Schedule.constant(bytesPerSec),
  downlink: Schedule.constant(bytesPerSec),
  ...extra,
});

const base = (
  workers: SimWorkerSpec[],
  extra: Partial<SimulationConfig> = {},
): SimulationConfig => ({
  workload,
  workers,
  path: () => ({ latencyS: 0.001 }),
  maxTimeS: 10,
  stopAtTarget: false,
  recordTicks: true,
  ...extra,
});

const fullExchange = {
  kind: 'fixed',
  settings: { communicationPeriod: 8, blocksPerMessage: 8, encoding: 'f32' },
} as const;

describe('simulate (asgd)', () => {
  it('charges compute in virtual time: batch / speed per step, per worker', async () => {
    const result = await simulate(
      base([worker('slow', 80), worker('fast', 400)], { policy: { kind: 'none' }, maxTimeS: 5 }),
    );
    const last = result.ticks.at(-1)!;
    const speed = new Map(last.workers.map((w) => [w.id, w.samplesPerSec]));
    // Per 1 s tick, within one batch (a step can fall on either side of a tick).
    expect(Math.abs(speed.get('slow')! - 80)).toBeLessThanOrEqual(8);
    expect(Math.abs(speed.get('fast')! - 400)).toBeLessThanOrEqual(8);
    // 5 s: 50 steps of 8 at 80/s and 250 at 400/s (the last may fall exactly on the limit).
    expect(result.totals.steps).toBeGreaterThanOrEqual(298);
    expect(result.totals.steps).toBeLessThanOrEqual(300);
    expect(result.endS).toBe(5);
    expect(result.totals.blocksSent).toBe(0);
  });

  it('lets workers join and leave', async () => {
    const result = await simulate(
      base(
        [worker('a', 100), worker('b', 100), worker('late', 100, 1e7, { joinAtS: 3, leaveAtS: 6 })],
        { policy: fullExchange, maxTimeS: 9 },
      ),
    );
    const present = (t: number) =>
      result.ticks.find((tick) => Math.abs(tick.timeS - t) < 1e-9)!.workers.map((w) => w.id);
    expect(present(2)).not.toContain('late');
    expect(present(5)).toContain('late');
    expect(present(8)).not.toContain('late');
    // Nobody keeps sending to a worker that left.
    for (const w of result.ticks.find((tick) => tick.timeS === 8)!.workers) {
      expect(w.neighbours).not.toContain('late');
    }
    // 3 s at 100 samples/s with batches of 8: 37 or 38 steps from the late worker.
    const steps = result.totals.steps;
    expect(steps).toBeGreaterThanOrEqual(2 * 112 + 37);
    expect(steps).toBeLessThanOrEqual(2 * 113 + 38);
  });

  it('exchange beats no exchange at equal samples', async () => {
    const workers = Array.from({ length: 8 }, (_, i) => worker(`w${i}`, 200));
    const run = (policy: NonNullable<SimulationConfig['policy']>, seed: number) =>
      simulate(base(workers, { policy, seed, maxTimeS: 8, evalIntervalS: 8, recordTicks: false }));
    const gap = (r: { evaluations: readonly { value: number }[] }) =>
      r.evaluations.at(-1)!.value - 1;
    const ratios: number[] = [];
    for (const seed of [1, 2, 3]) {
      const [exchanged, alone] = await Promise.all([
        run(fullExchange, seed),
        run({ kind: 'none' }, seed),
      ]);
      expect(exchanged.totals.samples).toBe(alone.totals.samples);
      expect(exchanged.totals.accepted).toBeGreaterThan(0);
      // The probe model's excess objective over the generating centres' is lower with exchange.
      expect(gap(exchanged)).toBeLessThan(gap(alone));
      ratios.push(gap(exchanged) / gap(alone));
    }
    expect(ratios.reduce((a, b) => a + b, 0) / ratios.length).toBeLessThan(0.8);
  });

  it('keeps backlog under the safety valve and never overflows a data channel', async () => {
    // 2 kB/s uplinks; full exchange wants ~40 kB/s.
    const workers = [worker('a', 400, 2_000), worker('b', 400, 2_000)];
    const result = await simulate(
      base(workers, { policy: fullExchange, sendBacklogLimitBytes: 4_096, maxTimeS: 4 }),
    );
    expect(result.totals.sendsSkipped).toBeGreaterThan(0);
    expect(result.totals.overflows).toBe(0);
    expect(result.totals.maxBacklogBytes).toBeLessThanOrEqual(4_096);
  });

  it('with the balancer, settles below the link instead of flooding it', async () => {
    const workers = [worker('a', 400, 3_000), worker('b', 400, 3_000)];
    const result = await simulate(base(workers, { policy: { kind: 'balancer' }, maxTimeS: 20 }));
    const late = result.ticks.filter((t) => t.timeS > 10);
    for (const tick of late) {
      for (const w of tick.workers) {
        expect(w.goodputBytesPerSec).toBeLessThanOrEqual(3_000 + 1e-6);
        expect(w.backlogBytes).toBeLessThan(3_000);
        expect(w.settings).toEqual(late[0]!.workers.find((x) => x.id === w.id)!.settings);
      }
    }
    expect(late[0]!.workers[0]!.goodputBytesPerSec).toBeGreaterThan(1_000);
  });
});

describe('simulate (asgd) with the balancer across a 10× drop', () => {
  it('follows the drop within a few ticks, then holds its settings, without overflow', async () => {
    // Uploads of 4 kB/s fall to 400 B/s at 12 s; downloads are ten times faster (home links).
    const workers = ['a', 'b', 'c'].map((id) => ({
      id,
      samplesPerSec: Schedule.constant(800),
      uplink: Schedule.constant(4_000).withFactorFrom(12, 0.1),
      downlink: Schedule.constant(40_000).withFactorFrom(12, 0.1),
    }));
    const result = await simulate(base(workers, { policy: { kind: 'balancer' }, maxTimeS: 40 }));
    const at = (t: number) => result.ticks.find((tick) => tick.timeS === t)!;
    // Before the drop the links are busy; after it nobody gets more through than the link.
    for (const w of at(11).workers) expect(w.goodputBytesPerSec).toBeGreaterThan(0.5 * 4_000);
    for (const tick of result.ticks.filter((t) => t.timeS >= 13)) {
      for (const w of tick.workers) expect(w.goodputBytesPerSec).toBeLessThanOrEqual(400 + 1e-6);
    }
    // Within 5 s the settings stop moving beyond ±20% for good, and the queues are short.
    const late = result.ticks.filter((t) => t.timeS >= 17);
    for (const tick of late) {
      for (const w of tick.workers) {
        const ref = late[0]!.workers.find((x) => x.id === w.id)!.settings;
        expect(w.settings.encoding).toBe(ref.encoding);
        expect(
          Math.abs(w.settings.communicationPeriod / ref.communicationPeriod - 1),
        ).toBeLessThanOrEqual(0.2);
        expect(
          Math.abs(w.settings.blocksPerMessage / ref.blocksPerMessage - 1),
        ).toBeLessThanOrEqual(0.2);
      }
    }
    for (const w of result.ticks.at(-1)!.workers) expect(w.backlogBytes).toBeLessThan(400);
    expect(result.totals.overflows).toBe(0);
  });
});

describe('simulate (sync)', () => {
  it('waits for the slowest worker every round', async () => {
    const result = await simulate(
      base([worker('slow', 80), worker('fast', 800)], { mode: 'sync', maxTimeS: 5 }),
    );
    // A round is 8 samples / 80 per s = 0.1 s plus tiny transfers: at most 50 rounds in 5 s.
    expect(result.totals.steps).toBeLessThanOrEqual(50);
    expect(result.totals.steps).toBeGreaterThanOrEqual(45);
    // Both gradients of every finished round, plus at most the fast worker's of the open one.
    expect(result.totals.samples).toBeGreaterThanOrEqual(16 * result.totals.steps);
    expect(result.totals.samples).toBeLessThanOrEqual(16 * result.totals.steps + 8);
  });

  it('waits for transfers at the link speed', async () => {
    // 64 floats of f32 in 8 messages: 8 × (48 + 32) = 640 bytes each way per worker per round.
    const result = await simulate(
      base([worker('a', 1e6, 640), worker('b', 1e6, 640)], { mode: 'sync', maxTimeS: 10 }),
    );
    // About 1 s down and 1 s up per round.
    expect(result.totals.steps).toBeGreaterThanOrEqual(4);
    expect(result.totals.steps).toBeLessThanOrEqual(5);
  });

  it('trains: reaches the target and stops there', async () => {
    const workers = [worker('a', 200), worker('b', 200)];
    // Batches of 8 leave SGD noise near 3% on this task, so the target here is 5%.
    const loose = kmeansWorkload({ ...kmeansTask, tolerance: 0.05 });
    const result = await simulate({
      ...base(workers, { mode: 'sync', maxTimeS: 30, stopAtTarget: true }),
      workload: loose,
    });
    expect(result.timeToTargetS).not.toBeNull();
    expect(result.endS).toBe(result.timeToTargetS);
  });
});
