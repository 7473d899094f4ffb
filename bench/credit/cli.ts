/**
 * `npm run bench:credit`: what spot checks (docs/design.md §9) cost at their default rates, on
 * the default job (the 784-128-10 MLP on MNIST), measured on the real code:
 *
 * - **The volunteer's throughput.** A tab answers a check in its training thread, on a second
 *   backend of its training kind: it copies the parameters and minibatch out of the message,
 *   writes them, steps once and reads the parameters back (apps/client/src/volunteer/
 *   training.worker.ts). Side by side in this process, round after round: the same training
 *   steps (CpuBackend, the tab's CPU fallback) for one check interval's worth of time, alone
 *   and with one check answered in the middle; the order alternates so drift cancels.
 * - **The server's CPU.** `SpotChecks.check` (copy of the checkpoint, a random minibatch, the
 *   server's own CpuBackend step) and `SpotChecks.answer` (the verdict, the credit book) on a
 *   real `Job` and `CreditBook`, timed per check; the share of one core is that cost times the
 *   check rate of 8 volunteers.
 * - **The bytes** a check moves each way, per second at the default rates.
 *
 * Rates: one check per `SPOT_CHECK_MIN_INTERVAL_S` on average for an identity of trust 0 (the
 * worst case: a distrusted one), one per `intervalS(INITIAL_TRUST)` for a new identity.
 * Options: --rounds=5 --checks=40 --workers=8. Ends with one JSON line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpuBackend, Rng, type Backend, type SpotCheckMessage } from '@meshgrad/core';
import { CreditBook, INITIAL_TRUST } from '../../apps/server/src/credit/book.ts';
import {
  randomMinibatch,
  SPOT_CHECK_MIN_INTERVAL_S,
  SpotChecks,
} from '../../apps/server/src/credit/spot-checks.ts';
import { openTestJob, closeTestJobs } from '../../apps/server/src/jobs/job.test-support.ts';
import { DEFAULT_JOB } from '../../apps/server/src/jobs/job-spec.ts';
import type { Job } from '../../apps/server/src/jobs/job.ts';
import { createLogger } from '../../apps/server/src/logger.ts';
import { ServerMetrics } from '../../apps/server/src/metrics.ts';
import { DataStore } from '../../apps/server/src/store.ts';

interface Options {
  readonly rounds: number;
  readonly checks: number;
  readonly workers: number;
}

function parseArgs(argv: readonly string[]): Options {
  const o = { rounds: 5, checks: 40, workers: 8 };
  for (const a of argv) {
    const [key, value = ''] = a.split('=', 2);
    const n = Number(value);
    if (key === '--rounds') o.rounds = n;
    else if (key === '--checks') o.checks = n;
    else if (key === '--workers') o.workers = n;
    else throw new Error(`unknown option ${a} (use --rounds=, --checks=, --workers=)`);
  }
  for (const [k, v] of Object.entries(o)) {
    if (!(Number.isInteger(v) && v >= 1)) throw new Error(`--${k}: a whole number ≥ 1`);
  }
  return o;
}

const log = (line: string) => console.log(`[bench:credit] ${line}`);
const f = (x: number, digits = 2) => x.toFixed(digits);
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const spread = (xs: readonly number[], show: (x: number) => string) =>
  `${show(median(xs))} (${show(Math.min(...xs))} – ${show(Math.max(...xs))})`;

/** What the tab does with a check message (training.worker.ts `spotCheck`); returns the answer. */
async function answerCheck(backend: Backend, m: SpotCheckMessage): Promise<ArrayBuffer> {
  const owned = (b: ArrayBuffer | Uint8Array) =>
    (b instanceof Uint8Array ? Uint8Array.from(b) : new Uint8Array(b.slice(0))).buffer;
  const params = new Float32Array(owned(m.params));
  backend.writeParameters(params);
  const labels = m.labels ? new Uint32Array(owned(m.labels)) : null;
  backend.step({ size: m.size, x: new Float32Array(owned(m.x)), labels }, m.learningRate);
  await backend.drainStats();
  const after = await backend.readParameters();
  return after.slice().buffer;
}

/** Trains `steps` steps on `backend`, draining stats every 25 as the tab's loop does; ms. */
async function train(
  backend: Backend,
  job: Job,
  steps: number,
  seed: number,
  check?: { at: number; run: () => Promise<number> },
): Promise<{ ms: number; checkMs: number }> {
  const rng = new Rng(seed);
  const random = () => rng.next();
  const batches = Array.from({ length: Math.min(steps, 64) }, () => randomMinibatch(job, random));
  let checkMs = 0;
  const started = performance.now();
  for (let i = 0; i < steps; i++) {
    if (check && i === check.at) checkMs = await check.run();
    backend.step(batches[i % batches.length]!, job.learningRate);
    if (i % 25 === 24) await backend.drainStats();
  }
  await backend.drainStats();
  return { ms: performance.now() - started, checkMs };
}

export async function main(argv: readonly string[]): Promise<void> {
  const o = parseArgs(argv);
  const dir = await mkdtemp(join(tmpdir(), 'bench-credit-'));
  try {
    const job = await openTestJob(new DataStore(dir), DEFAULT_JOB);
    const layout = job.layout;
    const metrics = new ServerMetrics();
    const book = new CreditBook(dir, metrics, createLogger('silent'));
    const sent: SpotCheckMessage[] = [];
    const checks = new SpotChecks(
      new Map([[job.id, job]]),
      book,
      (_w, m) => sent.push(m),
      createLogger('silent'),
    );
    const newIntervalS = checks.intervalS(INITIAL_TRUST);
    log(
      `${DEFAULT_JOB.name}: ${layout.size} parameters, batch ${DEFAULT_JOB.batchSize}; a check ` +
        `every ${f(SPOT_CHECK_MIN_INTERVAL_S, 0)} s at trust 0, every ${f(newIntervalS, 1)} s for a new identity (trust ${INITIAL_TRUST})`,
    );

    // --- the server: one check made and judged, timed ------------------------------------------
    const worker = job.join(undefined, 's0', { backend: 'cpu', userAgent: 'bench:credit' });
    book.bind(worker.id, { id: 'bench-identity' });
    const honest = new CpuBackend(layout, job.initialParams());
    const serverMs: number[] = [];
    for (let i = 0; i < o.checks; i++) {
      const t0 = performance.now();
      const id = await checks.check(job, worker.id);
      const t1 = performance.now();
      if (id === null) throw new Error('the server made no check');
      const answer = new Uint8Array(await answerCheck(honest, sent.at(-1)!));
      const t2 = performance.now();
      const refused = checks.answer(worker.id, id, answer);
      const t3 = performance.now();
      if (refused !== null) throw new Error(`the server refused the answer: ${refused}`);
      serverMs.push(t1 - t0 + (t3 - t2));
    }
    const passed = book.adminReport().identities.find((r) => r.id === 'bench-identity');
    if (!passed || passed.checksPassed !== o.checks) {
      throw new Error(`expected ${o.checks} passed checks, the book has ${passed?.checksPassed}`);
    }
    const perCheckMs = median(serverMs);
    const serverShare = (trustInterval: number) => (o.workers * perCheckMs) / 1000 / trustInterval;
    log(
      `server: ${spread(serverMs, (x) => `${f(x)} ms`)} per check (make + judge, median and ` +
        `range of ${o.checks}); ${o.workers} volunteers: ${pct(serverShare(SPOT_CHECK_MIN_INTERVAL_S))} of a core at trust 0, ` +
        `${pct(serverShare(newIntervalS))} when new`,
    );

    // --- the bytes -------------------------------------------------------------------------------
    const m = sent[0]!;
    const down = m.params.byteLength + m.x.byteLength + (m.labels?.byteLength ?? 0);
    const up = layout.size * 4;
    log(
      `bytes per check: ${f(down / 1024, 0)} KiB to the tab, ${f(up / 1024, 0)} KiB back; ` +
        `at trust 0 ${f(down / 1024 / SPOT_CHECK_MIN_INTERVAL_S, 1)} KiB/s down and ${f(up / 1024 / SPOT_CHECK_MIN_INTERVAL_S, 1)} KiB/s up ` +
        `(new: ${f(down / 1024 / newIntervalS, 1)} and ${f(up / 1024 / newIntervalS, 1)})`,
    );

    // --- the tab: training alone against training with one check per interval -------------------
    const training = new CpuBackend(layout, job.initialParams());
    const checkBackend = new CpuBackend(layout, job.initialParams());
    // Calibrate: how many steps fill one check interval at trust 0.
    const probe = await train(training, job, 100, 1);
    const steps = Math.max(100, Math.round((SPOT_CHECK_MIN_INTERVAL_S * 1000 * 100) / probe.ms));
    log(
      `tab (CpuBackend): ${f((100 * DEFAULT_JOB.batchSize) / (probe.ms / 1000), 0)} samples/s; ` +
        `${steps} steps per ${SPOT_CHECK_MIN_INTERVAL_S} s round, ${o.rounds} rounds`,
    );
    const overheads: number[] = [];
    const checkShares: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const message = sent[r % sent.length]!;
      const withCheck = () =>
        train(training, job, steps, 10 + r, {
          at: steps >> 1,
          run: async () => {
            const t = performance.now();
            await answerCheck(checkBackend, message);
            return performance.now() - t;
          },
        });
      const alone = () => train(training, job, steps, 10 + r);
      let a2: { ms: number };
      let b2: { ms: number; checkMs: number };
      if (r % 2) {
        a2 = await alone();
        b2 = await withCheck();
      } else {
        b2 = await withCheck();
        a2 = await alone();
      }
      const overhead = b2.ms / a2.ms - 1;
      overheads.push(overhead);
      checkShares.push(b2.checkMs / b2.ms);
      log(
        `round ${r + 1}: alone ${f(a2.ms / 1000)} s, with a check ${f(b2.ms / 1000)} s ` +
          `(the check itself ${f(b2.checkMs)} ms): throughput cost ${pct(overhead)}`,
      );
    }
    const tabShareNew = median(checkShares) * (SPOT_CHECK_MIN_INTERVAL_S / newIntervalS);
    log(
      `tab: throughput cost at trust 0 ${spread(overheads, pct)} (whole rounds, median and range); ` +
        `the check's own time ${spread(checkShares, pct)} of the round; a new identity's rate ${pct(tabShareNew)}`,
    );
    honest.destroy();
    training.destroy();
    checkBackend.destroy();
    console.log(
      JSON.stringify({
        bench: 'credit',
        job: DEFAULT_JOB.id,
        server_ms_per_check: Number(f(perCheckMs, 3)),
        server_core_share_8_trust0: Number(serverShare(SPOT_CHECK_MIN_INTERVAL_S).toFixed(5)),
        server_core_share_8_new: Number(serverShare(newIntervalS).toFixed(5)),
        tab_throughput_cost_trust0: Number(median(overheads).toFixed(5)),
        tab_check_share_trust0: Number(median(checkShares).toFixed(5)),
        tab_check_share_new: Number(tabShareNew.toFixed(5)),
        bytes_per_check_down: down,
        bytes_per_check_up: up,
      }),
    );
  } finally {
    await closeTestJobs();
    await rm(dir, { recursive: true, force: true });
  }
}
