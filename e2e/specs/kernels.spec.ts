import { expect, test } from './fixtures.ts';
import type { KernelChecksResult } from '../pages/kernels.ts';

test('every WGSL kernel check passes on the browser adapter', async ({ openPage }) => {
  test.setTimeout(5 * 60_000);
  const page = await openPage('kernels');
  const result = await page.evaluate(() =>
    (
      window as unknown as { e2e: { kernelChecks(): Promise<KernelChecksResult> } }
    ).e2e.kernelChecks(),
  );
  const a = result.adapter;
  console.log(
    `[kernels] adapter ${a.vendor} / ${a.architecture}; ${result.checks.length} checks in ${result.seconds.toFixed(1)} s`,
  );
  for (const c of result.checks) {
    console.log(
      `[kernels] ${c.passed ? 'pass' : 'FAIL'} ${c.name}: max relative error ${c.maxRelError.toExponential(2)} ` +
        `(bound ${c.bound.toExponential(2)})${c.detail ? ` ${c.detail}` : ''}`,
    );
  }
  expect(result.checks.length, 'runKernelChecks returned no checks').toBeGreaterThan(0);
  for (const c of result.checks) {
    expect
      .soft(c.passed, `${c.name}: max relative error ${c.maxRelError} vs bound ${c.bound}`)
      .toBe(true);
    expect
      .soft(c.maxRelError, `${c.name} error is a number within its bound`)
      .toBeLessThanOrEqual(c.bound);
  }
});
