import { describe, expect, it } from 'vitest';
import { messageBytes, sendRateBytesPerSec } from './settings.ts';
import { localValveBytes, VALVE_MIN_MESSAGES, VALVE_QUEUE_SECONDS } from './valve.ts';

const model = { blockCount: 4, parameterCount: 65_536 };

describe('localValveBytes', () => {
  it('lets about a second of planned traffic queue', () => {
    const settings = { communicationPeriod: 32, blocksPerMessage: 4, encoding: 'f32' as const };
    const planned = sendRateBytesPerSec(settings, model, 32, 640);
    expect(localValveBytes(settings, model, 32, 640)).toBeCloseTo(VALVE_QUEUE_SECONDS * planned);
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

  it('shrinks with the settings, so a queue left by a drop holds sends back', () => {
    const before = { communicationPeriod: 32, blocksPerMessage: 4, encoding: 'f32' as const };
    const after = { communicationPeriod: 32 * 10, blocksPerMessage: 1, encoding: 'f32' as const };
    expect(localValveBytes(after, model, 32, 640)).toBeLessThan(
      localValveBytes(before, model, 32, 640) / 10,
    );
  });
});
