// `npm test`: format check, lint, typecheck, unit tests (vitest, Node + Dawn WebGPU) and
// end-to-end tests (Playwright, real Chromium). Every step runs even when an earlier one fails,
// so one run shows everything that is broken. Ends with one line: `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';

const resultsDir = 'test-results';
mkdirSync(resultsDir, { recursive: true });
const only = process.argv.slice(2); // e.g. `npm test -- unit e2e`

let passed = 0;
let failed = 0;
const summary = [];

function run(name, cmd, args, env = {}) {
  if (only.length && !only.includes(name)) return null;
  console.log(`\n━━ ${name}: ${cmd} ${args.join(' ')}`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  return { status: r.status ?? 1, seconds };
}

function check(name, cmd, args) {
  const r = run(name, cmd, args);
  if (!r) return;
  if (r.status === 0) passed++;
  else failed++;
  summary.push(`${name}: ${r.status === 0 ? 'ok' : 'FAILED'} (${r.seconds}s)`);
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

check('format', 'npx', ['prettier', '--check', '.']);
check('lint', 'npx', ['eslint', '.']);
check('typecheck', 'node', ['scripts/typecheck.mjs']);

{
  const out = `${resultsDir}/vitest.json`;
  rmSync(out, { force: true });
  const r = run('unit', 'npx', [
    'vitest',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${out}`,
  ]);
  if (r) {
    const j = readJson(out);
    if (j) {
      passed += j.numPassedTests;
      failed += j.numFailedTests + (j.numFailedTestSuites ?? 0);
      summary.push(
        `unit: ${j.numPassedTests} passed, ${j.numFailedTests} failed, ${j.numFailedTestSuites ?? 0} suites failed to run (${r.seconds}s)`,
      );
      if (r.status !== 0 && j.numFailedTests === 0 && !j.numFailedTestSuites) failed++;
    } else {
      failed++;
      summary.push(`unit: FAILED, no report (${r.seconds}s)`);
    }
  }
}

{
  // Absolute: Playwright resolves a relative report path against its config's folder.
  const out = resolve(resultsDir, 'playwright.json');
  rmSync(out, { force: true });
  if (!existsSync('/usr/bin/chromium') && !process.env.CHROMIUM_PATH) {
    console.error('e2e: no Chromium at /usr/bin/chromium: run `apt-get install -y chromium`');
  }
  const r = run(
    'e2e',
    'npx',
    ['playwright', 'test', '-c', 'e2e/playwright.config.ts', '--reporter=list,json'],
    {
      PLAYWRIGHT_JSON_OUTPUT_NAME: out,
    },
  );
  if (r) {
    const j = readJson(out);
    if (j?.stats) {
      const ok = j.stats.expected + (j.stats.flaky ?? 0);
      const bad = j.stats.unexpected;
      passed += ok;
      failed += bad;
      summary.push(`e2e: ${ok} passed, ${bad} failed (${r.seconds}s)`);
      if (r.status !== 0 && bad === 0) failed++;
    } else {
      failed++;
      summary.push(`e2e: FAILED, no report (${r.seconds}s)`);
    }
  }
}

console.log('\n━━ summary');
for (const line of summary) console.log(line);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
