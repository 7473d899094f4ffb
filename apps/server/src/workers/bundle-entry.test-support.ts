/**
 * Vitest global setup: bundles the worker thread's entry (workers/entry.ts) to
 * `TEST_WORKER_ENTRY`, since a worker thread cannot load TypeScript; the server build does the
 * same for dist/ (apps/server/build.mjs).
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { TEST_WORKER_ENTRY, WORKER_ENTRY_SOURCE } from './entry-file.ts';

export default async function bundleWorkerEntry(): Promise<void> {
  await build({
    entryPoints: [fileURLToPath(WORKER_ENTRY_SOURCE)],
    outfile: fileURLToPath(TEST_WORKER_ENTRY),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Everything it imports (core's sources, zod) is bundled in: the thread loads one file.
    logLevel: 'warning',
  });
}
