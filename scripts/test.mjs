// `npm test`: format check, lint, typecheck, design references, unit tests (vitest, Node + Dawn
// WebGPU) and end-to-end tests (Playwright, real Chromium). Every step runs even when an earlier
// one fails, so one run shows everything that is broken. Ends with one line:
// `N passed, N failed` and, when any were skipped, `, N skipped`. Each test counts once: a unit
// file that cannot load counts as one failure, and an e2e test that did not run because an
// earlier test of its serial file failed counts as failed, not as skipped.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const resultsDir = 'test-results';
mkdirSync(resultsDir, { recursive: true });
const only = process.argv.slice(2); // e.g. `npm test -- unit e2e`

const totals = { passed: 0, failed: 0, skipped: 0 };
const summary = [];
/** One line per failed test, printed in the summary just above the closing line. */
const failures = [];

function run(name, cmd, args, env = {}) {
  if (only.length && !only.includes(name)) return null;
  console.log(`\n━━ ${name}: ${cmd} ${args.join(' ')}`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  return { status: r.status ?? 1, seconds };
}

/** A step that is one check: it passes or fails as a whole. */
function check(name, cmd, args) {
  const r = run(name, cmd, args);
  if (!r) return;
  if (r.status === 0) totals.passed++;
  else totals.failed++;
  summary.push(`${name}: ${r.status === 0 ? 'ok' : 'FAILED'} (${r.seconds}s)`);
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

/** `N passed, N failed[, N skipped]`, the closing line's format, for a step or the whole run. */
function counts({ passed, failed, skipped }) {
  return `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`;
}

/**
 * A step made of tests: adds its counts to the totals. A runner that exits non-zero while its
 * report shows no failure (a crash, a broken config) is one more failure, so it cannot pass.
 */
function record(name, r, c, extra = '') {
  totals.passed += c.passed;
  totals.failed += c.failed;
  totals.skipped += c.skipped;
  if (r.status !== 0 && c.failed === 0) {
    totals.failed++;
    extra += `, exited ${r.status} with no failed test`;
  }
  summary.push(`${name}: ${counts(c)}${extra} (${r.seconds}s)`);
}

/**
 * Counts from vitest's JSON report, per test: its suite totals count a failing test again for
 * its file and for each enclosing `describe`. A file that failed without a failed test (it did
 * not load) counts once.
 */
export function vitestCounts(report) {
  const c = { passed: 0, failed: 0, skipped: 0, brokenFiles: 0 };
  for (const file of report.testResults ?? []) {
    let failedHere = 0;
    for (const t of file.assertionResults ?? []) {
      if (t.status === 'passed') c.passed++;
      else if (t.status === 'failed') failedHere++;
      else c.skipped++; // skipped, pending, todo
    }
    c.failed += failedHere;
    if (file.status === 'failed' && failedHere === 0) {
      c.failed++;
      c.brokenFiles++;
    }
  }
  return c;
}

/**
 * Counts from Playwright's JSON report, per test. A test skipped on purpose (`test.skip(...)`:
 * its expected status is `skipped`) is skipped; one that was to run but did not (the rest of a
 * serial file after a failure, a run cut short) is `didNotRun` and counts as failed.
 */
export function playwrightCounts(report) {
  const c = { passed: 0, failed: 0, skipped: 0, didNotRun: 0 };
  const visit = (suite) => {
    for (const spec of suite.specs ?? []) {
      for (const t of spec.tests ?? []) {
        if (t.status === 'expected' || t.status === 'flaky') {
          if (t.expectedStatus === 'skipped') c.skipped++;
          else c.passed++;
        } else if (t.status === 'skipped') {
          if (t.expectedStatus === 'skipped') c.skipped++;
          else {
            c.failed++;
            c.didNotRun++;
          }
        } else c.failed++;
      }
    }
    for (const child of suite.suites ?? []) visit(child);
  };
  for (const suite of report.suites ?? []) visit(suite);
  return c;
}

// eslint-disable-next-line no-control-regex
const ANSI_COLOUR = /\x1b\[[0-9;]*m/g;

/** The first line of an error message, cut to one readable line. */
function firstLine(message) {
  // Strip ANSI colour codes: Playwright's messages carry them.
  const line =
    String(message ?? '')
      .replace(ANSI_COLOUR, '')
      .split('\n')
      .find((l) => l.trim()) ?? '';
  return line.length > 160 ? `${line.slice(0, 157)}...` : line.trim();
}

/**
 * `:LINE` of the first frame of `message`'s stack in `file` (the test's own line that failed:
 * several `expect`s of one test print the same message), or '' when the stack has none.
 */
export function lineInFile(message, file) {
  if (!file) return '';
  for (const l of String(message ?? '').split('\n')) {
    const i = l.indexOf(file);
    if (i < 0) continue;
    const m = /^:(\d+)/.exec(l.slice(i + file.length));
    if (m) return `:${m[1]}`;
  }
  return '';
}

/**
 * The failed tests of a vitest report, one line each (`file › test: first line of the error`),
 * so the summary at the end of a long log (all a CI tail may show) names what failed.
 */
export function vitestFailures(report, root = process.cwd()) {
  const out = [];
  for (const file of report.testResults ?? []) {
    const name = relative(root, file.name ?? '?');
    let failedHere = 0;
    for (const t of file.assertionResults ?? []) {
      if (t.status !== 'failed') continue;
      failedHere++;
      const message = t.failureMessages?.[0];
      const at = lineInFile(message, file.name);
      out.push(`${name}${at} › ${t.fullName ?? t.title}: ${firstLine(message)}`);
    }
    if (file.status === 'failed' && failedHere === 0) {
      out.push(`${name}: did not load: ${firstLine(file.message)}`);
    }
  }
  return out;
}

/** The failed (or not run) tests of a Playwright report, one line each, as vitestFailures. */
export function playwrightFailures(report) {
  const out = [];
  const visit = (suite) => {
    for (const spec of suite.specs ?? []) {
      for (const t of spec.tests ?? []) {
        if (t.status === 'expected' || t.status === 'flaky' || t.expectedStatus === 'skipped')
          continue;
        const where = `${spec.file ?? suite.file ?? '?'}:${spec.line ?? '?'} › ${spec.title}`;
        const last = t.results?.[t.results.length - 1];
        const why =
          t.status === 'skipped' ? 'did not run' : firstLine(last?.error?.message ?? last?.status);
        out.push(`${where}: ${why}`);
      }
    }
    for (const child of suite.suites ?? []) visit(child);
  };
  for (const suite of report.suites ?? []) visit(suite);
  return out;
}

function main() {
  check('format', 'npx', ['prettier', '--check', '.']);
  check('lint', 'npx', ['eslint', '.']);
  check('typecheck', 'node', ['scripts/typecheck.mjs']);
  check('doc-refs', 'node', ['scripts/check-doc-refs.mjs']);

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
        const c = vitestCounts(j);
        record('unit', r, c, c.brokenFiles ? ` (${c.brokenFiles} files failed to load)` : '');
        failures.push(...vitestFailures(j).map((f) => `unit: ${f}`));
      } else {
        totals.failed++;
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
      { PLAYWRIGHT_JSON_OUTPUT_NAME: out },
    );
    if (r) {
      const j = readJson(out);
      if (j?.suites) {
        const c = playwrightCounts(j);
        record('e2e', r, c, c.didNotRun ? ` (${c.didNotRun} did not run)` : '');
        failures.push(...playwrightFailures(j).map((f) => `e2e: ${f}`));
      } else {
        totals.failed++;
        summary.push(`e2e: FAILED, no report (${r.seconds}s)`);
      }
    }
  }

  console.log('\n━━ summary');
  for (const line of summary) console.log(line);
  if (failures.length) {
    console.log('failed:');
    for (const line of failures.slice(0, 20)) console.log(`  ${line}`);
    if (failures.length > 20) console.log(`  ... and ${failures.length - 20} more`);
  }
  console.log(counts(totals));
  process.exit(totals.failed ? 1 : 0);
}

// Imported by its test for the counting functions; run as `node scripts/test.mjs`.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
