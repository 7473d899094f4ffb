import { describe, expect, it } from 'vitest';
import { helloSchema, relaySchema, signalSchema, statsSchema, validate } from './schemas.ts';
import { MAX_RELAY_BYTES, MAX_SIGNAL_BYTES, PROTOCOL_VERSION } from './limits.ts';

const hello = {
  protocolVersion: PROTOCOL_VERSION,
  device: { backend: 'cpu', backendReason: 'software adapter (swiftshader)', userAgent: 'test' },
};

/** A well-formed statistics report with these links. */
const statsWith = (links: readonly object[]) => ({
  jobId: 'default',
  samples: 10,
  samplesPerSec: 5,
  offered: 0,
  accepted: 0,
  paused: false,
  links,
});

describe('protocol schemas', () => {
  it('accepts a well-formed hello', () => {
    expect(validate(helloSchema, hello).ok).toBe(true);
  });

  it('names the offending field of a malformed payload', () => {
    const r = validate(helloSchema, { ...hello, device: { ...hello.device, backend: 'tpu' } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/^device\.backend: /);
  });

  it('refuses another protocol version', () => {
    const r = validate(helloSchema, { ...hello, protocolVersion: PROTOCOL_VERSION + 1 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain('protocolVersion');
  });

  it('refuses non-finite statistics', () => {
    const stats = {
      jobId: 'default',
      samples: 10,
      samplesPerSec: Number.NaN,
      offered: 0,
      accepted: 0,
      paused: false,
      links: [],
    };
    const r = validate(statsSchema, stats);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/^samplesPerSec: /);
  });

  it('refuses infinite, negative or out-of-range numbers in a link report, naming the field', () => {
    const link = {
      peer: 'w2',
      relayed: false,
      goodputBytesPerSec: 20_000,
      rttMs: 20,
      backlogBytes: 0,
      blocksSent: 4,
      blocksReceived: 4,
      overwritten: 0,
      rejected: 0,
      skippedSends: 0,
      acceptanceRate: 0.9,
    };
    expect(validate(statsSchema, statsWith([link])).ok).toBe(true);
    for (const [field, value] of [
      ['goodputBytesPerSec', Number.POSITIVE_INFINITY],
      ['goodputBytesPerSec', -1],
      ['rttMs', Number.NaN],
      ['backlogBytes', Number.NEGATIVE_INFINITY],
      ['blocksSent', 1.5],
      ['rejected', -2],
      ['acceptanceRate', 1.01],
      ['acceptanceRate', Number.NaN],
    ] as const) {
      const r = validate(statsSchema, statsWith([{ ...link, [field]: value }]));
      expect(r.ok, `${field} = ${value}`).toBe(false);
      if (!r.ok) expect(r.message).toMatch(new RegExp(`^links\\.0\\.${field}: `));
    }
  });

  it('takes an optional send busy fraction in [0, 1]', () => {
    const stats = statsWith([]);
    expect(validate(statsSchema, stats).ok).toBe(true);
    expect(validate(statsSchema, { ...stats, sendBusyFraction: 0.25 }).ok).toBe(true);
    const r = validate(statsSchema, { ...stats, sendBusyFraction: 1.5 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/^sendBusyFraction: /);
  });

  it('caps relayed message size', () => {
    expect(validate(relaySchema, { to: 'w1', data: new Uint8Array(MAX_RELAY_BYTES) }).ok).toBe(
      true,
    );
    const r = validate(relaySchema, { to: 'w1', data: new Uint8Array(MAX_RELAY_BYTES + 1) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/^data: .*at most/);
  });

  it('refuses ids that could smuggle paths or markup', () => {
    expect(validate(relaySchema, { to: '../etc', data: new Uint8Array(1) }).ok).toBe(false);
  });

  it('accepts WebRTC signaling for a data channel and caps its size', () => {
    const offer = { to: 'w-2', data: { type: 'offer', sdp: 'v=0\r\n' } };
    const candidate = {
      to: 'w-2',
      data: {
        type: 'candidate',
        candidate: {
          candidate: 'candidate:1 1 udp 1 10.0.0.1 5000 typ host',
          sdpMid: '0',
          sdpMLineIndex: 0,
        },
      },
    };
    expect(validate(signalSchema, offer).ok).toBe(true);
    expect(validate(signalSchema, candidate).ok).toBe(true);
    const big = validate(signalSchema, {
      ...offer,
      data: { type: 'answer', sdp: 'x'.repeat(MAX_SIGNAL_BYTES + 1) },
    });
    expect(big.ok).toBe(false);
    if (!big.ok) expect(big.message).toMatch(/^data\.sdp: /);
    // Renegotiation and media requests are not part of a data-channel link.
    expect(
      validate(signalSchema, { to: 'w-2', data: { type: 'renegotiate', renegotiate: true } }).ok,
    ).toBe(false);
    const extra = validate(signalSchema, { ...offer, data: { ...offer.data, stream: 1 } });
    expect(extra.ok).toBe(false);
    const to = validate(signalSchema, { ...offer, to: '../admin' });
    expect(to.ok).toBe(false);
    if (!to.ok) expect(to.message).toMatch(/^to: /);
  });
});
