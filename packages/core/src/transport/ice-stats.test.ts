import { describe, expect, it } from 'vitest';
import { probeFromStats, type StatsRecord } from './ice-stats.ts';

const candidates: StatsRecord[] = [
  { id: 'L1', type: 'local-candidate', candidateType: 'host' },
  { id: 'R1', type: 'remote-candidate', candidateType: 'host' },
  { id: 'L2', type: 'local-candidate', candidateType: 'relay' },
  { id: 'R2', type: 'remote-candidate', candidateType: 'srflx' },
];

/** The candidate pair of the two host candidates, with `extra` fields. */
const hostPair = (extra: Partial<StatsRecord>): StatsRecord => ({
  id: 'P1',
  type: 'candidate-pair',
  localCandidateId: 'L1',
  remoteCandidateId: 'R1',
  ...extra,
});

describe('probeFromStats', () => {
  it('follows the transport to the selected pair (Chromium)', () => {
    const report: StatsRecord[] = [
      ...candidates,
      hostPair({}),
      {
        id: 'P2',
        type: 'candidate-pair',
        localCandidateId: 'L2',
        remoteCandidateId: 'R2',
        currentRoundTripTime: 0.042,
      },
      { id: 'T', type: 'transport', selectedCandidatePairId: 'P2' },
    ];
    const p = probeFromStats(report);
    expect(p.route).toBe('turn');
    expect(p.rttMs).toBeCloseTo(42);
  });

  it('takes a pair flagged selected, or a nominated succeeded one, without a transport', () => {
    expect(probeFromStats([...candidates, hostPair({ selected: true })])).toEqual({
      rttMs: undefined,
      route: 'direct',
    });
    expect(
      probeFromStats([
        ...candidates,
        hostPair({ nominated: true, state: 'succeeded', currentRoundTripTime: 0.001 }),
      ]),
    ).toEqual({ rttMs: 1, route: 'direct' });
  });

  it('says nothing rather than guess on an empty or odd report', () => {
    expect(probeFromStats([])).toEqual({ rttMs: undefined, route: undefined });
    expect(
      probeFromStats([
        { id: 'T', type: 'transport', selectedCandidatePairId: 'missing' },
        { id: 'P', type: 'candidate-pair', currentRoundTripTime: Number.NaN, selected: true },
      ]),
    ).toEqual({ rttMs: undefined, route: undefined });
  });
});
