import { expect, test } from './fixtures.ts';
import { DEFAULT_BENCH_OPTIONS } from '../bench/types.ts';
import type { BenchOptions, SuiteResult } from '../bench/types.ts';

/**
 * Keeps `npm run bench:kernels` from rotting, and cross-checks implementations: every backend
 * starts from the same parameters and trains on the same minibatches at the same learning rate,
 * so after a few steps all of them — meshgrad's and TF.js's alike — must report the same loss.
 */
test('the kernel benchmark page runs every backend and they agree on the loss', async ({
  openPage,
}) => {
  // The CNN rows roughly double the run on SwiftShader (TF.js webgpu trains it at ~15 samples/s).
  test.setTimeout(6 * 60_000);
  const page = await openPage('bench');
  const options: BenchOptions = {
    ...DEFAULT_BENCH_OPTIONS,
    warmupSteps: 1,
    steps: 4,
    syncEvery: 4,
    reps: 1,
  };
  const suite = await page.evaluate(
    (o) =>
      (window as unknown as { e2e: { bench(o: BenchOptions): Promise<SuiteResult> } }).e2e.bench(o),
    options,
  );
  for (const r of suite.results) {
    console.log(
      `[bench] ${r.id}: ${r.error ?? `loss ${r.lastLoss} after ${options.warmupSteps + options.steps} steps, ${r.samplesPerSecond?.toFixed(0)} samples/s`}`,
    );
  }
  // The loop rows also merge blocks from simulated peers, so they compute another trajectory:
  // they are held to the CPU loop row, every other row to the plain CPU step.
  const lossOf = (id: string): number => suite.results.find((r) => r.id === id)?.lastLoss ?? NaN;
  for (const name of ['meshgrad-cpu', 'meshgrad-cpu-loop', 'cnn-meshgrad-cpu']) {
    expect(Number.isFinite(lossOf(name)), `${name} produced a finite loss`).toBe(true);
  }
  for (const r of suite.results) {
    expect.soft(r.error, `${r.id} ran`).toBeNull();
    // The CNN's rows (`cnn-…`) are held to the CNN's CPU row.
    const workload = r.id.startsWith('cnn-') ? 'cnn-' : '';
    const base = workload + (r.id.endsWith('-loop') ? 'meshgrad-cpu-loop' : 'meshgrad-cpu');
    const reference = lossOf(base);
    // float32 with different summation orders: they agree to ~1e-7 here; 1e-3 is slack.
    expect
      .soft(Math.abs((r.lastLoss ?? NaN) - reference), `${r.id} loss vs ${base}`)
      .toBeLessThan(1e-3 * Math.max(1, Math.abs(reference)));
  }
});
