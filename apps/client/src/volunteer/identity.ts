/**
 * The volunteer's anonymous identity (DESIGN §9): an ECDSA P-256 key pair made at the first
 * join and kept in IndexedDB, so it survives reloads; the private key is not extractable, so
 * no script on the page can copy it out, only use it to sign. With it, an optional display name
 * and team. Every tab of this browser profile is the same volunteer.
 */
import {
  displayNameSchema,
  identityMessage,
  teamNameSchema,
  validate,
  type IdentityProof,
  type PublicKeyJwk,
} from '@meshgrad/core';

const DB_NAME = 'meshgrad';
const DB_VERSION = 1;
const STORE = 'identity';
/** The one record of the store. */
const RECORD = 'self';

const ECDSA_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

interface StoredIdentity {
  readonly keys: CryptoKeyPair;
  readonly publicKey: PublicKeyJwk;
  name?: string;
  team?: string;
}

/** A name and team as the volunteer typed them; blank means none. */
export interface Profile {
  readonly name?: string;
  readonly team?: string;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

function openDb(): Promise<IDBDatabase> {
  const r = indexedDB.open(DB_NAME, DB_VERSION);
  r.onupgradeneeded = () => {
    if (!r.result.objectStoreNames.contains(STORE)) r.result.createObjectStore(STORE);
  };
  return request(r);
}

async function withStore<T>(
  mode: IDBTransactionMode,
  fn: (store: IDBObjectStore) => IDBRequest<T>,
): Promise<T> {
  const db = await openDb();
  try {
    return await request(fn(db.transaction(STORE, mode).objectStore(STORE)));
  } finally {
    db.close();
  }
}

/** Checks a profile against the server's own rules, so the page can say what is wrong first. */
export function profileProblem(profile: Profile): string | null {
  if (profile.name !== undefined) {
    const r = validate(displayNameSchema, profile.name);
    if (!r.ok) return `Display name ${r.message.replace(/^\(payload\): /, '')}`;
  }
  if (profile.team !== undefined) {
    const r = validate(teamNameSchema, profile.team);
    if (!r.ok) return `Team ${r.message.replace(/^\(payload\): /, '')}`;
  }
  return null;
}

/** Blank fields as none, the rest trimmed. */
export function cleanProfile(name: string, team: string): Profile {
  const n = name.trim();
  const t = team.trim();
  return { ...(n ? { name: n } : {}), ...(t ? { team: t } : {}) };
}

export class VolunteerIdentity {
  private constructor(private readonly stored: StoredIdentity) {}

  /** The identity kept in this browser, or a new one when there is none. */
  static async load(): Promise<VolunteerIdentity> {
    const found = await withStore<StoredIdentity | undefined>('readonly', (s) => s.get(RECORD));
    if (found) return new VolunteerIdentity(found);
    const keys = await crypto.subtle.generateKey(ECDSA_KEY, false, ['sign', 'verify']);
    // A public key stays exportable whatever `extractable` says; only the private one is locked.
    const jwk = await crypto.subtle.exportKey('jwk', keys.publicKey);
    const made: StoredIdentity = {
      keys,
      publicKey: { kty: 'EC', crv: 'P-256', x: jwk.x ?? '', y: jwk.y ?? '' },
    };
    try {
      // `add`, not `put`: when another tab made one meanwhile, its key wins and both agree.
      await withStore('readwrite', (s) => s.add(made, RECORD));
      return new VolunteerIdentity(made);
    } catch {
      const other = await withStore<StoredIdentity | undefined>('readonly', (s) => s.get(RECORD));
      if (!other) throw new Error('could not keep an identity in this browser (IndexedDB)');
      return new VolunteerIdentity(other);
    }
  }

  /** Forgets the identity (its key and profile); the next join makes a new one. */
  static async reset(): Promise<void> {
    await withStore('readwrite', (s) => s.delete(RECORD));
  }

  get profile(): Profile {
    const { name, team } = this.stored;
    return { ...(name !== undefined ? { name } : {}), ...(team !== undefined ? { team } : {}) };
  }

  /** Keeps a new name and team with the key; the next hello carries them even if storing fails. */
  async setProfile(profile: Profile): Promise<void> {
    const next: StoredIdentity = {
      keys: this.stored.keys,
      publicKey: this.stored.publicKey,
      ...profile,
    };
    if (profile.name !== undefined) this.stored.name = profile.name;
    else delete this.stored.name;
    if (profile.team !== undefined) this.stored.team = profile.team;
    else delete this.stored.team;
    await withStore('readwrite', (s) => s.put(next, RECORD));
  }

  /** The proof a hello carries: this connection's challenge, signed. */
  async proof(challenge: string): Promise<IdentityProof> {
    const signature = await crypto.subtle.sign(
      ECDSA_SIGN,
      this.stored.keys.privateKey,
      new TextEncoder().encode(identityMessage(challenge)),
    );
    return {
      publicKey: this.stored.publicKey,
      challenge,
      signature: base64url(new Uint8Array(signature)),
      ...this.profile,
    };
  }
}

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
