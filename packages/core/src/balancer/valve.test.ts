import { describe, expect, it } from 'vitest';
import { messageBytes, sendRateBytesPerSec } from './settings.ts';
import { localValveBytes, VALVE_MIN_MESSAGES, VALVE_QUEUE_SECONDS } from './valve.ts';

const model = { blockCount: 4, parameterCount: 65_536 };

describe('localValveBytes', () => {
  it('lets a fraction of a second of draining queue (planned traffic until a drain is seen)', () => {
    const settings = { communicationPeriod: 32, blocksPerMessage: 1, encoding: 'f32' as const };
    const planned = sendRateBytesPerSec(settings, model, 32, 64_000);
    expect(localValveBytes(settings, model, 32, 64_000)).toBeCloseTo(VALVE_QUEUE_SECONDS * planned);
    expect(localValveBytes(settings, model, 32, 64_000, 8e6)).toBeCloseTo(
      VALVE_QUEUE_SECONDS * 8e6,
    );
    // A link that fell to a tenth lets a tenth as much queue, whatever the settings still say.
    expect(localValveBytes(settings, model, 32, 64_000, 8e5)).toBeCloseTo(
      VALVE_QUEUE_SECONDS * 8e5,
    );
  });

  it('always leaves room for whole messages, however slow the schedule', () => {
    const settings = {
      communicationPeriod: 32 * 256,
      blocksPerMessage: 3,
      encoding: 'f16' as const,
    };
    expect(localValveBytes(settings, model, 32, 10)).toBeCloseTo(
      VALVE_MIN_MESSAGES * 3 * messageBytes(model, 'f16'),
    );
    expect(localValveBytes(settings, model, 32, 0)).toBeGreaterThan(0);
  });

  it('without a measured drain, shrinks with the settings', () => {
    const before = { communicationPeriod: 32, blocksPerMessage: 4, encoding: 'f32' as const };
    const after = { communicationPeriod: 32 * 10, blocksPerMessage: 1, encoding: 'f32' as const };
    // Fast enough that the planned traffic, not the two-message floor, sets both limits.
    expect(localValveBytes(after, model, 32, 64_000)).toBeLessThan(
      localValveBytes(before, model, 32, 64_000) / 10,
    );
  });
});
