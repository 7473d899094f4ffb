/**
 * Where the worker thread's code (workers/entry.ts) lives. The server build emits it beside the
 * bundle (dist/workers/entry.js). Run from source, as the unit tests run the server, the entry
 * is a TypeScript file a worker thread cannot load: the tests' global setup bundles it to
 * `TEST_WORKER_ENTRY` first (workers/bundle-entry.test-support.ts).
 */
import { fileURLToPath } from 'node:url';

/** The bundled entry when the server runs from source (under the repository's node_modules). */
export const TEST_WORKER_ENTRY = new URL(
  '../../../../node_modules/.cache/meshgrad-server/worker-entry.mjs',
  import.meta.url,
);

/** The entry's TypeScript source, for the bundler. */
export const WORKER_ENTRY_SOURCE = new URL('./entry.ts', import.meta.url);

/** The worker thread module for this build of the server. */
export function workerEntry(): URL {
  // In dist/ this module is part of a bundle (main.js, index.js or a chunk beside them).
  const fromSource = fileURLToPath(import.meta.url).endsWith('.ts');
  return fromSource ? TEST_WORKER_ENTRY : new URL('./workers/entry.js', import.meta.url);
}
