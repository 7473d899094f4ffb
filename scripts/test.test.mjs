// The counting of `npm test`'s closing line, on reports in the shape vitest and Playwright write
// (the shapes were taken from real runs of a failing, a passing and skipped tests).
import { describe, expect, it } from 'vitest';
import { playwrightCounts, playwrightFailures, vitestCounts, vitestFailures } from './test.mjs';

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

describe('the failure lines of the summary', () => {
  it('names each failed vitest test with its file, the line that failed and its error', () => {
    const report = {
      testResults: [
        {
          name: '/repo/apps/a.test.ts',
          status: 'failed',
          assertionResults: [
            {
              title: 'fails',
              fullName: 'group fails',
              status: 'failed',
              failureMessages: ['\nAssertionError: expected 1 to be 2\n    at x.ts:1'],
            },
            {
              title: 'polls',
              fullName: 'group polls',
              status: 'failed',
              // As vitest stacks a failed expect.poll: the matcher's frame, then the test's line.
              failureMessages: [
                'Error: expected false to be true // Object.is equality\n' +
                  '    at Proxy.__VITEST_POLL_CHAIN__ (file:///repo/node_modules/vitest/x.js:37:47)\n' +
                  '    at /repo/apps/a.test.ts:68:52\n' +
                  '    at /repo/apps/a.test.ts:12:3',
              ],
            },
            { title: 'ok', status: 'passed' },
          ],
        },
        {
          name: '/repo/b.test.ts',
          status: 'failed',
          message: 'Cannot find module x',
          assertionResults: [],
        },
      ],
    };
    expect(vitestFailures(report, '/repo')).toEqual([
      'apps/a.test.ts › group fails: AssertionError: expected 1 to be 2',
      'apps/a.test.ts:68 › group polls: Error: expected false to be true // Object.is equality',
      'b.test.ts: did not load: Cannot find module x',
    ]);
  });

  it('names each failed or not-run Playwright test with its place, not the passing or skipped', () => {
    const spec = (title, line, status, expectedStatus, error) => ({
      title,
      file: 'x.spec.ts',
      line,
      tests: [{ status, expectedStatus, results: [{ status: 'failed', error }] }],
    });
    const report = {
      suites: [
        {
          title: 'x.spec.ts',
          specs: [
            spec('ok', 1, 'expected', 'passed'),
            spec('bad', 2, 'unexpected', 'passed', {
              message: '\u001b[31mError: timed out\u001b[39m\nmore',
            }),
            spec('after', 3, 'skipped', 'passed'),
            spec('skips itself', 4, 'skipped', 'skipped'),
          ],
        },
      ],
    };
    expect(playwrightFailures(report)).toEqual([
      'x.spec.ts:2 › bad: Error: timed out',
      'x.spec.ts:3 › after: did not run',
    ]);
  });
});
