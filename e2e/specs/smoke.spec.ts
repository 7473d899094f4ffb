import { expect, test } from './fixtures.ts';
import type { SmokeResult } from '../pages/smoke.ts';

test('WebGPU is exposed and runs compute in headless Chromium', async ({ openPage }) => {
  const page = await openPage('smoke');
  const result = await page.evaluate(() =>
    (window as unknown as { e2e: { smoke(): Promise<SmokeResult> } }).e2e.smoke(),
  );
  console.log(`[smoke] ${result.userAgent}`);
  console.log(`[smoke] adapter ${JSON.stringify(result.adapter)}`);
  expect(result.secureContext).toBe(true);
  expect(result.adapter.architecture, 'adapter architecture').not.toBe('');
  expect(result.computeWorks, 'compute pass wrote the expected values').toBe(true);
});
