// `npm run bench:kernels`: the kernel throughput benchmark (docs/benchmarks.md). The code lives
// in e2e/bench/ as TypeScript; Node 20 cannot load TypeScript or the workspace packages, so this
// bundles the build helpers, lets them bundle the bench CLI, and runs it.
import { build } from 'esbuild';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
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
  // TF.js is bundled from its ES modules: its CommonJS Node builds lack the gradients.
  const cli = await import(
    pathToFileURL(await buildNodeEntry('e2e/bench/cli.ts', ['@tensorflow'])).href
  );
  await cli.main(process.argv.slice(2));
} catch (err) {
  console.error(
    `[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  process.exitCode = 1;
}
