import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { MAX_TOKEN_LENGTH } from './schemas.ts';

/** Why a request was refused: no credentials at all (401) or wrong ones (403). */
export type AuthResult = 'ok' | 'missing' | 'wrong';

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
