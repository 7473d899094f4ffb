import { describe, expect, it } from 'vitest';
import { SLICE_WORKERS, type LinkStats } from '@meshgrad/core';
import { createLogger } from '../logger.ts';
import { TEST_DEVICE } from '../server.test-support.ts';
import { AutoBalancing } from './balancing.ts';
import { parseJobSpec } from './job-spec.ts';
import type { JobOutbox } from './outbox.ts';
import { Roster } from './roster.ts';

const spec = parseJobSpec({
  id: 'blobs',
  name: 'Blobs',
  model: { kind: 'kmeans', dims: 2, clusters: 3 },
  dataset: { kind: 'clusters', clusters: 3, dims: 2, count: 300, testCount: 100 },
});
const MODEL = { blockCount: 8, parameterCount: 2048 };

/** `n` workers that reported once, each linked to the next two on a ring. */
function reportingRoster(n: number): Roster {
  const roster = new Roster(spec.shards, spec.neighbours);
  const ids = Array.from({ length: n }, (_, i) => `w${i}`);
  for (const [i, id] of ids.entries()) {
    const w = roster.add(id, `s${i}`, TEST_DEVICE, { ...spec.communication }, new Map());
    const links: LinkStats[] = [1, 2].map((d) => ({
      peer: ids[(i + d) % n]!,
      relayed: false,
      goodputBytesPerSec: 40_000,
      rttMs: 20,
      backlogBytes: 0,
      blocksSent: 10,
      blocksReceived: 10,
      overwritten: 0,
      rejected: 0,
      skippedSends: 0,
    }));
    w.links = links;
    w.samplesPerSec = 300;
    w.sendBusyFraction = 0.5;
    w.neighbours = links.map((l) => l.peer);
    w.reported = true;
    w.statsFresh = true;
    w.statsAtS = 1;
  }
  return roster;
}

function countingOutbox() {
  const sent = { settings: 0, neighbours: 0 };
  const outbox: JobOutbox = {
    settings: () => void sent.settings++,
    neighbours: () => void sent.neighbours++,
    requestState: () => {},
    control: () => {},
  };
  return { sent, outbox };
}

describe('AutoBalancing.tick', () => {
  it('runs a large tick in slices, with a turn of the event loop between them', async () => {
    const n = 3 * SLICE_WORKERS;
    const roster = reportingRoster(n);
    const { sent, outbox } = countingOutbox();
    let yields = 0;
    const balancing = new AutoBalancing(spec, MODEL, createLogger('silent'), async () => {
      yields++;
      await new Promise((resolve) => setImmediate(resolve));
    });
    await balancing.tick(roster, outbox, true, 1);
    // Each worker counts once in each of the balancer's five phases, then once as its plan is
    // applied: a yield after every SLICE_WORKERS of them.
    expect(yields).toBeGreaterThanOrEqual(6 * (n / SLICE_WORKERS) - 2);
    expect([...roster.workers.values()].every((w) => w.plan !== null)).toBe(true);
    expect(sent.settings).toBeGreaterThan(0);
  });

  it('reports its main-thread time, without the pauses between its slices', async () => {
    const roster = reportingRoster(2 * SLICE_WORKERS);
    const { outbox } = countingOutbox();
    let pausedMs = 0;
    let pauses = 0;
    const balancing = new AutoBalancing(spec, MODEL, createLogger('silent'), async () => {
      // Other work of the event loop, 5 ms of it between two slices.
      const started = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 5));
      pausedMs += performance.now() - started;
      pauses++;
    });
    const started = performance.now();
    const busyMs = await balancing.tick(roster, outbox, true, 1);
    const wallMs = performance.now() - started;
    expect(pauses).toBeGreaterThan(5);
    expect(busyMs).toBeGreaterThan(0);
    expect(busyMs! + pausedMs).toBeLessThanOrEqual(wallMs);
    // No tick ran: nothing reported since.
    for (const w of roster.workers.values()) w.reported = false;
    expect(await balancing.tick(roster, outbox, true, 2)).toBeNull();
  });

  it('applies nothing when its balancer was dropped between two slices', async () => {
    const roster = reportingRoster(2 * SLICE_WORKERS);
    const { sent, outbox } = countingOutbox();
    const balancing: AutoBalancing = new AutoBalancing(
      spec,
      MODEL,
      createLogger('silent'),
      async () => {
        // The admin switches modes, or the job joins a cluster, while the tick runs.
        balancing.restart();
        await Promise.resolve();
      },
    );
    expect(await balancing.tick(roster, outbox, true, 1)).toBeNull();
    expect([...roster.workers.values()].some((w) => w.plan !== null)).toBe(false);
    expect(sent).toEqual({ settings: 0, neighbours: 0 });
    // The next tick starts afresh and applies its plans.
    const next = new AutoBalancing(spec, MODEL, createLogger('silent'), () => Promise.resolve());
    await next.tick(roster, outbox, true, 2);
    expect(sent.settings).toBeGreaterThan(0);
  });
});
