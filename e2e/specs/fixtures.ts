/**
 * Shared fixtures: the test server's URL (set by globalSetup) and page console forwarding, so a
 * failing page shows its own log in the test output.
 */
import { test as base, expect } from '@playwright/test';
import type { Page } from '@playwright/test';

export { expect };

export const test = base.extend<{ serverUrl: string; openPage: (name: string) => Promise<Page> }>({
  // Playwright reads a fixture's dependencies from its first parameter's destructuring pattern.
  // eslint-disable-next-line no-empty-pattern
  serverUrl: async ({}, use) => {
    const url = process.env.MESHGRAD_E2E_URL;
    if (!url) throw new Error('MESHGRAD_E2E_URL is unset: run through e2e/playwright.config.ts');
    await use(url);
  },
  openPage: async ({ page, serverUrl }, use) => {
    page.on('console', (msg) => console.log(`[page:${msg.type()}] ${msg.text()}`));
    page.on('pageerror', (err) => console.log(`[page:error] ${err.stack ?? err.message}`));
    await use(async (name: string) => {
      await page.goto(`${serverUrl}/${name}.html`);
      await page.waitForFunction(() => 'e2e' in window || 'e2eBuildError' in window, undefined, {
        timeout: 30_000,
      });
      const buildError = await page.evaluate(
        () => (window as { e2eBuildError?: string }).e2eBuildError ?? null,
      );
      if (buildError !== null) throw new Error(buildError);
      return page;
    });
  },
});
