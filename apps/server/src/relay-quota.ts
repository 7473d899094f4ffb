/**
 * Bounds on what the server relays between volunteers (DESIGN §4): the relay is a fallback for
 * workers without a direct link, so each sender gets a byte budget that refills over time, and
 * each receiver on this process a bound on bytes queued towards it and not yet handed to its
 * transport. Memory for relays is then bounded by the number of workers, whatever a sender
 * pushes or however slowly a receiver reads.
 */
import { DEFAULT_BALANCER_OPTIONS } from '@meshgrad/core';

/**
 * Bytes/s a sender may relay: twice what the balancer assumes the relay carries for a worker
 * (`relayCapacityBytesPerSec`), so a worker the balancer plans for never meets it.
 */
export const RELAY_BYTES_PER_SEC = 2 * DEFAULT_BALANCER_OPTIONS.relayCapacityBytesPerSec;
/** Bytes a sender may relay in one burst, and a receiver may have queued. */
export const RELAY_BURST_BYTES = 2 * 1024 * 1024;

export class RelayQuota {
  private readonly senders = new Map<string, { bytes: number; at: number }>();
  private readonly queued = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Counts a relay of `bytes` from `sender` to `receiver` when both have room; else the reason
   * it is refused, and nothing is counted. A receiver on another process (`local` false) has
   * its queue there: only the sender's budget applies here.
   */
  admit(sender: string, receiver: string, bytes: number, local = true): string | null {
    const now = this.now();
    const s = this.senders.get(sender) ?? { bytes: RELAY_BURST_BYTES, at: now };
    s.bytes = Math.min(RELAY_BURST_BYTES, s.bytes + ((now - s.at) / 1000) * RELAY_BYTES_PER_SEC);
    s.at = now;
    this.senders.set(sender, s);
    if (bytes > s.bytes) {
      return `over the relay quota of ${RELAY_BYTES_PER_SEC} bytes/s (bursts up to ${RELAY_BURST_BYTES}); send less, or again later`;
    }
    const queued = local ? (this.queued.get(receiver) ?? 0) : 0;
    if (queued + bytes > RELAY_BURST_BYTES) {
      return `worker ${receiver} has ${queued} relayed bytes not yet delivered (at most ${RELAY_BURST_BYTES}); send again later`;
    }
    s.bytes -= bytes;
    if (local) this.queued.set(receiver, queued + bytes);
    return null;
  }

  /** Everything queued towards `receiver` went out to its transport. */
  drained(receiver: string): void {
    this.queued.delete(receiver);
  }

  /** A worker left: its budget and queue go (per-id state stays bounded). */
  forget(workerId: string): void {
    this.senders.delete(workerId);
    this.queued.delete(workerId);
  }
}
