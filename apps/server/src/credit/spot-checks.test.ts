/**
 * Spot checks (DESIGN §9): the verdict on an answer, and the round trip through a real server
 * to a socket.io volunteer that computes its step with core's CpuBackend, as a CPU tab does.
 */
import { describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import {
  CpuBackend,
  type ErrorReply,
  type ParameterLayout,
  type SpotCheckMessage,
} from '@meshgrad/core';
import { BLOBS_JOB, nextEvent, ServerFixture } from '../server.test-support.ts';
import { stats } from '../jobs/job.test-support.ts';
import { FLAG_FAILED_CHECK, INITIAL_TRUST } from './book.ts';
import { identityId } from './identity.ts';
import { joinAs, TestIdentity } from './identity.test-support.ts';
import { judge, SPOT_CHECK_RELATIVE_BOUND } from './spot-checks.ts';

const bytes = (f: Float32Array) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);

describe('judge', () => {
  const sent = new Float32Array([1, 2, 3, 4]);
  const expected = new Float32Array([0.9, 2.1, 3, 3.8]);

  it('passes the expected step and one within the bound', () => {
    expect(judge(sent, expected, bytes(expected))).toMatchObject({ passed: true, error: 0 });
    const close = expected.map((v, i) => (i === 3 ? v + 0.2 * SPOT_CHECK_RELATIVE_BOUND * 0.5 : v));
    expect(judge(sent, expected, bytes(close)).passed).toBe(true);
  });

  it('fails an answer of the wrong size, one with NaN, and one that skipped the step', () => {
    expect(judge(sent, expected, bytes(new Float32Array(3)))).toEqual({
      passed: false,
      problem: 'params: 12 bytes, expected 16 (4 float32 values)',
    });
    expect(judge(sent, expected, bytes(new Float32Array([0.9, NaN, 3, 3.8])))).toEqual({
      passed: false,
      problem: 'params[1] is NaN',
    });
    const skipped = judge(sent, expected, bytes(sent));
    expect(skipped.passed).toBe(false);
    expect(!skipped.passed && skipped.problem).toMatch(/^the step is off by 1\.00e\+0 of its/);
  });
});

describe('spot checks through a real server', () => {
  const fixture = new ServerFixture('meshgrad-spot-');

  const floatsOf = (b: ArrayBuffer | Uint8Array) => {
    const u = b instanceof Uint8Array ? b : new Uint8Array(b);
    return new Float32Array(Uint8Array.from(u).buffer);
  };

  /** What an honest CPU tab answers. */
  async function honest(layout: ParameterLayout, m: SpotCheckMessage): Promise<Uint8Array> {
    const backend = new CpuBackend(layout, floatsOf(m.params));
    const labels = m.labels
      ? new Uint32Array(
          Uint8Array.from(m.labels instanceof Uint8Array ? m.labels : new Uint8Array(m.labels))
            .buffer,
        )
      : null;
    backend.step({ size: m.size, x: floatsOf(m.x), labels }, m.learningRate);
    return bytes(await backend.readParameters());
  }

  async function settle(s: Socket): Promise<void> {
    // A round trip the server answers after taking what was sent before it.
    await s.timeout(5_000).emitWithAck('challenge', {});
  }

  it('a pass verifies and raises trust; a NaN answer voids the credit since and flags', async () => {
    const server = await fixture.start({ jobs: [BLOBS_JOB] });
    const job = server.jobs.get(BLOBS_JOB.id)!;
    const me = await TestIdentity.make();
    const s = fixture.socket();
    const a = await joinAs(s, me, { name: 'Ada' });
    const id = identityId(me.publicKey);
    const row = () => server.credit.adminReport().identities.find((r) => r.id === id)!;

    s.emit('stats', stats(100));
    await settle(s);
    const earned = row().credit;
    expect(earned).toBeGreaterThan(0);

    const first = nextEvent<SpotCheckMessage>(s, 'spotCheck');
    await server.spotChecks.check(job, a.workerId);
    const m1 = await first;
    expect(m1.size).toBe(BLOBS_JOB.batchSize);
    s.emit('spotCheckAnswer', { checkId: m1.checkId, params: await honest(job.layout, m1) });
    await settle(s);
    expect(row()).toMatchObject({ checksPassed: 1, checksFailed: 0, credit: earned, flags: [] });
    expect(row().trust).toBeGreaterThan(INITIAL_TRUST);

    // More credit, then a wrong answer: what was earned since the pass goes, nothing before it.
    s.emit('stats', stats(250));
    await settle(s);
    expect(row().credit).toBeGreaterThan(earned);
    const second = nextEvent<SpotCheckMessage>(s, 'spotCheck');
    await server.spotChecks.check(job, a.workerId);
    const m2 = await second;
    const bad = floatsOf(await honest(job.layout, m2));
    bad[0] = NaN;
    s.emit('spotCheckAnswer', { checkId: m2.checkId, params: bytes(bad) });
    await settle(s);
    expect(row()).toMatchObject({ checksPassed: 1, checksFailed: 1, credit: earned });
    expect(row().flags).toContain(FLAG_FAILED_CHECK);
    expect(row().trust).toBeLessThan(INITIAL_TRUST);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain('meshgrad_spot_checks_total{job="blobs",outcome="failed"} 1');
  });

  it('fails an answer of the wrong size, and refuses an answer to no open check', async () => {
    const server = await fixture.start({ jobs: [BLOBS_JOB] });
    const job = server.jobs.get(BLOBS_JOB.id)!;
    const me = await TestIdentity.make();
    const s = fixture.socket();
    const a = await joinAs(s, me);
    const refused: Array<ErrorReply & { event: string }> = [];
    s.on('refused', (r: ErrorReply & { event: string }) => refused.push(r));
    const check = nextEvent<SpotCheckMessage>(s, 'spotCheck');
    await server.spotChecks.check(job, a.workerId);
    const m = await check;
    s.emit('spotCheckAnswer', { checkId: m.checkId, params: new Uint8Array(8) });
    await settle(s);
    const row = server.credit.adminReport().identities[0]!;
    expect(row).toMatchObject({ checksFailed: 1, flags: [FLAG_FAILED_CHECK] });
    // The same check again, now closed, and one never sent: refused, nothing changes.
    s.emit('spotCheckAnswer', { checkId: m.checkId, params: new Uint8Array(8) });
    s.emit('spotCheckAnswer', { checkId: 'c-0000000000000000', params: new Uint8Array(8) });
    await settle(s);
    expect(refused.map((r) => [r.event, r.code, r.message])).toEqual([
      [
        'spotCheckAnswer',
        'ERR_UNEXPECTED',
        `checkId: no open spot check ${m.checkId} for this worker`,
      ],
      [
        'spotCheckAnswer',
        'ERR_UNEXPECTED',
        'checkId: no open spot check c-0000000000000000 for this worker',
      ],
    ]);
    expect(server.credit.adminReport().identities[0]?.checksFailed).toBe(1);
  });
});
