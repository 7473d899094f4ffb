/**
 * A volunteer's anonymous identity (DESIGN §9): an ECDSA P-256 key pair made by the page, whose
 * public key travels in `hello` with a signature over the server's challenge for this
 * connection, and an optional display name and team. Server and page share these schemas and
 * the text that is signed, so neither spells them again.
 */
import { z } from 'zod';

/** Bytes of randomness in one connection's challenge. */
export const CHALLENGE_BYTES = 32;
/** Longest display name or team name, in characters (UTF-16 code units). */
export const MAX_DISPLAY_NAME_CHARS = 40;
export const MAX_TEAM_CHARS = 40;

/** Base64url without padding, as JWK coordinates and our challenges and signatures are written. */
const base64url = (bytes: number) =>
  z
    .string()
    .length(Math.ceil((bytes * 4) / 3))
    .regex(/^[A-Za-z0-9_-]+$/, 'must be base64url without padding');

/** An ECDSA P-256 public key as a JWK: only the fields that define it. */
export const publicKeySchema = z.object({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: base64url(32),
  y: base64url(32),
});

/**
 * A name a volunteer chose. Shown as text only, but still refused when it holds control
 * characters (they break the leaderboard's lines and logs) or markup characters (`<`, `>`):
 * nothing that reads as HTML is stored, so no later page can render it as such.
 */
const shownName = (max: number) =>
  z
    .string()
    .max(max, `must be at most ${max} characters`)
    .refine((s) => s.trim().length > 0, 'must not be blank')
    .refine((s) => !/\p{Cc}|\p{Cf}/u.test(s), 'must not contain control characters')
    .refine((s) => !/[<>]/.test(s), 'must not contain < or >');

export const displayNameSchema = shownName(MAX_DISPLAY_NAME_CHARS);
export const teamNameSchema = shownName(MAX_TEAM_CHARS);

/** What `hello` carries to prove its identity. */
export const identityProofSchema = z.object({
  publicKey: publicKeySchema,
  /** The challenge this connection was given (`challenge`), echoed back. */
  challenge: base64url(CHALLENGE_BYTES),
  /** ECDSA with SHA-256 over `identityMessage(challenge)`, r‖s (64 bytes) as WebCrypto writes it. */
  signature: base64url(64),
  name: displayNameSchema.optional(),
  team: teamNameSchema.optional(),
});

export type PublicKeyJwk = z.infer<typeof publicKeySchema>;
export type IdentityProof = z.infer<typeof identityProofSchema>;

/**
 * The text a volunteer signs: the challenge behind a fixed prefix, so a signature made for
 * meshgrad's hello cannot be passed off as one made for anything else with the same key.
 */
export function identityMessage(challenge: string): string {
  return `meshgrad-hello-v1:${challenge}`;
}

/** Identity ids: `v-` and 20 hex digits of SHA-256 over the key's uncompressed point. */
export const IDENTITY_ID = /^v-[0-9a-f]{20}$/;
