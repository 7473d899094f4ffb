// `npm run bench:tick`: the balancer's tick at N workers against the all-pairs balancer it
// replaced (docs/benchmarks.md, "Balancer tick"), then the server's whole job tick. The
// baseline is packages/core/src as of BASELINE_COMMIT, taken from the git history and bundled
// beside the current code, so both run in one process. Arguments pass through: `npm run bench:tick -- --counts=250,1000`.
// `--baseline-commit=REV` times against packages/core/src as of another commit instead (e.g. the
// one before a change to the tick: `npm run bench:tick -- --baseline-commit=HEAD~1`).
import { build } from 'esbuild';
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serverExternals } from './server-externals.mjs';

/** The last commit with the all-pairs neighbour choice. */
const BASELINE_COMMIT = '38290cab8d909f804db45b5731182b4c9078c734';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const chosen = args.find((a) => a.startsWith('--baseline-commit='));
const baselineCommit = chosen ? chosen.slice('--baseline-commit='.length) : BASELINE_COMMIT;
const passed = args.filter((a) => a !== chosen);
if (chosen) passed.push(`--baseline-label=commit ${baselineCommit}`);
process.chdir(root);
// The job-tick rows run the server's Job: its npm dependencies stay outside the bundle.
const external = serverExternals(pathToFileURL(root));
const bundle = (entry, outfile) =>
  build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external,
    nodePaths: [join(root, 'node_modules')],
    logLevel: 'warning',
  });
const scratch = mkdtempSync(join(tmpdir(), 'bench-tick-'));
try {
  try {
    if (!/^[\w.~^/-]+$/.test(baselineCommit)) throw new Error(`not a revision: ${baselineCommit}`);
    execSync(`git archive ${baselineCommit} packages/core/src | tar -x -C "${scratch}"`, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (err) {
    throw new Error(
      `the baseline needs the git history with commit ${baselineCommit}${chosen ? '' : ' (the all-pairs balancer)'}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const baseline = join(root, 'bench/dist/tick-baseline.mjs');
  await bundle(join(scratch, 'packages/core/src/balancer/controller.ts'), baseline);
  await bundle('bench/tick/cli.ts', 'bench/dist/tick.mjs');
  const cli = await import(pathToFileURL(join(root, 'bench/dist/tick.mjs')).href);
  await cli.main([...passed, `--baseline=${pathToFileURL(baseline).href}`]);
} catch (err) {
  console.error(
    `[bench:tick] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  process.exitCode = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
