/**
 * ICE servers for volunteers (DESIGN §4): STUN and TURN URLs from the server's configuration,
 * TURN with short-lived credentials in coturn's `use-auth-secret` scheme (the "TURN REST API"
 * of draft-uberti-behave-turn-rest): username `<expiry unix seconds>:<worker id>`, password
 * base64(HMAC-SHA1(shared secret, username)). The TURN server checks the HMAC and the expiry
 * itself, so the job server never talks to it and a leaked credential dies on its own.
 */
import { createHmac } from 'node:crypto';
import type { IceConfig, IceServer } from '@meshgrad/core';

/** Default lifetime of minted TURN credentials (seconds). */
export const DEFAULT_TURN_TTL_SEC = 3_600;

export interface IceOptions {
  /** ICE servers handed out as given, e.g. STUN: `[{ urls: 'stun:stun.example.org:3478' }]`. */
  readonly iceServers?: readonly IceServer[];
  /** TURN URLs that get minted credentials, e.g. `turn:turn.example.org:3478?transport=udp`. */
  readonly turnUrls?: readonly string[];
  /** The TURN servers' `static-auth-secret`. Required with `turnUrls`. */
  readonly turnSecret?: string;
  /** Lifetime of minted credentials (seconds); default DEFAULT_TURN_TTL_SEC. */
  readonly turnTtlSec?: number;
}

export interface TurnCredentials {
  readonly username: string;
  readonly credential: string;
  /** Expiry, seconds since the epoch (the number in the username). */
  readonly expiresAtSec: number;
}

/** Mints TURN REST credentials for `workerId`, valid `ttlSec` seconds from `nowMs`. */
export function mintTurnCredentials(
  secret: string,
  workerId: string,
  ttlSec: number,
  nowMs: number = Date.now(),
): TurnCredentials {
  const expiresAtSec = Math.floor(nowMs / 1000) + Math.max(1, Math.floor(ttlSec));
  // Why the worker id: coturn logs the username, so an operator can tell whose allocation it is.
  const username = `${expiresAtSec}:${workerId}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential, expiresAtSec };
}

/** Checks the options once at startup; throws with the offending option named. */
export function checkIceOptions(options: IceOptions): void {
  const turn = options.turnUrls ?? [];
  for (const url of turn) {
    if (!/^turns?:/.test(url)) throw new Error(`turnUrls: ${url} is not a turn: or turns: URL`);
  }
  if (turn.length > 0 && !options.turnSecret) {
    throw new Error('turnSecret: required with TURN URLs (the TURN server’s static-auth-secret)');
  }
  if (options.turnTtlSec !== undefined && !(options.turnTtlSec >= 1)) {
    throw new Error(`turnTtlSec: must be at least 1, got ${options.turnTtlSec}`);
  }
}

/** The ICE configuration a worker gets now. */
export function iceConfigFor(options: IceOptions, workerId: string, nowMs = Date.now()): IceConfig {
  const servers: IceServer[] = [...(options.iceServers ?? [])];
  const turn = options.turnUrls ?? [];
  if (turn.length === 0 || !options.turnSecret) return { iceServers: servers };
  const c = mintTurnCredentials(
    options.turnSecret,
    workerId,
    options.turnTtlSec ?? DEFAULT_TURN_TTL_SEC,
    nowMs,
  );
  servers.push({ urls: [...turn], username: c.username, credential: c.credential });
  return { iceServers: servers, expiresAt: c.expiresAtSec * 1000 };
}
