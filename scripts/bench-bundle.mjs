// The launcher of the benchmarks written as TypeScript in bench/<name>/ (cli.ts exporting
// `main(args)`): Node 20 cannot load TypeScript or the workspace packages, so this bundles the
// entry with esbuild (MNIST's JSON and prettier stay external) and runs it with the arguments.
import { build } from 'esbuild';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Bundles bench/<name>/cli.ts and runs its `main` with `args`; a failure sets the exit code. */
export async function runBundledBench(name, args) {
  process.chdir(root);
  const outfile = `bench/dist/${name}.mjs`;
  await build({
    entryPoints: [`bench/${name}/cli.ts`],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    external: ['mnist', 'prettier'],
    logLevel: 'warning',
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
