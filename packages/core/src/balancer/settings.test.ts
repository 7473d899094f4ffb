import { describe, expect, it } from 'vitest';
import { MESSAGE_HEADER_BYTES } from '../codec/message.ts';
import { blocksPerSample, messageBytes, periodAndBlocks, sendRateBytesPerSec } from './settings.ts';

describe('traffic of settings', () => {
  const model = { blockCount: 4, parameterCount: 4096 };

  it('sizes messages by encoding, header included', () => {
    expect(messageBytes(model, 'f32')).toBe(MESSAGE_HEADER_BYTES + 4096);
    expect(messageBytes(model, 'f16')).toBe(MESSAGE_HEADER_BYTES + 2048);
    expect(messageBytes(model, 'int8')).toBe(MESSAGE_HEADER_BYTES + 1024);
  });

  it('rounds the period up to whole batches, as the worker does', () => {
    const s = { communicationPeriod: 40, blocksPerMessage: 2, encoding: 'f32' as const };
    // b = 40 with batches of 32: a send every 2 batches (64 samples).
    expect(blocksPerSample(s, 32, 4)).toBeCloseTo(2 / 64);
    expect(sendRateBytesPerSec(s, model, 32, 640)).toBeCloseTo(
      (2 / 64) * 640 * messageBytes(model, 'f32'),
    );
    // m above the block count sends each block once.
    expect(blocksPerSample({ ...s, blocksPerMessage: 9 }, 32, 4)).toBeCloseTo(4 / 64);
  });
});

describe('periodAndBlocks', () => {
  it('sends everything every step at or above the block count', () => {
    expect(periodAndBlocks(4, 32, 4, 256)).toEqual({
      communicationPeriod: 32,
      blocksPerMessage: 4,
    });
    expect(periodAndBlocks(9, 32, 4, 256)).toEqual({
      communicationPeriod: 32,
      blocksPerMessage: 4,
    });
  });

  it('stays at or under the wanted rate and prefers small messages', () => {
    for (const wanted of [0.05, 0.3, 0.5, 0.66, 1, 1.5, 2.5, 3.9]) {
      const { communicationPeriod, blocksPerMessage } = periodAndBlocks(wanted, 16, 4, 256);
      expect(communicationPeriod % 16).toBe(0);
      const rate = blocksPerMessage / (communicationPeriod / 16);
      expect(rate).toBeLessThanOrEqual(wanted + 1e-9);
      expect(rate).toBeGreaterThanOrEqual(wanted / 2 - 1e-9);
    }
    // 0.66 blocks per step: 2 blocks every 3 steps is exact, 1 every 2 is 25% short.
    expect(periodAndBlocks(2 / 3, 16, 4, 256)).toEqual({
      communicationPeriod: 48,
      blocksPerMessage: 2,
    });
    // 0.5 blocks per step: one block every other step, not two every four.
    expect(periodAndBlocks(0.5, 16, 4, 256)).toEqual({
      communicationPeriod: 32,
      blocksPerMessage: 1,
    });
  });

  it('falls back to the longest period for a tiny or zero budget', () => {
    expect(periodAndBlocks(0, 32, 4, 100)).toEqual({
      communicationPeriod: 3200,
      blocksPerMessage: 1,
    });
    expect(periodAndBlocks(1e-6, 32, 4, 100)).toEqual({
      communicationPeriod: 3200,
      blocksPerMessage: 1,
    });
  });
});

describe('periodAndBlocks with a preferred m', () => {
  it('keeps m when it approximates the rate as well, and moves b instead', () => {
    // 0.1 blocks per step: (1, 10) is exact; with m = 2 preferred, (2, 20) is exact too.
    expect(periodAndBlocks(0.1, 32, 4, 256, 2)).toEqual({
      communicationPeriod: 640,
      blocksPerMessage: 2,
    });
    expect(periodAndBlocks(0.1, 32, 4, 256)).toEqual({
      communicationPeriod: 320,
      blocksPerMessage: 1,
    });
    // A preferred m that cannot come within 5% is ignored: 0.9 per step needs m ≥ 9 for that.
    expect(periodAndBlocks(0.9, 32, 4, 256, 1).blocksPerMessage).toBeGreaterThan(1);
  });
});
