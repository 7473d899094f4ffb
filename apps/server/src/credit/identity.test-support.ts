/**
 * Test support: a volunteer identity made with node's WebCrypto, as the page makes one with the
 * browser's, and the hello that proves it.
 */
import { webcrypto } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import {
  identityMessage,
  PROTOCOL_VERSION,
  type Assignment,
  type ChallengeReply,
  type ErrorReply,
  type IdentityProof,
  type PublicKeyJwk,
} from '@meshgrad/core';
import { TEST_DEVICE } from '../server.test-support.ts';

export class TestIdentity {
  private constructor(
    private readonly keys: webcrypto.CryptoKeyPair,
    readonly publicKey: PublicKeyJwk,
  ) {}

  static async make(): Promise<TestIdentity> {
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    const jwk = await webcrypto.subtle.exportKey('jwk', keys.publicKey);
    return new TestIdentity(keys, { kty: 'EC', crv: 'P-256', x: jwk.x ?? '', y: jwk.y ?? '' });
  }

  async sign(challenge: string): Promise<string> {
    const signature = await webcrypto.subtle.sign(
      { name: 'ECDSA', hash: 'SHA-256' },
      this.keys.privateKey,
      new TextEncoder().encode(identityMessage(challenge)),
    );
    return Buffer.from(signature).toString('base64url');
  }

  async proof(
    challenge: string,
    extra: { name?: string; team?: string } = {},
  ): Promise<IdentityProof> {
    return {
      publicKey: this.publicKey,
      challenge,
      signature: await this.sign(challenge),
      ...extra,
    };
  }
}

export async function askChallenge(s: Socket): Promise<string> {
  const r = (await s.timeout(5_000).emitWithAck('challenge', {})) as ChallengeReply;
  if (!r.ok) throw new Error(`challenge refused: ${r.code}`);
  return r.challenge;
}

/** A hello with `identity` (or none), as the page sends it. */
export async function helloWith(
  s: Socket,
  identity: IdentityProof | undefined,
  workerId?: string,
): Promise<Assignment | ErrorReply> {
  return (await s.timeout(5_000).emitWithAck('hello', {
    protocolVersion: PROTOCOL_VERSION,
    device: TEST_DEVICE,
    ...(workerId !== undefined ? { workerId } : {}),
    ...(identity ? { identity } : {}),
  })) as Assignment | ErrorReply;
}

/** Asks for a challenge, signs it and says hello; throws when refused. */
export async function joinAs(
  s: Socket,
  identity: TestIdentity,
  extra: { name?: string; team?: string } = {},
): Promise<Assignment> {
  const a = await helloWith(s, await identity.proof(await askChallenge(s), extra));
  if (!a.ok) throw new Error(`hello refused: ${a.code}: ${a.message}`);
  return a;
}
