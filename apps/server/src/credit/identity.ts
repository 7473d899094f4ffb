/**
 * Checks a volunteer's identity proof (DESIGN §9): the `hello` signs the challenge this
 * connection was given with the volunteer's ECDSA P-256 key; the identity is the key's hash.
 */
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import {
  CHALLENGE_BYTES,
  identityMessage,
  type IdentityProof,
  type ProtocolErrorCode,
  type PublicKeyJwk,
} from '@meshgrad/core';

/** Hex digits of SHA-256 kept in an identity id (80 bits: no collision among volunteers). */
const IDENTITY_HASH_HEX = 20;

/** A fresh challenge for one connection. */
export function newChallenge(): string {
  return randomBytes(CHALLENGE_BYTES).toString('base64url');
}

/** The identity id of a public key: SHA-256 over its uncompressed point (0x04 ‖ x ‖ y). */
export function identityId(key: PublicKeyJwk): string {
  const point = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(key.x, 'base64url'),
    Buffer.from(key.y, 'base64url'),
  ]);
  return `v-${createHash('sha256').update(point).digest('hex').slice(0, IDENTITY_HASH_HEX)}`;
}

export type IdentityCheck =
  | { readonly ok: true; readonly id: string }
  | { readonly ok: false; readonly code: ProtocolErrorCode; readonly message: string };

/**
 * Verifies `proof` against `expected`, the challenge this connection holds (undefined when it
 * asked for none or already used it). The caller forgets the challenge whatever the outcome, so
 * each is good for one try: a replayed or another connection's challenge is `ERR_CHALLENGE`.
 */
export async function verifyIdentity(
  proof: IdentityProof,
  expected: string | undefined,
): Promise<IdentityCheck> {
  if (expected === undefined) {
    return {
      ok: false,
      code: 'ERR_CHALLENGE',
      message:
        'identity.challenge: this connection holds no unused challenge; ask for one with `challenge` before each hello',
    };
  }
  if (proof.challenge !== expected) {
    return {
      ok: false,
      code: 'ERR_CHALLENGE',
      message: 'identity.challenge: not the challenge this connection was given',
    };
  }
  let key: webcrypto.CryptoKey;
  try {
    key = await webcrypto.subtle.importKey(
      'jwk',
      { kty: 'EC', crv: 'P-256', x: proof.publicKey.x, y: proof.publicKey.y },
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['verify'],
    );
  } catch {
    // Coordinates of the right length that are no point on the curve.
    return {
      ok: false,
      code: 'ERR_INVALID_PAYLOAD',
      message: 'identity.publicKey: not a P-256 public key',
    };
  }
  const good = await webcrypto.subtle.verify(
    { name: 'ECDSA', hash: 'SHA-256' },
    key,
    Buffer.from(proof.signature, 'base64url'),
    new TextEncoder().encode(identityMessage(proof.challenge)),
  );
  if (!good) {
    return {
      ok: false,
      code: 'ERR_BAD_SIGNATURE',
      message: 'identity.signature: does not verify against identity.publicKey',
    };
  }
  return { ok: true, id: identityId(proof.publicKey) };
}
