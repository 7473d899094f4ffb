// Typechecks every workspace with its own tsconfig (one per runtime, docs/design.md §2.1).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const projects = [
  'packages/core/tsconfig.json',
  'packages/core/tsconfig.test.json',
  'packages/shaders/tsconfig.json',
  'packages/shaders/tsconfig.test.json',
  'apps/server/tsconfig.json',
  'apps/client/tsconfig.json',
  'e2e/tsconfig.json',
  'bench/tsconfig.json',
].filter((p) => existsSync(p));

let failed = 0;
for (const project of projects) {
  const r = spawnSync('npx', ['tsc', '-p', project], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`typecheck failed: ${project}`);
  }
}
console.log(`typecheck: ${projects.length - failed} of ${projects.length} projects clean`);
process.exit(failed ? 1 : 0);
