import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { MAX_TOKEN_LENGTH } from './schemas.ts';

/** Why a request was refused: no credentials at all (401) or wrong ones (403). */
export type AuthResult = 'ok' | 'missing' | 'wrong';

/** Why an admin request or socket was refused, as counted (`meshgrad_admin_refused_total`). */
export type RefusalOutcome = 'unauthorized' | 'forbidden' | 'throttled';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Checks presented admin tokens in constant time. Both sides are hashed first so that
 * `timingSafeEqual` compares equal-length digests: comparing the raw strings would either throw
 * on a length mismatch or leak the token's length through an early return.
 */
export class TokenCheck {
  private readonly expected: Buffer;

  constructor(token: string) {
    if (!token) throw new Error('the admin token must not be empty');
    this.expected = digest(token);
  }

  check(presented: unknown): AuthResult {
    if (typeof presented !== 'string' || presented.length === 0) return 'missing';
    if (presented.length > MAX_TOKEN_LENGTH) return 'wrong';
    return timingSafeEqual(digest(presented), this.expected) ? 'ok' : 'wrong';
  }

  /** The token of an `Authorization: Bearer <token>` header, checked. */
  checkRequest(req: IncomingMessage): AuthResult {
    const header = req.headers.authorization;
    if (!header) return 'missing';
    const m = /^Bearer +(\S+) *$/i.exec(header);
    if (!m) return 'missing';
    return this.check(m[1]);
  }
}

export interface TokenThrottleOptions {
  /** Wrong tokens one address may present per window before it is refused for the rest. Default 30. */
  readonly failuresPerWindow?: number;
  /** Default 60 s. */
  readonly windowMs?: number;
}

export type ThrottleVerdict = { readonly ok: true } | { readonly ok: false; retryAfterSec: number };

interface Burst {
  start: number;
  failures: number;
  /** Whether this burst's refusal was logged (once per burst, not per attempt). */
  logged: boolean;
}

/**
 * Throttles wrong admin tokens per remote address. Why: without it one address can try about
 * 900 tokens a second over HTTP. An address past its failures in a window gets 429 for the rest
 * of the window, before its token is even checked, so a guess in that time learns nothing.
 */
export class TokenThrottle {
  readonly failuresPerWindow: number;
  readonly windowMs: number;
  private readonly bursts = new Map<string, Burst>();

  constructor(options: TokenThrottleOptions = {}) {
    this.failuresPerWindow = options.failuresPerWindow ?? 30;
    this.windowMs = options.windowMs ?? 60_000;
  }

  /** Whether `address` may present a token now. */
  admit(address: string, now = Date.now()): ThrottleVerdict {
    const b = this.current(address, now);
    if (!b || b.failures < this.failuresPerWindow) return { ok: true };
    return {
      ok: false,
      retryAfterSec: Math.max(1, Math.ceil((b.start + this.windowMs - now) / 1000)),
    };
  }

  /**
   * Records a wrong token from `address`; true when this is the first of its burst, i.e. the
   * one refusal of the burst that should be logged.
   */
  failed(address: string, now = Date.now()): boolean {
    const b = this.current(address, now) ?? { start: now, failures: 0, logged: false };
    b.failures++;
    this.bursts.set(address, b);
    if (b.logged) return false;
    b.logged = true;
    return true;
  }

  /** Failures of `address` in its current window. */
  failures(address: string, now = Date.now()): number {
    return this.current(address, now)?.failures ?? 0;
  }

  private current(address: string, now: number): Burst | undefined {
    const b = this.bursts.get(address);
    if (b && now - b.start >= this.windowMs) {
      this.bursts.delete(address);
      return undefined;
    }
    // Bounded: a sweep on the way drops windows that are over, so the map holds live ones only.
    if (this.bursts.size > 10_000) {
      for (const [a, x] of this.bursts) if (now - x.start >= this.windowMs) this.bursts.delete(a);
    }
    return b;
  }
}
