import { describe, expect, it } from 'vitest';
import { encodeStateMessage, MAX_MESSAGE_BYTES } from '../codec/message.ts';
import { fitEncoding, stateMessageBytes } from './fit.ts';

describe('fitEncoding', () => {
  it('agrees with the encoder on message sizes', () => {
    for (const encoding of ['f32', 'f16', 'int8'] as const) {
      const bytes = encodeStateMessage({
        job: 1,
        sender: 2,
        seq: 3,
        block: 0,
        encoding,
        samples: 0,
        values: new Float32Array(1000),
      });
      expect(bytes.length).toBe(stateMessageBytes(1000, encoding));
    }
  });

  it('keeps the preferred encoding when it fits, else the next less precise one', () => {
    // 16,384 values: 65,584 bytes as f32, 32,816 as f16, 16,432 as int8.
    expect(fitEncoding(16_384, 'f32', 262_144)).toBe('f32');
    expect(fitEncoding(16_384, 'f32', 65_536)).toBe('f16');
    expect(fitEncoding(16_384, 'f32', 20_000)).toBe('int8');
    expect(fitEncoding(16_384, 'f16', 262_144)).toBe('f16');
    expect(fitEncoding(16_384, 'int8', 10_000)).toBeNull();
    // Exactly at the limit still fits.
    expect(fitEncoding(100, 'f32', stateMessageBytes(100, 'f32'))).toBe('f32');
  });

  it('never exceeds the codec limit whatever the link allows', () => {
    const n = (MAX_MESSAGE_BYTES - 48) / 4 + 1;
    expect(fitEncoding(n, 'f32', 1e9)).toBe('f16');
  });
});
