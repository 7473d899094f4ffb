import { describe, expect, it } from 'vitest';
import { localValveBytes, messageBytes } from '@meshgrad/core';
import { BusyMeter, drainRateSample, valveLimit } from './backpressure.ts';

describe('BusyMeter', () => {
  it('is idle until a send, and counts a busy spell from the send to halfway past its last look', () => {
    const meter = new BusyMeter(0);
    expect(meter.take(1000)).toBe(0);
    meter.sent(1100);
    meter.observe(1150, true);
    meter.observe(1200, true);
    // Empty at 1300: the buffer emptied somewhere after 1200, taken as 1250.
    meter.observe(1300, false);
    expect(meter.busy).toBe(false);
    expect(meter.take(2000)).toBeCloseTo(150 / 1000, 10);
  });

  it('splits a spell that spans the end of an interval between both intervals', () => {
    const meter = new BusyMeter(0);
    meter.sent(600);
    expect(meter.take(1000)).toBeCloseTo(0.4, 10);
    meter.observe(1050, true);
    meter.observe(1100, false); // emptied at ≈1075
    expect(meter.take(2000)).toBeCloseTo(75 / 1000, 10);
  });

  it('reports a channel busy all along as 1, and never more', () => {
    const meter = new BusyMeter(0);
    meter.sent(0);
    for (let t = 50; t < 1000; t += 50) {
      meter.sent(t);
      meter.observe(t + 10, true);
    }
    expect(meter.take(1000)).toBe(1);
    expect(meter.busy).toBe(true);
    expect(meter.take(1500)).toBe(1);
  });
});

describe('drainRateSample', () => {
  it('is goodput / busy on a busy link, and at most twice the goodput on a lightly used one', () => {
    // Busy all along: the link carries what left the buffers.
    expect(drainRateSample(250_000, 1)).toBe(250_000);
    expect(drainRateSample(250_000, 0.8)).toBeCloseTo(312_500, 6);
    // The slow volunteer of the balancer e2e: 150 kB/s of goodput, buffers busy 2.5% of the time
    // because SCTP takes each message into its window at once. Unfloored, 6 MB/s.
    expect(drainRateSample(150_000, 0.025)).toBe(300_000);
  });
});

describe('valveLimit', () => {
  const traffic = { blockCount: 8, parameterCount: 8 * 1024 };
  const settings = { communicationPeriod: 64, blocksPerMessage: 3, encoding: 'f16' } as const;

  it('is core’s local valve, with the next send as m blocks at the current encoding', () => {
    const v = valveLimit(settings, traffic, 32, 640, 100_000);
    expect(v.limitBytes).toBe(localValveBytes(settings, traffic, 32, 640, 100_000));
    expect(v.nextSendBytes).toBe(3 * messageBytes(traffic, 'f16'));
    // A quarter second of what drains, and at least two sends.
    expect(v.limitBytes).toBe(Math.max(25_000, 2 * v.nextSendBytes));
  });

  it('always lets an empty buffer take the next send', () => {
    for (const drain of [undefined, 0, 1, 1e9]) {
      const v = valveLimit(settings, traffic, 32, 0, drain);
      expect(v.nextSendBytes).toBeLessThanOrEqual(v.limitBytes);
    }
  });
});
