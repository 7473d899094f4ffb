/**
 * Where the worker thread's code (workers/entry.ts) lives. The server build emits it beside the
 * bundle (dist/workers/entry.js), and so must any other bundle of the server (the benchmark's). Run from source, as the unit tests run the server, the entry
 * is a TypeScript file a worker thread cannot load: the tests' global setup bundles it to
 * `TEST_WORKER_ENTRY` first (workers/bundle-entry.test-support.ts).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The bundled entry when the server runs from source (under the repository's node_modules). */
export const TEST_WORKER_ENTRY = new URL(
  '../../../../node_modules/.cache/meshgrad-server/worker-entry.mjs',
  import.meta.url,
);

/** The entry's TypeScript source, for the bundler. */
export const WORKER_ENTRY_SOURCE = new URL('./entry.ts', import.meta.url);

/**
 * Where a bundle of the server looks for the entry, beside itself: dist/ emits `.js`, a bundle
 * that names its output `.mjs` (the server benchmark's) emits that.
 */
const BUNDLED_ENTRY_NAMES = ['./workers/entry.js', './workers/entry.mjs'] as const;

/** The worker thread module for this build of the server. */
export function workerEntry(): URL {
  if (fileURLToPath(import.meta.url).endsWith('.ts')) return TEST_WORKER_ENTRY;
  // Bundled, this module is part of main.js, index.js or a chunk beside them.
  const candidates = BUNDLED_ENTRY_NAMES.map((name) => new URL(name, import.meta.url));
  return candidates.find((url) => existsSync(url)) ?? (candidates[0] as URL);
}
