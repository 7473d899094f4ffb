import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../model/cpu-backend.ts';
import { initParameters } from '../model/init.ts';
import { parameterLayout, blockRange } from '../model/spec.ts';
import { encodeStateMessage, idHash } from '../codec/message.ts';
import { Rng } from '../util/rng.ts';
import type { Batch } from '../data/dataset.ts';
import { decodeStateMessage } from '../codec/message.ts';
import { decodeFloat16, encodeFloat16 } from '../codec/encoding.ts';
import { AsgdWorker, type BlockSink } from './worker.ts';
import { Mailbox } from './mailbox.ts';
import { ADOPTED_GUARD, SPREAD_WARMUP, TRUST_MIN_BLOCKS, type GuardMode } from './robust.ts';

const layout = parameterLayout({ kind: 'softmax', inputs: 8, classes: 3 }, 10);

function batchSource(seed: number): () => Batch {
  const rng = new Rng(seed);
  return () => {
    const size = 4;
    const x = new Float32Array(size * 8);
    const labels = new Uint32Array(size);
    for (let i = 0; i < size; i++) {
      labels[i] = rng.int(3);
      for (let j = 0; j < 8; j++) x[i * 8 + j] = rng.normal() + (j === labels[i] ? 2 : 0);
    }
    return { size, x, labels };
  };
}

/** A worker; the header-check tests run without the guard, which drops its first blocks. */
function makeWorker(
  sent: Array<{ peer: string; message: Uint8Array }>,
  period = 8,
  extra: Omit<BlockSink, 'send'> = {},
  guard: GuardMode = 'off',
) {
  const params = initParameters(layout, 1);
  return new AsgdWorker({
    backend: new CpuBackend(layout, params),
    nextBatch: batchSource(2),
    sink: {
      send(peer, message) {
        sent.push({ peer, message });
        return true;
      },
      ...extra,
    },
    jobId: 'job',
    workerId: 'w1',
    learningRate: 0.1,
    settings: { communicationPeriod: period, blocksPerMessage: 2, encoding: 'f32' },
    neighbours: ['w2'],
    initialParams: params,
    guard,
  });
}

function block(k: number, fill: (i: number) => number, job = 'job', sender = 'w2'): Uint8Array {
  const { start, end } = blockRange(layout, k);
  const values = Float32Array.from({ length: end - start }, (_, i) => fill(i));
  return encodeStateMessage({
    job: idHash(job),
    sender: idHash(sender),
    seq: 1,
    block: k,
    encoding: 'f32',
    samples: 0,
    values,
  });
}

describe('Mailbox', () => {
  it('keeps the newest block per peer and counts overwrites', () => {
    const box = new Mailbox();
    expect(box.put('a', 0, new Float32Array([1]))).toBe(false);
    expect(box.put('a', 0, new Float32Array([2]))).toBe(true);
    box.put('b', 0, new Float32Array([3]));
    expect(box.overwritten).toBe(1);
    expect(box.overwrittenByPeer.get('a')).toBe(1);
    expect(box.overwrittenByPeer.get('b')).toBeUndefined();
    const drained = box.drain();
    expect(drained.map((r) => r.values[0]).sort()).toEqual([2, 3]);
    expect(box.size).toBe(0);
  });
});

describe('AsgdWorker', () => {
  it('sends m blocks every b samples, rotating through the blocks', async () => {
    const sent: Array<{ peer: string; message: Uint8Array }> = [];
    const w = makeWorker(sent, 8);
    for (let i = 0; i < 8; i++) await w.step(); // 32 samples, batch 4, b = 8: 4 sends × 2 blocks
    expect(sent).toHaveLength(8);
    expect(w.counters.blocksSent).toBe(8);
    expect(sent.every((s) => s.peer === 'w2')).toBe(true);
  });

  it('reads a send with its step (one read per send, no readBlock) and sends the blocks after it', async () => {
    const params = initParameters(layout, 1);
    const backend = new CpuBackend(layout, params);
    const readCalls: number[][] = [];
    const readAfter = backend.readBlocksAfterStep.bind(backend);
    backend.readBlocksAfterStep = (reads) => {
      readCalls.push(reads.map((r) => r.block));
      return readAfter(reads);
    };
    backend.readBlock = () => Promise.reject(new Error('a send must not read block by block'));
    const sent: Uint8Array[] = [];
    const w = new AsgdWorker({
      backend,
      nextBatch: batchSource(2),
      sink: { send: (_peer, message) => sent.push(message) > 0 },
      jobId: 'job',
      workerId: 'w1',
      learningRate: 0.1,
      settings: { communicationPeriod: 4, blocksPerMessage: 3, encoding: 'f16' },
      neighbours: ['w2'],
      initialParams: params,
    });
    await w.step();
    await w.flush();
    expect(readCalls).toEqual([[0, 1, 2]]);
    const after = await backend.readParameters();
    const messages = sent.map((m) => decodeStateMessage(m));
    expect(messages.map((m) => [m.block, m.encoding, m.samples])).toEqual([
      [0, 'f16', 4],
      [1, 'f16', 4],
      [2, 'f16', 4],
    ]);
    // The parameters after the step, in f16.
    expect(messages[1]!.values).toEqual(decodeFloat16(encodeFloat16(after.slice(10, 20))));
  });

  it('rethrows a failed send readback from the next step or flush', async () => {
    const params = initParameters(layout, 1);
    const backend = new CpuBackend(layout, params);
    backend.readBlocksAfterStep = () => Promise.reject(new Error('device lost'));
    const w = new AsgdWorker({
      backend,
      nextBatch: batchSource(2),
      sink: { send: () => true },
      jobId: 'job',
      workerId: 'w1',
      learningRate: 0.1,
      settings: { communicationPeriod: 4, blocksPerMessage: 1, encoding: 'f32' },
      neighbours: ['w2'],
      initialParams: params,
    });
    await w.step();
    await expect(w.flush()).rejects.toThrow('device lost');
    expect(w.counters.blocksSent).toBe(0);
  });

  it('accepts good blocks and counts garbage, NaN, wrong-job and huge blocks as rejected', () => {
    const w = makeWorker([]);
    expect(
      w.receive(
        'w2',
        block(0, () => 0.01),
      ),
    ).toBe(true);
    expect(w.receive('w2', new Uint8Array([1, 2, 3]))).toBe(false);
    expect(
      w.receive(
        'w2',
        block(1, () => 0.01, 'other-job'),
      ),
    ).toBe(false);
    expect(
      w.receive(
        'w2',
        block(1, () => 1e6),
      ),
    ).toBe(false);
    const nan = block(1, (i) => (i === 2 ? Number.NaN : 0));
    expect(w.receive('w2', nan)).toBe(false);
    expect(w.counters.blocksReceived).toBe(1);
    expect(w.counters.rejected).toBe(4);
    expect(w.counters.rejectedByCode).toMatchObject({
      ERR_WRONG_JOB: 1,
      ERR_NORM_BOUND: 1,
      ERR_MESSAGE_VALUES: 1,
    });
  });

  it('drops a block whose header names another sender than its link, counted per link', () => {
    const w = makeWorker([]);
    // w3 claims to be w2 (a forged header), and w3 replays a block w2 sent it.
    expect(
      w.receive(
        'w3',
        block(0, () => 0.01, 'job', 'w2'),
      ),
    ).toBe(false);
    const fromW2 = block(1, () => 0.01);
    expect(w.receive('w2', fromW2)).toBe(true);
    expect(w.receive('w3', fromW2)).toBe(false);
    expect(w.counters.rejectedByCode).toEqual({ ERR_WRONG_SENDER: 2 });
    expect(w.peer('w3')).toMatchObject({ blocksReceived: 0, rejected: 2 });
    expect(w.peer('w2')).toMatchObject({ blocksReceived: 1, rejected: 0 });
    expect(w.mailbox.size).toBe(1);
  });

  it('checks the job before the sender and counts a wrong job as ERR_WRONG_JOB', () => {
    const w = makeWorker([]);
    expect(
      w.receive(
        'w3',
        block(0, () => 0.01, 'other-job', 'w2'),
      ),
    ).toBe(false);
    expect(
      w.receive(
        'w2',
        block(0, () => 0.01, 'other-job'),
      ),
    ).toBe(false);
    expect(w.counters.rejectedByCode).toEqual({ ERR_WRONG_JOB: 2 });
    expect(w.mailbox.size).toBe(0);
  });

  it('runs the default guard: clips a far block around the local one, quarantines its sender', () => {
    const w = makeWorker([], 8, {}, ADOPTED_GUARD);
    const { start, end } = blockRange(layout, 0);
    const local = initParameters(layout, 1).subarray(start, end);
    const near = (p: string) => block(0, (i) => local[i]! + (i % 2 ? 0.01 : -0.01), 'job', p);
    // The spread is unknown for the first blocks: held back, neither merged nor rejected.
    for (let i = 0; i < SPREAD_WARMUP; i++) expect(w.receive('w2', near('w2'))).toBe(false);
    expect(w.counters.warmup).toBe(SPREAD_WARMUP);
    expect(w.counters.rejected).toBe(0);
    expect(w.peer('w2').rejected).toBe(0);
    // A block of NaN during the warm-up is rejected all the same.
    expect(
      w.receive(
        'w2',
        block(1, () => NaN, 'job', 'w2'),
      ),
    ).toBe(false);
    expect(w.counters.rejected).toBe(1);
    expect(w.counters.warmup).toBe(SPREAD_WARMUP);
    for (let i = 0; i < TRUST_MIN_BLOCKS + 4; i++) expect(w.receive('w2', near('w2'))).toBe(true);
    // A sign-flipped block from a trusted peer is clipped onto the radius, so it still passes.
    const flipped = block(0, (i) => -local[i]!, 'job', 'w2');
    expect(w.receive('w2', flipped)).toBe(true);
    expect(w.counters.clipped).toBe(1);
    const merged = w.mailbox.drain().find((r) => r.block === 0)!.values;
    let d = 0;
    let far = 0;
    for (let i = 0; i < merged.length; i++) {
      d += (merged[i]! - local[i]!) ** 2;
      far += (2 * local[i]!) ** 2;
    }
    expect(Math.sqrt(d)).toBeLessThan(0.5 * Math.sqrt(far));
    // A newcomer sending only flipped blocks is dropped, then quarantined.
    const w3 = (i: number) => block(0, (j) => -local[j]! * (1 + 0.001 * i), 'job', 'w3');
    for (let i = 0; i < 16; i++) expect(w.receive('w3', w3(i))).toBe(false);
    expect(w.guard.distrusted()).toEqual(['w3']);
    expect(w.receive('w3', near('w3'))).toBe(false);
    expect(w.counters.rejectedByCode.ERR_PEER_QUARANTINED).toBeGreaterThan(0);
    expect(w.peer('w3').blocksReceived).toBe(0);
  });

  it('re-centres the guard on the blocks it sends', async () => {
    const sent: Array<{ peer: string; message: Uint8Array }> = [];
    const w = makeWorker(sent, 4, {}, ADOPTED_GUARD);
    for (let i = 0; i < 12; i++) await w.step();
    await w.flush();
    const last = decodeStateMessage(
      sent.filter((s) => decodeStateMessage(s.message).block === 0).at(-1)!.message,
    );
    // A copy of what this worker sent for block 0, as if a peer echoed it, is at distance 0.
    const echo = encodeStateMessage({ ...last, sender: idHash('w2'), values: last.values });
    for (let i = 0; i < SPREAD_WARMUP; i++) w.receive('w2', echo);
    expect(w.guard.radius(0)).toBe(0);
  });

  it('gives a forged sample count or sequence number no weight: the merge is the same', async () => {
    // The header's `samples` and `seq` are the sender's word (docs/design.md §8): nothing on the
    // receive path reads them, so a block claiming 10¹² samples, or a sequence number that runs
    // backwards, merges exactly as the same values with honest headers do.
    const honest = makeWorker([]);
    const forged = makeWorker([]);
    const values = (k: number, round: number) => {
      const { start, end } = blockRange(layout, k);
      return Float32Array.from({ length: end - start }, (_, i) => 0.05 * Math.sin(i + k + round));
    };
    for (let round = 0; round < 4; round++) {
      for (let k = 0; k < layout.blockCount; k++) {
        const header = {
          job: idHash('job'),
          sender: idHash('w2'),
          block: k,
          encoding: 'f32' as const,
        };
        const v = values(k, round);
        expect(
          honest.receive(
            'w2',
            encodeStateMessage({ ...header, seq: round, samples: 32 * round, values: v }),
          ),
        ).toBe(true);
        expect(
          forged.receive(
            'w2',
            encodeStateMessage({ ...header, seq: 0xffffffff - round, samples: 1e12, values: v }),
          ),
        ).toBe(true);
      }
      await honest.step();
      await forged.step();
    }
    await honest.drainStats();
    await forged.drainStats();
    expect(forged.counters.offered).toBe(honest.counters.offered);
    expect(forged.counters.offered).toBeGreaterThan(0);
    expect(await forged.readParameters()).toEqual(await honest.readParameters());
    // …and differs from a worker that received nothing, so the blocks did reach the merge.
    const alone = makeWorker([]);
    for (let round = 0; round < 4; round++) await alone.step();
    expect(await alone.readParameters()).not.toEqual(await honest.readParameters());
  });

  it('merges received blocks into the next step', async () => {
    const w = makeWorker([]);
    await w.step();
    await w.drainStats();
    w.receive(
      'w2',
      block(0, () => 0),
    );
    await w.step();
    await w.drainStats();
    expect(w.counters.offered).toBe(1);
  });

  it('counts per peer: received, rejected, overwritten', () => {
    const w = makeWorker([]);
    w.receive(
      'w2',
      block(0, () => 0.01),
    );
    w.receive(
      'w2',
      block(0, () => 0.02),
    );
    w.receive('w3', new Uint8Array(100));
    expect(w.peer('w2')).toMatchObject({ blocksReceived: 2, rejected: 0 });
    expect(w.peer('w3')).toMatchObject({ blocksReceived: 0, rejected: 1 });
    expect(w.mailbox.overwrittenByPeer.get('w2')).toBe(1);
  });

  it('skips (and counts) a send to a peer that is not ready, without reading blocks', async () => {
    const sent: Array<{ peer: string; message: Uint8Array }> = [];
    let ready = false;
    const w = makeWorker(sent, 4, { ready: () => ready });
    await w.step(); // one due send of 2 blocks, skipped
    expect(sent).toHaveLength(0);
    expect(w.counters.sendsSkipped).toBe(2);
    expect(w.peer('w2')).toMatchObject({ sendsSkipped: 2, blocksSent: 0 });
    ready = true;
    await w.step();
    expect(sent).toHaveLength(2);
    expect(w.peer('w2')).toMatchObject({ sendsSkipped: 2, blocksSent: 2 });
  });

  it("fits blocks to the link's maximum message size with a less precise encoding", async () => {
    const sent: Array<{ peer: string; message: Uint8Array }> = [];
    // Blocks of 10 values: 88 bytes as f32, 68 as f16, 58 as int8.
    const w = makeWorker(sent, 4, { maxMessageBytes: () => 70 });
    await w.step();
    expect(sent.map((s) => decodeStateMessage(s.message).encoding)).toEqual(['f16', 'f16']);
    const tiny = makeWorker(sent.splice(0), 4, { maxMessageBytes: () => 50 });
    await tiny.step();
    expect(sent).toHaveLength(0);
    expect(tiny.counters.sendsSkipped).toBe(2);
  });

  it('fuzz: receive() never throws, whatever arrives', () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const rng = new Rng(seed);
    const w = makeWorker([]);
    const good = block(0, () => 0.01);
    let accepted = 0;
    for (let t = 0; t < 3000; t++) {
      let f: Uint8Array;
      if (t % 3 === 0) {
        f = new Uint8Array(rng.int(200));
        for (let i = 0; i < f.length; i++) f[i] = rng.int(256);
      } else if (t % 3 === 1) {
        f = good.slice(0, rng.int(good.length + 1));
      } else {
        f = good.slice();
        const at = rng.int(f.length);
        f[at] = f[at]! ^ (1 + rng.int(255));
      }
      expect(() => {
        if (w.receive('w2', t % 2 ? f : f.slice().buffer)) accepted++;
      }, `seed ${seed}`).not.toThrow();
    }
    // Only whole, untouched copies of the good block get through.
    expect(w.counters.blocksReceived).toBe(accepted);
    expect(w.counters.rejected + accepted).toBe(3000);
  });
});
