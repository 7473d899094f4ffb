// `npm run bench:transport`: meshgrad's state exchange against a raw RTCDataChannel between two
// Chromium tabs (docs/benchmarks.md, "Transport"). The code lives in e2e/ as TypeScript; Node 20
// cannot load TypeScript or the workspace packages, so this bundles the build helpers, lets
// them bundle the bench, and runs it.
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
  const bench = await import(
    pathToFileURL(await buildNodeEntry('e2e/p2p/bench-transport.ts')).href
  );
  await bench.main(process.argv.slice(2));
} catch (err) {
  console.error(
    `[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  process.exitCode = 1;
}
