import type { ReceivedBlock } from '../model/backend.ts';

/** Most peer blocks one block index holds between two steps; more peers overwrite the oldest. */
export const MAX_PEERS_PER_BLOCK = 8;

/**
 * Per-block mailboxes with overwrite semantics (DESIGN §3 step 5): a newer block from a peer
 * replaces its unread older one, and the overwrite is counted, as with the paper's one-sided
 * writes. `drain()` hands everything waiting to the next training step.
 */
export class Mailbox {
  private readonly slots = new Map<number, Map<string, Float32Array>>();
  /** Blocks replaced before they were read. */
  overwritten = 0;
  /** The same, by the peer whose unread block was lost. */
  readonly overwrittenByPeer = new Map<string, number>();
  private waiting = 0;

  /** Stores `values` for `block` from `peer`; returns true when it replaced an unread block. */
  put(peer: string, block: number, values: Float32Array): boolean {
    let byPeer = this.slots.get(block);
    if (!byPeer) {
      byPeer = new Map();
      this.slots.set(block, byPeer);
    }
    const replaced = byPeer.has(peer);
    if (!replaced && byPeer.size >= MAX_PEERS_PER_BLOCK) {
      // Drop the oldest entry (Map keeps insertion order) to bound memory per block.
      const oldest = byPeer.keys().next().value;
      if (oldest !== undefined) {
        byPeer.delete(oldest);
        this.countOverwrite(oldest);
      }
    }
    if (replaced) {
      byPeer.delete(peer);
      this.countOverwrite(peer);
    }
    byPeer.set(peer, values);
    this.waiting++;
    return replaced;
  }

  private countOverwrite(peer: string): void {
    this.overwritten++;
    this.overwrittenByPeer.set(peer, (this.overwrittenByPeer.get(peer) ?? 0) + 1);
    this.waiting--;
  }

  /** Blocks waiting to be merged. */
  get size(): number {
    return this.waiting;
  }

  /** Everything waiting, emptied. */
  drain(): ReceivedBlock[] {
    const out: ReceivedBlock[] = [];
    for (const [block, byPeer] of this.slots) {
      for (const values of byPeer.values()) out.push({ block, values });
    }
    this.slots.clear();
    this.waiting = 0;
    return out;
  }
}
