import { describe, expect, it } from 'vitest';
import type { SyncRoundMessage } from '@meshgrad/core';
import { createLogger } from '../logger.ts';
import { SyncRounds, type RoundResult } from './sync-rounds.ts';

const bytes = (values: readonly number[]) => new Uint8Array(Float32Array.from(values).buffer);

/** A coordinator over `workers` (mutable: the test adds and removes), recording what it sends. */
function setup(opts: { workers: string[]; params?: number[]; timeoutMs?: number }) {
  const sent: Array<{ to: string; message: SyncRoundMessage }> = [];
  const rounds: RoundResult[] = [];
  const warnings: unknown[] = [];
  const log = createLogger('silent');
  log.warn = ((obj: unknown) => warnings.push(obj)) as typeof log.warn;
  const clock = { now: 1_000, running: true };
  const coordinator = new SyncRounds({
    jobId: 'j',
    params: Float32Array.from(opts.params ?? [1, 2, 3]),
    roundTimeoutMs: opts.timeoutMs ?? 5_000,
    participants: () => opts.workers,
    running: () => clock.running,
    learningRate: () => 0.5,
    send: (to, message) => sent.push({ to, message }),
    onRound: (r) => rounds.push(r),
    log,
    now: () => clock.now,
  });
  return { coordinator, sent, rounds, warnings, clock };
}

const paramsOf = (m: SyncRoundMessage) =>
  Array.from(new Float32Array((m.params as Uint8Array).slice().buffer));

describe('SyncRounds', () => {
  it('sends each round to every worker and waits for all before applying the exact mean', () => {
    const { coordinator, sent, rounds } = setup({ workers: ['a', 'b', 'c'] });
    coordinator.kick();
    expect(sent.map((s) => s.to)).toEqual(['a', 'b', 'c']);
    expect(sent[0]!.message).toMatchObject({ jobId: 'j', round: 1, learningRate: 0.5 });
    expect(paramsOf(sent[0]!.message)).toEqual([1, 2, 3]);

    expect(
      coordinator.contribute('a', { round: 1, samples: 4, loss: 1, params: bytes([0, 0, 0]) }),
    ).toBeNull();
    expect(
      coordinator.contribute('b', { round: 1, samples: 4, loss: 3, params: bytes([3, 3, 3]) }),
    ).toBeNull();
    // The barrier: two of three answered, nothing applied, no new round.
    expect(rounds).toEqual([]);
    expect(sent).toHaveLength(3);
    expect(Array.from(coordinator.params)).toEqual([1, 2, 3]);
    expect(coordinator.pending()).toEqual(['c']);

    expect(
      coordinator.contribute('c', { round: 1, samples: 4, params: bytes([0.3, 6, -1.5]) }),
    ).toBeNull();
    const expected = [(0 + 3 + 0.3) / 3, (0 + 3 + 6) / 3, (0 + 3 - 1.5) / 3].map(Math.fround);
    expect(Array.from(coordinator.params)).toEqual(expected);
    expect(rounds).toEqual([{ round: 1, contributors: 3, timedOut: 0, samples: 12, loss: 2 }]);
    // The next round starts at once with the new parameters.
    expect(sent.slice(3).map((s) => [s.to, s.message.round])).toEqual([
      ['a', 2],
      ['b', 2],
      ['c', 2],
    ]);
    expect(paramsOf(sent[3]!.message)).toEqual(expected);
  });

  it('a worker that joins mid-round waits for the next round', () => {
    const workers = ['a'];
    const { coordinator, sent } = setup({ workers });
    coordinator.kick();
    workers.push('b');
    coordinator.kick();
    expect(sent.map((s) => s.to)).toEqual(['a']);
    expect(
      coordinator.contribute('b', { round: 1, samples: 1, params: bytes([0, 0, 0]) }),
    ).toMatchObject({ code: 'ERR_UNEXPECTED' });
    expect(
      coordinator.contribute('a', { round: 1, samples: 1, params: bytes([2, 2, 2]) }),
    ).toBeNull();
    expect(Array.from(coordinator.params)).toEqual([2, 2, 2]);
    expect(sent.slice(1).map((s) => [s.to, s.message.round])).toEqual([
      ['a', 2],
      ['b', 2],
    ]);
  });

  it('a worker that leaves releases the barrier; its share is not applied', () => {
    const workers = ['a', 'b'];
    const { coordinator, rounds } = setup({ workers });
    coordinator.kick();
    coordinator.contribute('a', { round: 1, samples: 1, params: bytes([4, 4, 4]) });
    workers.splice(1, 1);
    coordinator.leave('b');
    expect(rounds).toEqual([{ round: 1, contributors: 1, timedOut: 0, samples: 1 }]);
    expect(Array.from(coordinator.params)).toEqual([4, 4, 4]);
    expect(coordinator.round).toBe(2);
    expect(coordinator.pending()).toEqual(['a']);
  });

  it('when every worker leaves, the parameters stay and the next worker starts a round', () => {
    const workers = ['a'];
    const { coordinator, rounds, sent } = setup({ workers });
    coordinator.kick();
    workers.length = 0;
    coordinator.leave('a');
    expect(rounds).toEqual([{ round: 1, contributors: 0, timedOut: 0, samples: 0 }]);
    expect(coordinator.inProgress).toBe(false);
    expect(Array.from(coordinator.params)).toEqual([1, 2, 3]);
    workers.push('z');
    coordinator.kick();
    expect(sent.at(-1)).toMatchObject({ to: 'z', message: { round: 2 } });
  });

  it('drops a stuck worker after the round timeout, with a warning, and goes on', () => {
    const { coordinator, rounds, warnings, clock, sent } = setup({
      workers: ['a', 'slow'],
      timeoutMs: 5_000,
    });
    coordinator.kick();
    coordinator.contribute('a', { round: 1, samples: 2, params: bytes([0, 1, 0]) });
    clock.now += 4_999;
    coordinator.tick();
    expect(rounds).toEqual([]);
    clock.now += 2;
    coordinator.tick();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ round: 1, workers: ['slow'] });
    expect(rounds).toEqual([{ round: 1, contributors: 1, timedOut: 1, samples: 2 }]);
    expect(Array.from(coordinator.params)).toEqual([0, 1, 0]);
    // The slow worker is still in the job, so round 2 asks it again; its late answer is refused.
    expect(sent.slice(2).map((s) => s.to)).toEqual(['a', 'slow']);
    expect(
      coordinator.contribute('slow', { round: 1, samples: 2, params: bytes([9, 9, 9]) }),
    ).toMatchObject({ code: 'ERR_UNEXPECTED', message: expect.stringMatching(/^round: 1 is not/) });
    expect(Array.from(coordinator.params)).toEqual([0, 1, 0]);
  });

  it('a paused job starts no round and its clock stands still; resuming goes on', () => {
    const { coordinator, clock, sent, rounds } = setup({ workers: ['a'], timeoutMs: 1_000 });
    clock.running = false;
    coordinator.kick();
    expect(sent).toEqual([]);
    clock.running = true;
    coordinator.kick();
    expect(sent).toHaveLength(1);
    clock.running = false;
    clock.now += 10_000;
    coordinator.tick();
    expect(rounds).toEqual([]);
    clock.running = true;
    coordinator.tick();
    expect(rounds).toEqual([]);
    coordinator.contribute('a', { round: 1, samples: 1, params: bytes([1, 1, 1]) });
    // Finished while running: the next round began.
    expect(rounds).toHaveLength(1);
    expect(sent).toHaveLength(2);
  });

  it('refuses bad contributions and applies none of them', () => {
    const { coordinator, rounds } = setup({ workers: ['a', 'b'] });
    coordinator.kick();
    const refused = (params: Uint8Array, round = 1) =>
      coordinator.contribute('a', { round, samples: 1, params });
    expect(refused(bytes([1, 2]))).toEqual({
      code: 'ERR_INVALID_PAYLOAD',
      message: 'params: must be 3 float32 values (12 bytes), got 8 bytes',
    });
    expect(refused(new Uint8Array(13))).toMatchObject({ code: 'ERR_INVALID_PAYLOAD' });
    expect(refused(bytes([1, NaN, 3]))).toEqual({
      code: 'ERR_INVALID_PAYLOAD',
      message: 'params: value 1 is not finite',
    });
    expect(refused(bytes([1, 2, Infinity]))).toMatchObject({ code: 'ERR_INVALID_PAYLOAD' });
    expect(refused(bytes([1, 2, 3]), 7)).toMatchObject({ code: 'ERR_UNEXPECTED' });
    expect(
      coordinator.contribute('stranger', { round: 1, samples: 1, params: bytes([1, 2, 3]) }),
    ).toMatchObject({ code: 'ERR_UNEXPECTED' });
    // Still waiting for both; a good contribution from each is what counts.
    expect(coordinator.pending().sort()).toEqual(['a', 'b']);
    expect(refused(bytes([2, 2, 2]))).toBeNull();
    expect(refused(bytes([5, 5, 5]))).toMatchObject({
      code: 'ERR_UNEXPECTED',
      message: expect.stringMatching(/already contributed/),
    });
    coordinator.contribute('b', { round: 1, samples: 1, params: bytes([4, 4, 4]) });
    expect(rounds).toHaveLength(1);
    expect(Array.from(coordinator.params)).toEqual([3, 3, 3]);
  });

  it('reads unaligned bytes (a Buffer slice) correctly', () => {
    const { coordinator } = setup({ workers: ['a'], params: [0, 0] });
    coordinator.kick();
    const raw = new Uint8Array(9);
    raw.set(bytes([1.5, -2]), 1);
    expect(
      coordinator.contribute('a', { round: 1, samples: 1, params: raw.subarray(1) }),
    ).toBeNull();
    expect(Array.from(coordinator.params)).toEqual([1.5, -2]);
  });
});
