// `npm run bench:server`: the job server under protocol-level volunteers (docs/benchmarks.md,
// section Server load). The code lives in bench/server/ as TypeScript; Node 20 cannot load
// TypeScript or the workspace packages, so this bundles its three entry points (harness, load
// worker thread, server process) with esbuild and runs the harness. Arguments pass through:
// `npm run bench:server -- --counts=100,1000,3000`.
import { build } from 'esbuild';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serverExternals } from './server-externals.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root);
const external = [...serverExternals(pathToFileURL(root)), 'socket.io-client'];
const outdir = 'bench/dist/server';
await build({
  entryPoints: {
    cli: 'bench/server/cli.ts',
    'load-worker': 'bench/server/load-worker.ts',
    'server-process': 'bench/server/server-process.ts',
    // The server's worker thread, which it starts from beside its bundle (workers/entry-file.ts).
    'workers/entry': 'apps/server/src/workers/entry.ts',
  },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external,
  logLevel: 'warning',
});
const cli = await import(pathToFileURL(`${root}${outdir}/cli.mjs`).href);
try {
  await cli.main(process.argv.slice(2));
} catch (err) {
  console.error(
    `[bench:server] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  process.exitCode = 1;
}
// Load threads of a step the server stopped answering may still hold sockets: end them too.
process.exit(process.exitCode ?? 0);
