/**
 * Suspected volunteers (docs/design.md §8.2): which workers their neighbours keep refusing. Every
 * tab reports, per link, the messages it rejected from that peer and the blocks it took; a peer
 * whose messages most of its reporting neighbours reject is a suspect. The server cannot see
 * the blocks themselves, only these reports, and a report is the reporter's word: one lying tab
 * cannot make a suspect of an honest one (it takes most reporters, and two at least), and the
 * verdict is shown to the host with its evidence, never acted on by itself.
 */
import type { AdminSuspicion } from '@meshgrad/core';
import type { WorkerEntry } from './roster.ts';

/** A reporter counts as rejecting a peer once it rejected this many of its messages… */
export const SUSPECT_MIN_REJECTED = 8;
/** …and at least this share of all it got from the peer (rejected over rejected + taken). */
export const SUSPECT_REJECTED_SHARE = 0.5;
/** A suspect needs this many rejecting reporters at least, and more than half of its reporters. */
export const SUSPECT_MIN_REPORTERS = 2;

/**
 * Each reported peer's evidence, from the workers' latest reports; O(reported links). Peers
 * are keyed by the id the reporters gave the link, which is the worker id the server issued.
 */
export function suspicions(
  workers: Iterable<Pick<WorkerEntry, 'id' | 'links'>>,
): Map<string, AdminSuspicion> {
  const tally = new Map<
    string,
    { reporters: number; rejecting: number; rejected: number; received: number }
  >();
  for (const w of workers) {
    for (const l of w.links) {
      if (l.peer === w.id) continue;
      let t = tally.get(l.peer);
      if (!t) {
        t = { reporters: 0, rejecting: 0, rejected: 0, received: 0 };
        tally.set(l.peer, t);
      }
      t.reporters++;
      t.rejected += l.rejected;
      t.received += l.blocksReceived;
      if (
        l.rejected >= SUSPECT_MIN_REJECTED &&
        l.rejected >= SUSPECT_REJECTED_SHARE * (l.rejected + l.blocksReceived)
      ) {
        t.rejecting++;
      }
    }
  }
  const out = new Map<string, AdminSuspicion>();
  for (const [peer, t] of tally) {
    out.set(peer, {
      ...t,
      suspected: t.rejecting >= SUSPECT_MIN_REPORTERS && t.rejecting * 2 > t.reporters,
    });
  }
  return out;
}
