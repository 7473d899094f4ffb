/**
 * Per-link statistics for the server (DESIGN §3 signals): the mesh's measurements of each link
 * joined with the training loop's per-peer counters, as rates over the interval since the
 * previous report.
 */
import type { LinkStats } from '@meshgrad/core';
import type { PeerCountersReport } from './messages.ts';
import type { LinkReport } from './peers.ts';

/** The server takes at most this many links in one statistics report. */
const MAX_REPORTED_LINKS = 64;

/** Turns each interval's measurements into the `links` of one statistics report. */
export class LinkStatsReporter {
  /** Counters at the previous report, for per-interval rates. */
  private previous: { offered: number; accepted: number; received: Map<string, number> } = {
    offered: 0,
    accepted: 0,
    received: new Map(),
  };

  /**
   * Sends the page had to drop count as skipped, not sent. The backend counts Parzen acceptance
   * per worker, not per peer, so every link that delivered blocks in the interval reports the
   * worker's rate for that interval.
   */
  report(
    reports: readonly LinkReport[],
    peers: readonly PeerCountersReport[],
    offered: number,
    accepted: number,
  ): LinkStats[] {
    const previous = this.previous;
    const counters = new Map(peers.map((p) => [p.peer, p]));
    const offeredNow = offered - previous.offered;
    const rate = offeredNow > 0 ? (accepted - previous.accepted) / offeredNow : undefined;
    const received = new Map<string, number>();
    const links = reports.slice(0, MAX_REPORTED_LINKS).map((r): LinkStats => {
      const c = counters.get(r.peer);
      const blocksReceived = c?.blocksReceived ?? 0;
      received.set(r.peer, blocksReceived);
      const fresh = blocksReceived > (previous.received.get(r.peer) ?? 0);
      return {
        peer: r.peer,
        relayed: r.route === 'turn' || r.route === 'server',
        ...(r.route !== 'connecting' ? { route: r.route } : {}),
        goodputBytesPerSec: r.goodputBytesPerSec,
        ...(r.rttMs !== undefined ? { rttMs: r.rttMs } : {}),
        backlogBytes: r.backlogBytes,
        blocksSent: Math.max(0, (c?.blocksSent ?? 0) - r.dropped),
        blocksReceived,
        overwritten: c?.overwritten ?? 0,
        rejected: c?.rejected ?? 0,
        ...(fresh && rate !== undefined ? { acceptanceRate: Math.min(1, Math.max(0, rate)) } : {}),
        skippedSends: (c?.sendsSkipped ?? 0) + r.dropped,
      };
    });
    this.previous = { offered, accepted, received };
    return links;
  }
}
