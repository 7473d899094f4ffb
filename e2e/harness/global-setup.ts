/**
 * Builds the test pages and starts the test server once for the whole run. The server URL reaches
 * the specs through `process.env` (Playwright's workers inherit the runner's environment).
 */
import { pathToFileURL } from 'node:url';
import { buildNodeEntry, buildPages } from './build.ts';
import type { TestServer } from './server.ts';

export const SERVER_URL_ENV = 'MESHGRAD_E2E_URL';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const started = performance.now();
  const pages = await buildPages();
  const entry = await buildNodeEntry('e2e/harness/serve.ts');
  const mod = (await import(pathToFileURL(entry).href)) as { startServer(): Promise<TestServer> };
  const server = await mod.startServer();
  process.env[SERVER_URL_ENV] = server.url;
  const ok = pages.filter((p) => p.error === null).map((p) => p.name);
  console.log(
    `[e2e] built pages ${ok.join(', ')} and started ${server.url} in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  // A page that does not build fails its own specs with this message (see buildPages).
  for (const p of pages) if (p.error !== null) console.log(`[e2e] ${p.error}`);
  return () => server.close();
}
