/**
 * Limits per remote address on the socket.io side (DESIGN §8): how many sockets one address
 * may hold at once and how often it may say hello. They bound what one stranger can take of
 * the server; they are generous because a classroom or an office shares one address.
 */
import type { Namespace } from 'socket.io';
import type { ErrorReply } from '@meshgrad/core';
import type { Logger } from './logger.ts';

export interface AddressLimitOptions {
  /** Sockets one address may hold at once, over every namespace. Default 256. */
  readonly maxConnectionsPerAddress?: number;
  /** Hellos one address may send per minute (a burst of that many, refilled evenly). Default 240. */
  readonly hellosPerMinute?: number;
}

export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 256;
export const DEFAULT_HELLOS_PER_MINUTE = 240;
/** How often idle per-address entries are dropped, so the table stays bounded. */
const SWEEP_MS = 60_000;

interface HelloBucket {
  tokens: number;
  at: number;
}

/** Counts sockets and hellos per address and refuses what goes over the limits. */
export class AddressLimits {
  readonly maxConnections: number;
  readonly hellosPerMinute: number;
  private readonly connections = new Map<string, number>();
  private readonly hellos = new Map<string, HelloBucket>();
  /** Addresses refused since the last sweep: one log line per address and sweep, not per try. */
  private readonly reported = new Set<string>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    options: AddressLimitOptions = {},
    private readonly onRefused: (limit: 'connections' | 'hellos') => void = () => undefined,
  ) {
    this.maxConnections = options.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS;
    this.hellosPerMinute = options.hellosPerMinute ?? DEFAULT_HELLOS_PER_MINUTE;
    for (const [name, v] of [
      ['maxConnectionsPerAddress', this.maxConnections],
      ['hellosPerMinute', this.hellosPerMinute],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
    }
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Installs the limits on a namespace: the connection limit, and for `hello` the hello limit. */
  install(nsp: Namespace): void {
    nsp.use((socket, next) => {
      const address = socket.handshake.address;
      const held = this.connections.get(address) ?? 0;
      if (held >= this.maxConnections) {
        this.refused(address, 'connections');
        const err = new Error(
          `too many connections from your address (at most ${this.maxConnections} at once)`,
        ) as Error & { data?: unknown };
        err.data = { code: 'ERR_RATE_LIMITED' };
        next(err);
        return;
      }
      this.connections.set(address, held + 1);
      socket.once('disconnect', () => {
        const left = (this.connections.get(address) ?? 1) - 1;
        if (left > 0) this.connections.set(address, left);
        else this.connections.delete(address);
      });
      socket.use((packet, nextPacket) => {
        if (packet[0] !== 'hello' || this.takeHello(address)) {
          nextPacket();
          return;
        }
        this.refused(address, 'hellos');
        const ack = packet[packet.length - 1];
        const reply: ErrorReply = {
          ok: false,
          code: 'ERR_RATE_LIMITED',
          message: `too many hellos from your address (at most ${this.hellosPerMinute} a minute); try again shortly`,
        };
        if (typeof ack === 'function') (ack as (r: ErrorReply) => void)(reply);
      });
      next();
    });
  }

  /** Sockets held by `address` now. */
  heldBy(address: string): number {
    return this.connections.get(address) ?? 0;
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private takeHello(address: string, now = Date.now()): boolean {
    const perMs = this.hellosPerMinute / 60_000;
    const b = this.hellos.get(address) ?? { tokens: this.hellosPerMinute, at: now };
    b.tokens = Math.min(this.hellosPerMinute, b.tokens + (now - b.at) * perMs);
    b.at = now;
    this.hellos.set(address, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private refused(address: string, limit: 'connections' | 'hellos'): void {
    this.onRefused(limit);
    const key = `${limit} ${address}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.log.warn({ remote: address, limit }, 'refusing a client over its address limit');
  }

  /** Drops hello buckets that have refilled (they say nothing a fresh one would not). */
  private sweep(now = Date.now()): void {
    const perMs = this.hellosPerMinute / 60_000;
    for (const [address, b] of this.hellos) {
      if (b.tokens + (now - b.at) * perMs >= this.hellosPerMinute) this.hellos.delete(address);
    }
    this.reported.clear();
  }
}
