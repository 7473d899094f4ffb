/**
 * Spot checks (DESIGN §9): now and then the server asks a volunteer's tab to compute one step
 * from given parameters on a given minibatch, and compares the answer with its own
 * `CpuBackend` step. New and distrusted identities are asked more often than trusted ones, as
 * BOINC's adaptive replication does. A pass raises the identity's trust; a failure (wrong
 * values, wrong size, a non-finite value) voids the credit it earned since its last pass and
 * lowers its trust (credit/book.ts). An unanswered check (a paused or closed tab) says nothing.
 */
import { randomBytes } from 'node:crypto';
import { CpuBackend, type Batch, type SpotCheckMessage } from '@meshgrad/core';
import type { Job } from '../jobs/job.ts';
import type { Logger } from '../logger.ts';
import type { CreditBook } from './book.ts';

/**
 * Largest error of the tab's step, relative to the largest update of the server's step. The
 * kernel checks (packages/shaders/src/checks) hold WebGPU to γ_n-sized errors relative to each
 * sum's magnitude, about 1e-5 for these sums; 1e-3 leaves room for reductions in another
 * order, while an answer that skipped the step, or stepped on other data, is off by order 1.
 */
export const SPOT_CHECK_RELATIVE_BOUND = 1e-3;
/** Mean seconds between checks of one worker at trust 0 and at trust 1 (geometric between). */
export const SPOT_CHECK_MIN_INTERVAL_S = 10;
export const SPOT_CHECK_MAX_INTERVAL_S = 300;
/** An answer later than this is no answer: the check is dropped without a verdict (ms). */
export const SPOT_CHECK_TIMEOUT_MS = 30_000;
/** Checks open at once, over all jobs: each holds its expected parameters. */
export const MAX_OPEN_SPOT_CHECKS = 64;

export interface SpotCheckOptions {
  /** Mean seconds between checks at trust 0; default `SPOT_CHECK_MIN_INTERVAL_S`. */
  readonly minIntervalS?: number;
  /** Mean seconds between checks at trust 1; default `SPOT_CHECK_MAX_INTERVAL_S`. */
  readonly maxIntervalS?: number;
}

interface OpenCheck {
  readonly workerId: string;
  readonly identity: string;
  readonly jobId: string;
  readonly sent: Float32Array;
  readonly expected: Float32Array;
  readonly at: number;
}

/** The verdict on one answer; `problem` names what was wrong. */
export type SpotCheckVerdict =
  | { readonly passed: true; readonly error: number }
  | { readonly passed: false; readonly problem: string };

/** Bytes as float32 values, copied so the view is aligned and owned. */
function floats(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer, 0, Math.floor(bytes.byteLength / 4));
}

/** Compares a tab's step with the server's; `sent` is where both started. */
export function judge(
  sent: Float32Array,
  expected: Float32Array,
  answer: Uint8Array,
): SpotCheckVerdict {
  if (answer.byteLength !== expected.length * 4) {
    return {
      passed: false,
      problem: `params: ${answer.byteLength} bytes, expected ${expected.length * 4} (${expected.length} float32 values)`,
    };
  }
  const got = floats(answer);
  let update = 0;
  let magnitude = 0;
  for (let i = 0; i < expected.length; i++) {
    const g = got[i]!;
    if (!Number.isFinite(g)) return { passed: false, problem: `params[${i}] is ${g}` };
    update = Math.max(update, Math.abs(expected[i]! - sent[i]!));
    magnitude = Math.max(magnitude, Math.abs(sent[i]!));
  }
  // A step that moved nothing is compared at float32 resolution of the parameters.
  const scale = Math.max(update, magnitude * 2 ** -23, Number.MIN_VALUE);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(got[i]! - expected[i]!) / scale);
  }
  if (worst > SPOT_CHECK_RELATIVE_BOUND) {
    return {
      passed: false,
      problem: `the step is off by ${worst.toExponential(2)} of its largest update (bound ${SPOT_CHECK_RELATIVE_BOUND})`,
    };
  }
  return { passed: true, error: worst };
}

export class SpotChecks {
  private readonly open = new Map<string, OpenCheck>();
  private readonly minIntervalS: number;
  private readonly maxIntervalS: number;

  constructor(
    private readonly jobs: ReadonlyMap<string, Job>,
    private readonly book: CreditBook,
    private readonly send: (workerId: string, message: SpotCheckMessage) => void,
    private readonly log: Logger,
    options: SpotCheckOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.minIntervalS = options.minIntervalS ?? SPOT_CHECK_MIN_INTERVAL_S;
    this.maxIntervalS = options.maxIntervalS ?? SPOT_CHECK_MAX_INTERVAL_S;
  }

  /** Mean seconds between two checks of an identity with this trust. */
  intervalS(trust: number): number {
    return this.minIntervalS * (this.maxIntervalS / this.minIntervalS) ** trust;
  }

  /** Once a second: drops late checks, then picks workers to check at their identity's rate. */
  tick(now = Date.now()): void {
    for (const [id, c] of this.open) {
      if (now - c.at > SPOT_CHECK_TIMEOUT_MS) this.open.delete(id);
    }
    const busy = new Set([...this.open.values()].map((c) => c.workerId));
    for (const job of this.jobs.values()) {
      // A custom WGSL kernel has no CPU step to compare with; sync rounds run no ASGD loop.
      if (job.state !== 'running' || job.kernel !== null || !job.training.peerToPeer) continue;
      for (const w of job.workers.values()) {
        if (w.paused || !w.reported || busy.has(w.id)) continue;
        const identity = this.book.identityOf(w.id);
        if (identity === undefined) continue;
        const trust = this.book.trustOf(identity);
        if (this.random() < 1 / this.intervalS(trust)) {
          this.check(job, w.id, now).catch((err: unknown) =>
            this.log.error({ err, worker: w.id }, 'spot check could not be made'),
          );
        }
      }
    }
  }

  /** Sends one check to `workerId` of `job` now; resolves its id, or null when none was sent. */
  async check(job: Job, workerId: string, now = Date.now()): Promise<string | null> {
    const identity = this.book.identityOf(workerId);
    if (identity === undefined || this.open.size >= MAX_OPEN_SPOT_CHECKS) return null;
    const sent = Float32Array.from(job.checkpointParams().params);
    const batch = randomMinibatch(job, this.random);
    const reference = new CpuBackend(job.layout, sent);
    reference.step(batch, job.learningRate);
    const expected = await reference.readParameters();
    reference.destroy();
    const checkId = `c-${randomBytes(8).toString('hex')}`;
    this.open.set(checkId, { workerId, identity, jobId: job.id, sent, expected, at: now });
    this.send(workerId, {
      checkId,
      jobId: job.id,
      learningRate: job.learningRate,
      params: bytesOf(sent),
      size: batch.size,
      x: bytesOf(batch.x),
      labels: batch.labels ? bytesOf(batch.labels) : null,
    });
    return checkId;
  }

  /**
   * A tab's answer. Returns null when taken, else why it was refused (no such check open for
   * this worker); a wrong answer is taken, and fails the check.
   */
  answer(workerId: string, checkId: string, params: Uint8Array): string | null {
    const c = this.open.get(checkId);
    if (!c || c.workerId !== workerId)
      return `checkId: no open spot check ${checkId} for this worker`;
    this.open.delete(checkId);
    const verdict = judge(c.sent, c.expected, params);
    this.book.spotCheck(c.identity, c.jobId, verdict.passed);
    if (!verdict.passed) {
      this.log.warn(
        { identity: c.identity, worker: workerId, job: c.jobId, problem: verdict.problem },
        'spot check failed: unverified credit voided',
      );
    }
    return null;
  }

  /** Checks open now (for tests and the metrics). */
  get openCount(): number {
    return this.open.size;
  }
}

/** A random minibatch of the job's training rows (with replacement), at the job's batch size. */
export function randomMinibatch(job: Job, random: () => number): Batch {
  const { train } = job;
  const size = Math.min(job.spec.batchSize, train.count);
  const x = new Float32Array(size * train.features);
  const labels = train.labels ? new Uint32Array(size) : null;
  for (let i = 0; i < size; i++) {
    const row = Math.floor(random() * train.count);
    x.set(train.x.subarray(row * train.features, (row + 1) * train.features), i * train.features);
    if (labels && train.labels) labels[i] = train.labels[row]!;
  }
  return { size, x, labels };
}

function bytesOf(a: Float32Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
