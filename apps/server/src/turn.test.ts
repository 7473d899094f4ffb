import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkIceOptions, iceConfigFor, mintTurnCredentials } from './turn.ts';

describe('TURN credentials (coturn use-auth-secret)', () => {
  it('mints username expiry:worker and base64 HMAC-SHA1 of it', () => {
    const c = mintTurnCredentials('s3cret', 'w-abc', 600, 1_700_000_000_123);
    expect(c.username).toBe('1700000600:w-abc');
    expect(c.expiresAtSec).toBe(1_700_000_600);
    expect(c.credential).toBe(createHmac('sha1', 's3cret').update(c.username).digest('base64'));
    // A known vector, computed independently: printf '1700000600:w-abc' | openssl sha1 -hmac s3cret -binary | base64
    expect(c.credential).toBe('pFqfKWSt+W3Lwp6yi1ODLkoGkQk=');
  });

  it('differs per worker, per secret and per expiry', () => {
    const a = mintTurnCredentials('s', 'w-1', 60, 0);
    expect(mintTurnCredentials('s', 'w-2', 60, 0).credential).not.toBe(a.credential);
    expect(mintTurnCredentials('t', 'w-1', 60, 0).credential).not.toBe(a.credential);
    expect(mintTurnCredentials('s', 'w-1', 61, 0).credential).not.toBe(a.credential);
  });

  it('hands out STUN as configured and TURN with fresh credentials', () => {
    const now = 1_000_000;
    const ice = iceConfigFor(
      {
        iceServers: [{ urls: 'stun:stun.example.org:3478' }],
        turnUrls: ['turn:127.0.0.1:3478?transport=udp'],
        turnSecret: 'k',
        turnTtlSec: 120,
      },
      'w-9',
      now,
    );
    expect(ice.iceServers[0]).toEqual({ urls: 'stun:stun.example.org:3478' });
    expect(ice.iceServers[1]).toMatchObject({
      urls: ['turn:127.0.0.1:3478?transport=udp'],
      username: '1120:w-9',
    });
    expect(ice.expiresAt).toBe(1_120_000);
    expect(iceConfigFor({}, 'w-9')).toEqual({ iceServers: [] });
  });

  it('refuses TURN URLs without a secret, and URLs that are not TURN', () => {
    expect(() => checkIceOptions({ turnUrls: ['turn:x:3478'] })).toThrow(/^turnSecret: /);
    expect(() => checkIceOptions({ turnUrls: ['http://x'], turnSecret: 'k' })).toThrow(
      /^turnUrls: /,
    );
    expect(() => checkIceOptions({ turnTtlSec: 0 })).toThrow(/^turnTtlSec: /);
    expect(() => checkIceOptions({ turnUrls: ['turns:x:5349'], turnSecret: 'k' })).not.toThrow();
  });
});
