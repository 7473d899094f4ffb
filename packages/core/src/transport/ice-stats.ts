/**
 * Reads a WebRTC statistics report (`RTCPeerConnection.getStats()`, as plain records) for the
 * selected ICE candidate pair: its round-trip time, and whether either end is a TURN relay.
 * Pure, so it is tested in Node without a browser.
 */
import type { LinkProbe } from './peer-link.ts';

/** The fields of an RTCStats record this module reads; everything else is ignored. */
export interface StatsRecord {
  readonly id?: unknown;
  readonly type?: unknown;
  readonly selectedCandidatePairId?: unknown;
  readonly localCandidateId?: unknown;
  readonly remoteCandidateId?: unknown;
  readonly candidateType?: unknown;
  readonly currentRoundTripTime?: unknown;
  readonly state?: unknown;
  readonly nominated?: unknown;
  readonly selected?: unknown;
}

/**
 * RTT and route of the pair the transport uses. The pair comes from the `transport` record's
 * `selectedCandidatePairId` (the standard way), else from a `candidate-pair` flagged `selected`
 * (older Firefox), else a nominated pair that succeeded.
 */
export function probeFromStats(records: Iterable<StatsRecord>): LinkProbe {
  const byId = new Map<string, StatsRecord>();
  const all: StatsRecord[] = [];
  for (const r of records) {
    all.push(r);
    if (typeof r.id === 'string') byId.set(r.id, r);
  }
  let pair: StatsRecord | undefined;
  for (const r of all) {
    if (r.type === 'transport' && typeof r.selectedCandidatePairId === 'string') {
      pair = byId.get(r.selectedCandidatePairId);
      if (pair) break;
    }
  }
  pair ??= all.find((r) => r.type === 'candidate-pair' && r.selected === true);
  pair ??= all.find(
    (r) => r.type === 'candidate-pair' && r.nominated === true && r.state === 'succeeded',
  );
  if (!pair) return { rttMs: undefined, route: undefined };
  const rtt = pair.currentRoundTripTime;
  const rttMs =
    typeof rtt === 'number' && Number.isFinite(rtt) && rtt >= 0 ? rtt * 1000 : undefined;
  const local =
    typeof pair.localCandidateId === 'string' ? byId.get(pair.localCandidateId) : undefined;
  const remote =
    typeof pair.remoteCandidateId === 'string' ? byId.get(pair.remoteCandidateId) : undefined;
  if (!local || !remote) return { rttMs, route: undefined };
  const relayed = local.candidateType === 'relay' || remote.candidateType === 'relay';
  return { rttMs, route: relayed ? 'turn' : 'direct' };
}
