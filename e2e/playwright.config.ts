import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './harness/chromium.ts';

/**
 * End-to-end specs against real Chromium with real WebGPU (SwiftShader on GPU-less machines).
 * Run from the repository root: `npm run test:e2e`.
 *
 * One worker, so all specs share one launched browser (one context per test) and GPU-heavy specs
 * do not compete for the two cores of the CI machines.
 */
// The specs name their tabs; servers they start accept hosts' own names.
process.env.MESHGRAD_NAMED_WORKERS = '1';

export default defineConfig({
  testDir: './specs',
  outputDir: '../test-results',
  globalSetup: './harness/global-setup.ts',
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  // Training on SwiftShader takes minutes; each spec sets its own budget with test.setTimeout.
  timeout: 120_000,
  reporter: [['list']],
  use: {
    // The full Chromium in its new headless mode: Playwright passes `--headless` to whatever
    // executablePath names, and only the headless *shell* build lacks WebGPU.
    headless: true,
    launchOptions: {
      executablePath: CHROMIUM_PATH,
      args: [...CHROMIUM_ARGS],
    },
    screenshot: 'only-on-failure',
    trace: 'off',
  },
});
