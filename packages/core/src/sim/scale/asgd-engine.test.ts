import { describe, expect, it } from 'vitest';
import { runScaleAsgd } from './asgd-engine.ts';
import { scaleLinks } from './links.ts';
import { averageThenStep } from './merge/average-then-step.ts';
import { noisyQuadratic } from './noisy-quadratic.ts';
import { WorkMeter } from './work-meter.ts';

const workload = noisyQuadratic({ dims: 32 });

async function workPerEvent(workers: number) {
  const meter = new WorkMeter();
  await runScaleAsgd({
    workload,
    workers,
    links: scaleLinks('home', 1),
    strategy: averageThenStep('off'),
    learningRate: 0.2,
    pushesPerStep: 2,
    evalIntervalS: 0.1,
    maxTimeS: 0.5,
    stopAtTarget: false,
    seed: 1,
    meter,
  });
  return {
    events: meter.events,
    elements: meter.elements / meter.events,
    iterations: meter.iterations / meter.events,
  };
}

describe('runScaleAsgd', () => {
  it('does the same work per event at 16 and at 1,024 workers (no scan of all workers)', async () => {
    const small = await workPerEvent(16);
    const large = await workPerEvent(1_024);
    // Events grow with N (every worker steps); the work inside each event must not.
    expect(large.events).toBeGreaterThan(30 * small.events);
    expect(large.elements).toBeLessThan(1.25 * small.elements);
    expect(large.iterations).toBeLessThan(1.25 * small.iterations);
  });

  it('trains: 16 workers reach a loss one worker has not reached in the same simulated time', async () => {
    const run = (workers: number) =>
      runScaleAsgd({
        workload,
        workers,
        links: scaleLinks('lan'),
        strategy: averageThenStep('off'),
        learningRate: 0.5,
        pushesPerStep: 4,
        neighbours: 8,
        probeAverage: workers,
        evalIntervalS: 0.04,
        maxTimeS: 2,
        stopAtTarget: false,
        seed: 3,
      });
    const [one, many] = await Promise.all([run(1), run(16)]);
    expect(many.finalQuality).toBeLessThan(0.5 * one.finalQuality);
    expect(many.pushes).toBeGreaterThan(0);
  });

  it('skips pushes on a slow uplink instead of queueing without bound', async () => {
    const r = await runScaleAsgd({
      workload: noisyQuadratic({ dims: 20_000 }),
      workers: 4,
      links: scaleLinks('home', 2),
      strategy: averageThenStep('hard'),
      learningRate: 0.1,
      evalIntervalS: 0.5,
      maxTimeS: 2,
      seed: 1,
    });
    expect(r.pushesSkipped).toBeGreaterThan(0);
  });

  it('rejects a worker count below one', async () => {
    await expect(
      runScaleAsgd({
        workload,
        workers: 0,
        links: scaleLinks('lan'),
        strategy: averageThenStep(),
        learningRate: 0.1,
        evalIntervalS: 1,
        maxTimeS: 1,
        seed: 1,
      }),
    ).rejects.toThrow(RangeError);
  });
});
