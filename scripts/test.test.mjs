// The counting of `npm test`'s closing line, on reports in the shape vitest and Playwright write
// (the shapes were taken from real runs of a failing, a passing and skipped tests).
import { describe, expect, it } from 'vitest';
import { playwrightCounts, vitestCounts } from './test.mjs';

describe('vitestCounts', () => {
  it('counts a failing test inside a describe once, and a file that cannot load once', () => {
    const report = {
      // vitest's own totals count the failing test's file and describe as failed suites too.
      numFailedTests: 1,
      numFailedTestSuites: 3,
      testResults: [
        {
          name: 'a.test.ts',
          status: 'failed',
          assertionResults: [
            { title: 'fails', status: 'failed' },
            { title: 'ok', status: 'passed' },
            { title: 'sk', status: 'skipped' },
            { title: 'later', status: 'todo' },
          ],
        },
        {
          name: 'b.test.ts',
          status: 'failed',
          message: 'Cannot find module',
          assertionResults: [],
        },
        { name: 'c.test.ts', status: 'passed', assertionResults: [{ status: 'passed' }] },
      ],
    };
    expect(vitestCounts(report)).toEqual({ passed: 2, failed: 2, skipped: 2, brokenFiles: 1 });
  });
});

describe('playwrightCounts', () => {
  const test = (title, status, expectedStatus) => ({ title, tests: [{ status, expectedStatus }] });
  it('counts tests that did not run after a failure in a serial file as failed, skips as skipped', () => {
    const report = {
      suites: [
        {
          title: 'x.spec.ts',
          specs: [],
          suites: [
            {
              title: 'serial',
              specs: [
                test('a passes', 'expected', 'passed'),
                test('b fails', 'unexpected', 'passed'),
                test('c after the failure', 'skipped', 'passed'),
                test('d would have skipped itself', 'skipped', 'passed'),
              ],
            },
          ],
        },
        {
          title: 'y.spec.ts',
          specs: [
            test('e skipped at run time', 'skipped', 'skipped'),
            test('f flaky', 'flaky', 'passed'),
          ],
        },
      ],
    };
    expect(playwrightCounts(report)).toEqual({ passed: 2, failed: 3, skipped: 1, didNotRun: 2 });
  });
});
