/**
 * Entry of the Node-side test server bundle (built by `buildNodeEntry`, because it imports the
 * TypeScript workspace packages): the static server plus datasets encoded by @meshgrad/core.
 */
import { startTestServer } from './server.ts';
import type { TestServer } from './server.ts';
import { datasetBytes } from './datasets.ts';

export function startServer(): Promise<TestServer> {
  return startTestServer(datasetBytes);
}
