/**
 * Suspected volunteers (docs/design.md §8.2): which workers their neighbours keep refusing. Every
 * tab reports, per link, the messages it rejected from that peer and the blocks it took; a peer
 * whose messages most of its reporting neighbours reject is a suspect. The server cannot see
 * the blocks themselves, only these reports, and a report is the reporter's word: one lying tab
 * cannot make a suspect of an honest one (it takes most reporters, and two at least), and the
 * verdict is shown to the host with its evidence, never acted on by itself.
 */
import { refusesBlocks, type AdminSuspicion, type LinkStats } from '@meshgrad/core';
import type { WorkerEntry } from './roster.ts';

/**
 * A reporter counts as rejecting a peer when its link report says it refuses the peer's blocks
 * (core's `refusesBlocks`: 8 messages rejected at least, and half of all it got from the peer),
 * the rule by which the balancer stops sending that peer's blocks to it. A suspect needs this
 * many rejecting reporters at least, and more than half of its reporters.
 */
export const SUSPECT_MIN_REPORTERS = 2;
/** Refusals a worker's entry keeps (`WorkerEntry.refusals`). */
export const MAX_KEPT_REFUSALS = 64;

/**
 * Keeps, from a worker's new report, its links that refuse their peer (the newest last), and
 * forgets a kept refusal when the report lists the peer as taken after all (its counters are
 * cumulative, so the link now says more than the kept report did).
 */
export function keepRefusals(refusals: Map<string, LinkStats>, links: readonly LinkStats[]): void {
  for (const l of links) {
    refusals.delete(l.peer);
    if (refusesBlocks(l)) refusals.set(l.peer, l);
  }
  for (const peer of refusals.keys()) {
    if (refusals.size <= MAX_KEPT_REFUSALS) break;
    refusals.delete(peer);
  }
}

/**
 * Each reported peer's evidence, from the workers' latest reports and the refusals they made
 * before (`WorkerEntry.refusals`, for peers the latest report no longer lists); O(reported
 * links). Peers are keyed by the id the reporters gave the link, which is the worker id the
 * server issued.
 */
export function suspicions(
  workers: Iterable<Pick<WorkerEntry, 'id' | 'links'> & Partial<Pick<WorkerEntry, 'refusals'>>>,
): Map<string, AdminSuspicion> {
  const tally = new Map<
    string,
    { reporters: number; rejecting: number; rejected: number; received: number }
  >();
  const count = (w: { id: string }, l: LinkStats) => {
    if (l.peer === w.id) return;
    let t = tally.get(l.peer);
    if (!t) {
      t = { reporters: 0, rejecting: 0, rejected: 0, received: 0 };
      tally.set(l.peer, t);
    }
    t.reporters++;
    t.rejected += l.rejected;
    t.received += l.blocksReceived;
    if (refusesBlocks(l)) t.rejecting++;
  };
  for (const w of workers) {
    for (const l of w.links) count(w, l);
    if (!w.refusals?.size) continue;
    // A refusal kept from an earlier report counts where the latest no longer lists the peer.
    const listed = new Set(w.links.map((l) => l.peer));
    for (const l of w.refusals.values()) if (!listed.has(l.peer)) count(w, l);
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
