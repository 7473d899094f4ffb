import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  blocksPerSample,
  initialSettings,
  messageBytes,
  DEFAULT_BALANCER_OPTIONS,
  type LinkStats,
  type WorkerSettings,
} from '@meshgrad/core';
import { workerView } from '../admin/views.ts';
import { DataStore } from '../store.ts';
import { LocalClusterLink, type ClusterLink, type RemoteWorker } from './cluster-link.ts';
import { type Job, type JobOutbox, type WorkerEntry } from './job.ts';
import { MAX_DEPARTED_CREDITS, maxCredit } from './progress.ts';
import { WORKER_FIRST_REPORT_MS, WORKER_STALE_MS } from './roster.ts';
import { suspicions } from './suspects.ts';
import { closeTestJobs, openTestJob, stats } from './job.test-support.ts';
import { TEST_DEVICE } from '../server.test-support.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-job-'));
});
afterEach(async () => {
  await closeTestJobs();
  await rm(dir, { recursive: true, force: true });
});

/** An outbox that records what the job sends, attached to `job`. */
function recordingOutbox(job: Job) {
  const calls: {
    control: string[];
    requests: string[];
    /** Who each state request went to. */
    requestedFrom: string[];
    settings: { worker: string; settings: WorkerSettings }[];
    neighbours: { worker: string; neighbours: readonly string[] }[];
  } = { control: [], requests: [], requestedFrom: [], settings: [], neighbours: [] };
  const outbox: JobOutbox = {
    neighbours(worker, neighbours) {
      calls.neighbours.push({ worker, neighbours });
    },
    settings(worker, settings) {
      calls.settings.push({ worker, settings });
    },
    requestState(worker, requestId) {
      calls.requests.push(requestId);
      calls.requestedFrom.push(worker);
    },
    control(_worker, state) {
      calls.control.push(state);
    },
  };
  job.attach(outbox);
  return { outbox, calls };
}

async function openJob(extra: Record<string, unknown>): Promise<Job> {
  return openTestJob(new DataStore(dir), {
    id: 'blobs',
    name: 'Blobs',
    model: { kind: 'kmeans', dims: 2, clusters: 3 },
    dataset: { kind: 'clusters', clusters: 3, dims: 2, count: 300, testCount: 100 },
    ...extra,
  });
}

describe('Job', () => {
  it('starts with the spec’s fixed balancer settings', async () => {
    const job = await openJob({
      balancer: { mode: 'fixed', communicationPeriod: 48, blocksPerMessage: 1, encoding: 'f16' },
    });
    expect(job.balancer).toEqual({
      mode: 'fixed',
      settings: { communicationPeriod: 48, blocksPerMessage: 1, encoding: 'f16' },
    });
    recordingOutbox(job);
    expect(job.join(undefined, 's1', TEST_DEVICE).settings.communicationPeriod).toBe(48);
  });

  it('stops itself when a checkpoint meets the target objective', async () => {
    const job = await openJob({ stop: { targetObjective: 1e9 } });
    const { calls } = recordingOutbox(job);
    const w = job.join(undefined, 's1', TEST_DEVICE);
    job.recordStats(w, stats(100));
    const requestId = job.requestState();
    expect(requestId).not.toBeNull();
    const params = job.initialParams();
    expect(
      await job.acceptState(w.id, requestId as string, new Uint8Array(params.buffer.slice(0))),
    ).toBeNull();
    expect(job.state).toBe('running');
    await job.tick();
    expect(job.state).toBe('stopped');
    expect(calls.control).toEqual(['stopped']);
  });

  it('asks for a final state at maxSamples and stops once it is stored', async () => {
    const job = await openJob({ stop: { maxSamples: 500 }, checkpointIntervalSec: 3600 });
    const { calls } = recordingOutbox(job);
    const w = job.join(undefined, 's1', TEST_DEVICE);
    job.recordStats(w, stats(400));
    await job.tick();
    expect(calls.requests).toHaveLength(0);
    job.recordStats(w, stats(520));
    await job.tick();
    expect(job.state).toBe('running');
    expect(calls.requests).toHaveLength(1);
    const params = job.initialParams();
    await job.acceptState(
      w.id,
      calls.requests[0] as string,
      new Uint8Array(params.buffer.slice(0)),
    );
    await job.tick();
    expect(job.state).toBe('stopped');
    expect(job.latest?.samples).toBe(520);
  });

  it('renews neighbours once for all the workers a tick finds stale', async () => {
    const job = await openJob({});
    const { calls } = recordingOutbox(job);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id, i) => job.join(id, `s${i}`, TEST_DEVICE));
    for (const w of [a, b, c, d]) job.recordStats(w!, stats(10));
    // c and d went silent: one renewal after both are gone, not one per departure (each sorts
    // every worker id, and a network blip takes many workers at once).
    for (const w of [c, d]) w!.lastSeen = Date.now() - WORKER_STALE_MS - 1_000;
    calls.neighbours.length = 0;
    await job.tick();
    expect(job.hasWorker('c') || job.hasWorker('d')).toBe(false);
    expect(calls.neighbours).toEqual([
      { worker: 'a', neighbours: ['b'] },
      { worker: 'b', neighbours: ['a'] },
    ]);
  });

  it('gives a worker that has not reported yet (its shard downloading) longer before dropping it', async () => {
    const job = await openJob({});
    const w = job.join('slow', 's0', TEST_DEVICE);
    const reporting = job.join('quick', 's1', TEST_DEVICE);
    job.recordStats(reporting, stats(10));
    // Both silent longer than WORKER_STALE_MS: the one that reported is gone, the other stays.
    for (const x of [w, reporting]) x.lastSeen = Date.now() - WORKER_STALE_MS - 1_000;
    await job.tick();
    expect(job.hasWorker('quick')).toBe(false);
    expect(job.hasWorker('slow')).toBe(true);
    // Past WORKER_FIRST_REPORT_MS without a word, it is dropped too.
    w.lastSeen = Date.now() - WORKER_FIRST_REPORT_MS - 1_000;
    await job.tick();
    expect(job.hasWorker('slow')).toBe(false);
  });
});

/**
 * The automatic balancer as the server runs it: workers' reports in, settings and neighbours
 * out. A K-Means model of 1,024 parameters in 16 blocks of 64, so (b, m) have room to move.
 */
describe('Job balancer', () => {
  const BATCH = 16;
  const balancedJob = (extra: Record<string, unknown> = {}) =>
    openJob({
      model: { kind: 'kmeans', dims: 64, clusters: 16 },
      dataset: { kind: 'clusters', clusters: 16, dims: 64, count: 400, testCount: 100 },
      blockSize: 64,
      batchSize: BATCH,
      ...extra,
    });

  interface LinkPlan {
    readonly peer: string;
    readonly goodput: number;
    readonly backlog?: number;
    readonly blocksPerTick?: number;
    readonly skipsPerTick?: number;
    readonly relayed?: boolean;
    /** Messages from the peer this worker's guard rejected, per tick (the others it took). */
    readonly rejectedPerTick?: number;
  }

  /** Cumulative per-link counters a worker would report after `ticks` intervals. */
  function report(
    job: Job,
    w: WorkerEntry,
    ticks: number,
    opts: { samplesPerSec: number; busy?: number; links: readonly LinkPlan[] },
  ): void {
    const links: LinkStats[] = opts.links.map((l) => ({
      peer: l.peer,
      relayed: l.relayed ?? false,
      route: l.relayed ? 'server' : 'direct',
      goodputBytesPerSec: l.goodput,
      rttMs: 20,
      backlogBytes: l.backlog ?? 0,
      blocksSent: ticks * (l.blocksPerTick ?? 10),
      blocksReceived: ticks * (10 - (l.rejectedPerTick ?? 0)),
      overwritten: 0,
      rejected: ticks * (l.rejectedPerTick ?? 0),
      skippedSends: ticks * (l.skipsPerTick ?? 0),
    }));
    job.recordStats(
      w,
      {
        jobId: 'blobs',
        samples: ticks * opts.samplesPerSec,
        samplesPerSec: opts.samplesPerSec,
        offered: 0,
        accepted: 0,
        paused: false,
        links,
        ...(opts.busy !== undefined ? { sendBusyFraction: opts.busy } : {}),
      },
      ticks,
    );
  }

  type ReportPlan = Parameters<typeof report>[3];

  /** Ticks 1 to `ticks` of the balancer, each after every worker's report of its plan. */
  async function balanceTicks(
    job: Job,
    ticks: number,
    reports: ReadonlyArray<readonly [WorkerEntry, ReportPlan]>,
  ): Promise<void> {
    for (let t = 1; t <= ticks; t++) {
      for (const [w, plan] of reports) report(job, w, t, plan);
      await job.balanceWorkers(t);
    }
  }

  const rate = (s: WorkerSettings) => blocksPerSample(s, BATCH, 16);

  it('gives a worker on a slow, congested link a lower block rate than a fast one', async () => {
    const job = await balancedJob();
    const { calls } = recordingOutbox(job);
    const fast = job.join('fast', 's1', TEST_DEVICE);
    const slow = job.join('slow', 's2', TEST_DEVICE);
    expect(fast.settings).toEqual(job.spec.communication);
    await balanceTicks(job, 8, [
      // The fast worker's channel was busy 40% of the time for 400 KB/s: it could send 1 MB/s.
      [fast, { samplesPerSec: 320, busy: 0.4, links: [{ peer: 'slow', goodput: 400_000 }] }],
      // The slow one's channel was busy throughout for 2 KB/s, with a queue and skipped sends.
      [
        slow,
        {
          samplesPerSec: 320,
          busy: 1,
          links: [{ peer: 'fast', goodput: 2_000, backlog: 20_000, skipsPerTick: 4 }],
        },
      ],
    ]);
    expect(rate(slow.settings)).toBeLessThan(rate(fast.settings));
    expect(
      slow.settings.communicationPeriod > fast.settings.communicationPeriod ||
        slow.settings.blocksPerMessage < fast.settings.blocksPerMessage,
    ).toBe(true);
    expect(slow.plan).toMatchObject({ congested: true });
    expect(slow.plan!.budgetBytesPerSec).toBeLessThan(2_000);
    expect(fast.plan!.capacityBytesPerSec).toBeGreaterThan(500_000);
    // What the workers were told is what the job keeps, and what the console shows.
    const lastFor = (id: string) => calls.settings.filter((c) => c.worker === id).at(-1);
    expect(lastFor('slow')?.settings).toEqual(slow.settings);
    expect(lastFor('fast')?.settings).toEqual(fast.settings);
    const view = workerView(job, slow, Date.now());
    expect(view.settings).toEqual(slow.settings);
    expect(view.balance).toMatchObject({ congested: true, reason: slow.plan!.reason });
  });

  it('pushes settings only when they change, and never to a worker without statistics', async () => {
    const job = await balancedJob();
    const { calls } = recordingOutbox(job);
    const a = job.join('a', 's1', TEST_DEVICE);
    const b = job.join('b', 's2', TEST_DEVICE);
    const quiet = job.join('quiet', 's3', TEST_DEVICE);
    const pushes: number[] = [];
    for (let t = 1; t <= 20; t++) {
      const before = calls.settings.length;
      for (const [w, peer] of [
        [a, 'b'],
        [b, 'a'],
      ] as const) {
        report(job, w, t, {
          samplesPerSec: 160,
          busy: 0.5,
          links: [{ peer, goodput: 3_000 }],
        });
      }
      await job.balanceWorkers(t);
      pushes.push(calls.settings.length - before);
    }
    // The first plan applies at once; on a steady link the settings then settle.
    expect(pushes[0]).toBe(2);
    expect(pushes.slice(10)).toEqual(new Array(10).fill(0));
    for (let i = 1; i < calls.settings.length; i++) {
      const previous = calls.settings
        .slice(0, i)
        .filter((c) => c.worker === calls.settings[i]!.worker)
        .at(-1);
      if (previous) expect(previous.settings).not.toEqual(calls.settings[i]!.settings);
    }
    expect(calls.settings.some((c) => c.worker === 'quiet')).toBe(false);
    expect(quiet.settings).toEqual(job.spec.communication);
    expect(quiet.plan).toBeNull();
  });

  it('caps a relayed link at the relay capacity', async () => {
    const job = await balancedJob();
    recordingOutbox(job);
    const a = job.join('a', 's1', TEST_DEVICE);
    const b = job.join('b', 's2', TEST_DEVICE);
    // Both could send 2 MB/s (busy 5% for 100 KB/s), far over the relay's capacity…
    await balanceTicks(job, 4, [
      [
        a,
        {
          samplesPerSec: 16_000,
          busy: 0.05,
          links: [{ peer: 'b', goodput: 100_000, relayed: true }],
        },
      ],
      [b, { samplesPerSec: 16_000, busy: 0.05, links: [{ peer: 'a', goodput: 100_000 }] }],
    ]);
    // …but a's only neighbour is through the server's relay.
    const relayCap = DEFAULT_BALANCER_OPTIONS.relayCapacityBytesPerSec;
    expect(a.plan).toMatchObject({ reason: 'link-limit' });
    expect(a.plan!.budgetBytesPerSec).toBeLessThanOrEqual(
      DEFAULT_BALANCER_OPTIONS.targetUtilisation * relayCap + 1e-6,
    );
    expect(b.plan!.budgetBytesPerSec).toBeGreaterThan(relayCap);
    expect(rate(a.settings)).toBeLessThan(rate(b.settings));
  });

  it('never changes settings in fixed mode, and resumes from the current ones', async () => {
    const fixed = { communicationPeriod: 48, blocksPerMessage: 2, encoding: 'f16' } as const;
    const job = await balancedJob({ balancer: { mode: 'fixed', ...fixed } });
    const { calls } = recordingOutbox(job);
    const a = job.join('a', 's1', TEST_DEVICE);
    const b = job.join('b', 's2', TEST_DEVICE);
    const congested = (w: WorkerEntry, peer: string, t: number) =>
      report(job, w, t, {
        samplesPerSec: 320,
        busy: 1,
        links: [{ peer, goodput: 500, backlog: 50_000, skipsPerTick: 8 }],
      });
    for (let t = 1; t <= 5; t++) {
      congested(a, 'b', t);
      congested(b, 'a', t);
      await job.balanceWorkers(t);
      await job.tick();
    }
    expect(calls.settings).toEqual([]);
    expect(a.settings).toEqual(fixed);
    expect(a.plan).toBeNull();

    // Back to automatic: nothing is reset on the switch; the balancer's next tick adapts.
    const sentBefore = calls.settings.length;
    job.setBalancer({ mode: 'automatic' });
    expect(calls.settings.slice(sentBefore)).toEqual([]);
    expect(a.settings).toEqual(fixed);
    congested(a, 'b', 6);
    congested(b, 'a', 6);
    await job.balanceWorkers(6);
    expect(rate(a.settings)).toBeLessThan(rate(fixed));
    expect(calls.settings.map((c) => c.worker).sort()).toEqual(['a', 'b']);

    // And to fixed again: the fixed settings go out and the balancer stops.
    job.setBalancer({ mode: 'fixed', settings: fixed });
    expect(a.settings).toEqual(fixed);
    expect(a.plan).toBeNull();
    const pushed = calls.settings.length;
    congested(a, 'b', 7);
    congested(b, 'a', 7);
    await job.balanceWorkers(7);
    expect(calls.settings.length).toBe(pushed);
  });

  it('hands out the balancer’s neighbours, away from a relayed link', async () => {
    const job = await balancedJob({ neighbours: 2 });
    const { calls } = recordingOutbox(job);
    const ids = ['w1', 'w2', 'w3', 'w4', 'w5'];
    const workers = ids.map((id, i) => job.join(id, `s${i}`, TEST_DEVICE));
    // Before any statistics: the ring (±1 at k = 2).
    expect(workers[0]!.neighbours).toEqual(['w2', 'w5']);
    const w1 = workers[0]!;
    for (let t = 1; t <= 3; t++) {
      for (const w of workers) {
        report(job, w, t, {
          samplesPerSec: 160,
          busy: 0.5,
          links: w.neighbours.map((peer) => ({
            peer,
            goodput: 20_000,
            // w1 reaches w2 only through the server's relay.
            relayed: w.id === 'w1' && peer === 'w2',
          })),
        });
      }
      await job.balanceWorkers(t);
    }
    expect(w1.neighbours).not.toContain('w2');
    expect(w1.neighbours).toHaveLength(2);
    for (const w of workers) {
      expect(w.neighbours).not.toContain(w.id);
      const told = calls.neighbours.filter((c) => c.worker === w.id).at(-1);
      // Every list the worker holds is the one it was last told (or its ring from the join).
      if (told) expect(told.neighbours).toEqual(w.neighbours);
    }
    expect(calls.neighbours.some((c) => c.worker === 'w1')).toBe(true);

    // A newcomer without statistics gets ring neighbours; the others keep the balancer's.
    const before = new Map(workers.map((w) => [w.id, [...w.neighbours]]));
    const newcomer = job.join('w6', 's6', TEST_DEVICE);
    expect(newcomer.neighbours).toEqual(['w1', 'w5']);
    for (const w of workers) expect(w.neighbours).toEqual(before.get(w.id));

    // A worker that leaves is removed from every list at once.
    const gone = w1.neighbours[0]!;
    job.leave(gone, 'test');
    expect(w1.neighbours).not.toContain(gone);
    for (const w of job.workers.values()) expect(w.neighbours).not.toContain(gone);
  });

  it('gives no worker a receiver whose guard refuses its blocks; the refusals stay in the evidence', async () => {
    const job = await balancedJob({ neighbours: 2 });
    const ids = ['w1', 'w2', 'w3', 'w4', 'w5'];
    const workers = ids.map((id, i) => job.join(id, `s${i}`, TEST_DEVICE));
    const w5 = workers[4]!;
    // w1–w3 reject what w5 sends them; w4 takes it. Until tick 4 every worker reports a link
    // to every other; from tick 5 the refusing workers' links to w5 are closed.
    const refuses = (id: string) => ['w1', 'w2', 'w3'].includes(id);
    for (let t = 1; t <= 8; t++) {
      for (const w of workers) {
        const peers = ids.filter(
          (p) =>
            p !== w.id && (t <= 4 || !((p === 'w5' && refuses(w.id)) || (w === w5 && refuses(p)))),
        );
        report(job, w, t, {
          samplesPerSec: 160,
          busy: 0.5,
          links: peers.map((peer) => ({
            peer,
            goodput: 20_000,
            ...(peer === 'w5' && refuses(w.id) ? { rejectedPerTick: 10 } : {}),
          })),
        });
      }
      await job.balanceWorkers(t);
      if (t >= 2) expect(w5.neighbours, `tick ${t}`).toEqual(['w4']);
      for (const w of workers.slice(0, 4)) expect(w.neighbours).toHaveLength(2);
    }
    // The console's evidence still counts the three refusals their reports no longer list.
    expect(suspicions(job.workers.values()).get('w5')).toMatchObject({
      reporters: 4,
      rejecting: 3,
      suspected: true,
    });
    // The host switches the balancer to fixed and back: the new balancer learns the refusals
    // of the closed links from the server's records and still gives w5 only w4.
    job.setBalancer({
      mode: 'fixed',
      settings: { communicationPeriod: 32, blocksPerMessage: 2, encoding: 'f32' },
    });
    job.setBalancer({ mode: 'automatic' });
    for (let t = 9; t <= 11; t++) {
      for (const w of workers) {
        const peers = ids.filter(
          (p) => p !== w.id && !((p === 'w5' && refuses(w.id)) || (w === w5 && refuses(p))),
        );
        report(job, w, t, {
          samplesPerSec: 160,
          busy: 0.5,
          links: peers.map((peer) => ({ peer, goodput: 20_000 })),
        });
      }
      await job.balanceWorkers(t);
      expect(w5.neighbours, `tick ${t}`).toEqual(['w4']);
    }
  });

  it('acts only on fresh reports: a late one is not taken as a new interval each tick', async () => {
    const job = await balancedJob();
    recordingOutbox(job);
    const a = job.join('a', 's1', TEST_DEVICE);
    const b = job.join('b', 's2', TEST_DEVICE);
    // No busy fraction and no congestion: without a capacity sample the budget grows per
    // interval (rule 6), so a report taken again each tick would double it each tick.
    const quiet = (w: WorkerEntry, peer: string, t: number) =>
      report(job, w, t, { samplesPerSec: 320, links: [{ peer, goodput: 2_000 }] });
    quiet(a, 'b', 1);
    quiet(b, 'a', 1);
    await job.balanceWorkers(1);
    const budget = a.plan!.budgetBytesPerSec;
    const settings = { ...a.settings };
    // b keeps reporting; a's stats are late for three ticks.
    for (let t = 2; t <= 4; t++) {
      quiet(b, 'a', t);
      await job.balanceWorkers(t);
      expect(a.plan!.budgetBytesPerSec).toBe(budget);
      expect(a.settings).toEqual(settings);
      // Still a worker the balancer knows (a stale report is not a departure).
      expect(a.statsFresh).toBe(false);
    }
    expect(b.plan!.budgetBytesPerSec).toBeGreaterThan(budget);
    // The late report arrives: one interval's growth at most, from where a was.
    quiet(a, 'b', 5);
    await job.balanceWorkers(5);
    expect(a.plan!.budgetBytesPerSec).toBeGreaterThan(budget);
    expect(a.plan!.budgetBytesPerSec).toBeLessThanOrEqual(
      budget * DEFAULT_BALANCER_OPTIONS.maxGrowth,
    );
  });

  it('after a switch from fixed to automatic, starts from the settings the workers run', async () => {
    const fixed = { communicationPeriod: 16, blocksPerMessage: 16, encoding: 'f32' } as const;
    const job = await balancedJob({ balancer: { mode: 'fixed', ...fixed } });
    recordingOutbox(job);
    const a = job.join('a', 's1', TEST_DEVICE);
    const b = job.join('b', 's2', TEST_DEVICE);
    job.setBalancer({ mode: 'automatic' });
    const traffic = { blockCount: 16, parameterCount: 1024 };
    const burst = (s: WorkerSettings) => 2 * s.blocksPerMessage * messageBytes(traffic, s.encoding);
    // A queue of one and a half full-model messages: within the burst allowance of the fixed
    // settings (two messages of 16 blocks), beyond that of the settings the balancer would
    // assume for a worker it never saw.
    const backlog = 1.5 * 16 * messageBytes(traffic, 'f32');
    expect(burst(initialSettings(traffic, BATCH, 320))).toBeLessThan(backlog);
    expect(burst(fixed)).toBeGreaterThan(backlog);
    for (const [w, peer] of [
      [a, 'b'],
      [b, 'a'],
    ] as const) {
      report(job, w, 1, {
        samplesPerSec: 320,
        busy: 0.5,
        links: [{ peer, goodput: 2_000, backlog }],
      });
    }
    await job.balanceWorkers(1);
    expect(a.plan!.congested).toBe(false);
  });
  it('asks the worker with the fastest uplink for checkpoints, not the slow one', async () => {
    const job = await balancedJob();
    const { calls } = recordingOutbox(job);
    const fast = job.join('fast', 's1', TEST_DEVICE);
    const slow = job.join('slow', 's2', TEST_DEVICE);
    await balanceTicks(job, 3, [
      [fast, { samplesPerSec: 160, busy: 0.5, links: [{ peer: 'slow', goodput: 500_000 }] }],
      // The slow one contributed more samples, but its uplink carries a tenth.
      [slow, { samplesPerSec: 320, busy: 0.5, links: [{ peer: 'fast', goodput: 50_000 }] }],
    ]);
    expect(slow.contributed).toBeGreaterThan(fast.contributed);
    expect(fast.plan!.capacityBytesPerSec!).toBeGreaterThan(slow.plan!.capacityBytesPerSec!);
    const requestId = job.requestState();
    expect(requestId).not.toBeNull();
    expect(calls.requestedFrom).toEqual(['fast']);
  });
});

/** What a volunteer claims is not what the job believes: counts, states and ids are checked. */
describe('Job against a volunteer that lies', () => {
  const bytesOf = (params: Float32Array) => new Uint8Array(params.buffer.slice(0));

  it('a cluster whose calls fail (Redis down or past its command timeout) loses no report and ends nothing', async () => {
    // Like scale/cluster.ts on a stalled Redis: the client rejects every command after 5 s.
    class FailingLink implements ClusterLink {
      readonly shared = true;
      readonly remote = new Map<string, RemoteWorker>();
      private readonly local = new LocalClusterLink();
      sync(): Promise<boolean> {
        return Promise.reject(new Error('TimeoutError: sync'));
      }
      credited(): Promise<number | null> {
        return Promise.reject(new Error('TimeoutError: credited'));
      }
      addSamples(): Promise<number> {
        return Promise.reject(new Error('TimeoutError: addSamples'));
      }
      workerJoined(): void {}
      workerLeft(): void {}
      samples(): Promise<number> {
        return this.local.samples();
      }
      seedSamples(samples: number): Promise<void> {
        return this.local.seedSamples(samples);
      }
      lead(): Promise<boolean> {
        return this.local.lead();
      }
      checkpointStored(): Promise<void> {
        return this.local.checkpointStored();
      }
      controlChanged(): void {}
      balancerChanged(): void {}
      banned(): void {}
    }
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const job = await openJob({ checkpointIntervalSec: 3600 });
      await job.joinCluster(new FailingLink(), null);
      const worker = job.join(undefined, 's1', TEST_DEVICE);
      job.recordStats(worker, stats(200));
      // Unhandled rejections are reported after the microtask queue drains.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
      // The report counted here, whatever the cluster said.
      expect(worker.contributed).toBe(200);
      expect(job.samples).toBe(200);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('credits a claim of 2^53 − 1 samples at most the measured-rate bound; maxSamples does not stop the job', async () => {
    const job = await openJob({ stop: { maxSamples: 1e12 }, checkpointIntervalSec: 3600 });
    const { calls } = recordingOutbox(job);
    const liar = job.join(undefined, 's1', TEST_DEVICE);
    job.recordStats(liar, stats(Number.MAX_SAFE_INTEGER));
    expect(job.samples).toBeGreaterThan(0);
    expect(job.samples).toBeLessThanOrEqual(maxCredit(Date.now() - liar.joinedAt));
    expect(liar.contributed).toBe(job.samples);
    await job.tick();
    expect(job.state).toBe('running');
    expect(calls.requests).toHaveLength(0);
    // Honest reports keep being credited in full.
    const honest = job.join(undefined, 's2', TEST_DEVICE);
    job.recordStats(honest, stats(300));
    expect(honest.contributed).toBe(300);
  });

  it('chooses the uploader from what the server saw: a refused upload ranks a worker last, its claims never count', async () => {
    const job = await openJob({
      balancer: { mode: 'fixed', communicationPeriod: 48, blocksPerMessage: 1, encoding: 'f32' },
    });
    const { calls } = recordingOutbox(job);
    // The liar joined first, so the server has known it longest.
    const liar = job.join(undefined, 's1', TEST_DEVICE);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const honest = job.join(undefined, 's2', TEST_DEVICE);
    job.recordStats(liar, stats(Number.MAX_SAFE_INTEGER));
    job.recordStats(honest, stats(100));
    const first = job.requestState() as string;
    expect(calls.requestedFrom).toEqual([liar.id]);
    const garbage = job.initialParams().map((v) => v + 100);
    expect(await job.acceptState(liar.id, first, bytesOf(garbage))).toMatch(/regressed/);
    expect(job.latest).toBeNull();
    // However many samples it claims, the worker whose upload was refused is asked last.
    job.recordStats(liar, stats(Number.MAX_SAFE_INTEGER));
    job.requestState();
    expect(calls.requestedFrom).toEqual([liar.id, honest.id]);
  });

  it('refuses an uploaded state whose held-out loss regressed beyond noise; the checkpoint stays', async () => {
    const job = await openJob({});
    const { calls } = recordingOutbox(job);
    const w = job.join(undefined, 's1', TEST_DEVICE);
    job.recordStats(w, stats(100));
    const good = job.initialParams();
    expect(await job.acceptState(w.id, job.requestState() as string, bytesOf(good))).toBeNull();
    const before = job.latest;
    job.recordStats(w, stats(200));
    const bad = good.map((v) => v + 100);
    const problem = await job.acceptState(w.id, job.requestState() as string, bytesOf(bad));
    expect(problem).toMatch(/regress/);
    expect(job.latest).toEqual(before);
    expect(job.checkpointParams().params).toEqual(good);
    expect(calls.requestedFrom).toEqual([w.id, w.id]);
  });

  /** Lloyd's algorithm on the job's held-out points, from its initial centres: a good state. */
  function lloyd(job: Job, iterations: number): Float32Array {
    const { x, count } = job.test;
    const c = Float32Array.from(job.initialParams());
    const k = c.length / 2;
    for (let it = 0; it < iterations; it++) {
      const sum = new Float64Array(c.length);
      const n = new Float64Array(k);
      for (let i = 0; i < count; i++) {
        let best = 0;
        let bestD = Infinity;
        for (let j = 0; j < k; j++) {
          const d = (x[2 * i]! - c[2 * j]!) ** 2 + (x[2 * i + 1]! - c[2 * j + 1]!) ** 2;
          if (d < bestD) [best, bestD] = [j, d];
        }
        sum[2 * best] = sum[2 * best]! + x[2 * i]!;
        sum[2 * best + 1] = sum[2 * best + 1]! + x[2 * i + 1]!;
        n[best] = n[best]! + 1;
      }
      for (let j = 0; j < k; j++) {
        if (n[j]! > 0) [c[2 * j], c[2 * j + 1]] = [sum[2 * j]! / n[j]!, sum[2 * j + 1]! / n[j]!];
      }
    }
    return c;
  }

  it('stores the mean of recent uploads of different workers when it is better than the upload', async () => {
    const job = await openJob({});
    recordingOutbox(job);
    const good = lloyd(job, 20);
    const noise = Float32Array.from(good, (_, i) => (i % 3 === 0 ? 0.6 : -0.4));
    const a = good.map((v, i) => v + noise[i]!);
    const b = good.map((v, i) => v - noise[i]!);
    const wa = job.join(undefined, 'sa', TEST_DEVICE);
    job.recordStats(wa, stats(100));
    expect(await job.acceptState(wa.id, job.requestState() as string, bytesOf(a))).toBeNull();
    const first = job.latest!;
    expect(first.averagedOver).toBeUndefined();
    expect(job.checkpointParams().params).toEqual(a);
    // A leaves; its state is still recent. B's upload and A's average to the good state.
    job.leave(wa.id, 'closed');
    const wb = job.join(undefined, 'sb', TEST_DEVICE);
    job.recordStats(wb, stats(100));
    const requestId = job.requestState() as string;
    expect(await job.acceptState(wb.id, requestId, bytesOf(b))).toBeNull();
    const latest = job.latest!;
    expect(latest.worker).toBe(wb.id);
    expect(latest.averagedOver).toBe(2);
    const stored = job.checkpointParams().params;
    for (let i = 0; i < good.length; i++) expect(stored[i]).toBeCloseTo(good[i]!, 5);
    expect(latest.testLoss).toBeLessThan(first.testLoss);
  });

  it('stores the upload as it came when the mean with older uploads is worse', async () => {
    const job = await openJob({});
    recordingOutbox(job);
    const start = Float32Array.from(job.initialParams());
    const good = lloyd(job, 20);
    const wa = job.join(undefined, 'sa', TEST_DEVICE);
    job.recordStats(wa, stats(100));
    expect(await job.acceptState(wa.id, job.requestState() as string, bytesOf(start))).toBeNull();
    const first = job.latest!;
    job.leave(wa.id, 'closed');
    const wb = job.join(undefined, 'sb', TEST_DEVICE);
    job.recordStats(wb, stats(100));
    expect(await job.acceptState(wb.id, job.requestState() as string, bytesOf(good))).toBeNull();
    expect(job.latest?.averagedOver).toBeUndefined();
    expect(job.latest!.testLoss).toBeLessThan(first.testLoss);
    expect(job.checkpointParams().params).toEqual(good);
  });

  it('keeps credit for a bounded number of departed ids', async () => {
    const job = await openJob({});
    recordingOutbox(job);
    for (let i = 0; i < 3_000; i++) {
      const w = job.join(undefined, `s${i}`, TEST_DEVICE);
      job.recordStats(w, stats(1));
      job.leave(w.id, 'test');
    }
    await job.flush();
    const progress = await new DataStore(dir).loadProgress('blobs');
    expect(Object.keys(progress?.credited ?? {}).length).toBeLessThanOrEqual(MAX_DEPARTED_CREDITS);
    expect(MAX_DEPARTED_CREDITS).toBeLessThan(3_000);
  });
});
