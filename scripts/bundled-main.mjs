// Shared by the `npm run bench:kernels` and `bench:transport` scripts: their code lives in e2e/
// as TypeScript, which Node 20 cannot load (nor the workspace packages), so this bundles the
// build helpers, lets them bundle the entry, and runs the entry's `main` with the arguments.
import { build } from 'esbuild';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Bundles `entry` (a path from the repository root) with e2e's build helpers and awaits its
 * `main(argv)`; packages named in `bundled` are bundled from their ES modules rather than left
 * external. Failures print one `[label] failed: …` line and set the exit code.
 */
export async function runBundledMain(label, entry, bundled = []) {
  process.chdir(root);
  try {
    const helpers = 'e2e/dist/node/build-helpers.mjs';
    await build({
      entryPoints: ['e2e/harness/build.ts'],
      outfile: helpers,
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      logLevel: 'warning',
    });
    const { buildNodeEntry } = await import(pathToFileURL(root + helpers).href);
    const module = await import(pathToFileURL(await buildNodeEntry(entry, bundled)).href);
    await module.main(process.argv.slice(2));
  } catch (err) {
    console.error(
      `[${label}] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exitCode = 1;
  }
}
