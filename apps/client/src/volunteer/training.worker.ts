/// <reference lib="webworker" />
/**
 * The training loop, in a dedicated Web Worker so the page stays responsive (DESIGN §2). State
 * messages pass to and from the main thread (where the transports live) as transferable
 * ArrayBuffers.
 */
import {
  AsgdWorker,
  Batcher,
  CpuBackend,
  decodeDataset,
  idHash,
  MAX_MESSAGE_BYTES,
  MAX_PEERS_PER_BLOCK,
  parameterLayout,
  PARZEN_MERGE_RULE,
  type Backend,
  type JobInfo,
  type MergeRule,
  type ParameterLayout,
  type WorkerSettings,
} from '@meshgrad/core';
import { WebGpuBackend, requestBackendDevice } from '@meshgrad/shaders';
import type { FromWorker, LinkReadiness, ToWorker } from './messages.ts';
import { SyncTrainer } from './sync-trainer.ts';

declare const self: DedicatedWorkerGlobalScope;

/** How often statistics go to the page (ms); the page forwards them to the server. */
const STATS_INTERVAL_MS = 1_000;
/** Longest stretch of steps before the loop yields to take messages (ms). */
const SLICE_MS = 50;
/**
 * Steps between two statistics drains. Drains are double-buffered: the loop starts one and
 * awaits it only at the next drain point, so it never waits on the step it just queued, and
 * queued device work stays bounded by two drain periods.
 */
const DRAIN_EVERY_STEPS = 8;

let asgd: AsgdWorker | null = null;
/** Training mode `sync`: the server's rounds drive the backend instead of the ASGD loop. */
let sync: SyncTrainer | null = null;
let paused = false;
let dutyCycle = 1;
let running = false;
let stopAfterSamples: number | undefined;
/**
 * Spot checks run on a backend of their own, of the kind training runs on, made at the first
 * check: stepping the training backend would disturb its blocks in flight (DESIGN §9).
 */
let checkBackend: Promise<Backend> | null = null;
let makeCheckBackend: ((params: Float32Array) => Promise<Backend>) | null = null;
/**
 * The page's latest neighbours, settings and learning rate, kept from the start message on:
 * `start` takes seconds to load its backend, and what the page sends meanwhile must reach the
 * loop it then makes, not be dropped because there is no loop yet.
 */
let latest: {
  neighbours: readonly string[];
  settings: WorkerSettings;
  learningRate: number;
} | null = null;
/** The page's latest word on each peer's link; a peer it has not named is not ready. */
let links = new Map<string, LinkReadiness>();

function post(message: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The backend the page asked for. WebGPU falls back to the CPU backend when it cannot start,
 * except for a job with its own WGSL kernel, which has no CPU implementation.
 */
async function createBackend(
  wanted: 'webgpu' | 'cpu',
  reason: string | undefined,
  layout: ParameterLayout,
  params: Float32Array,
  kernel: JobInfo['kernel'],
  merge: MergeRule,
): Promise<{ backend: Backend; reason: string | undefined }> {
  if (kernel && wanted === 'cpu') {
    throw new Error(
      `this job runs its own WGSL kernel and needs WebGPU (${reason ?? 'CPU backend chosen'})`,
    );
  }
  if (wanted === 'cpu') return { backend: new CpuBackend(layout, params, { merge }), reason };
  try {
    const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
    const adapter = await gpu?.requestAdapter();
    if (!adapter) throw new Error('no WebGPU adapter in the worker');
    const device = await requestBackendDevice(adapter);
    const options = { merge, ...(kernel && { customKernel: kernel }) };
    const backend = await WebGpuBackend.create(device, layout, params, options);
    // Room for core's Mailbox at its fullest, compiled now rather than mid-run (within what one
    // binding may hold; beyond that the mailbox grows on demand).
    const slotBytes = 4 * Math.min(layout.blockSize, layout.size);
    await backend.reserveMailbox(
      Math.min(
        MAX_PEERS_PER_BLOCK * layout.blockCount,
        Math.floor(device.limits.maxStorageBufferBindingSize / slotBytes),
      ),
    );
    return { backend, reason };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    if (kernel)
      throw new Error(`WebGPU failed to start, and this job's WGSL kernel needs it: ${why}`, {
        cause: err,
      });
    return {
      backend: new CpuBackend(layout, params, { merge }),
      reason: `WebGPU failed to start (${why})`,
    };
  }
}

async function start(msg: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  const layout = parameterLayout(msg.job.model, msg.job.blockSize);
  const params = new Float32Array(msg.params);
  if (params.length !== layout.size) {
    throw new Error(`checkpoint has ${params.length} parameters, the model needs ${layout.size}`);
  }
  const shard = decodeDataset(new Uint8Array(msg.shard));
  // Sync rounds take one plain step each: no merge, so no outer momentum either.
  const merge = msg.job.mode === 'sync' ? PARZEN_MERGE_RULE : (msg.job.merge ?? PARZEN_MERGE_RULE);
  const { backend, reason } = await createBackend(
    msg.backend,
    msg.backendReason,
    layout,
    params,
    msg.job.kernel,
    merge,
  );
  // A spot check replays one plain step (credit/spot-checks.ts): never outer momentum.
  makeCheckBackend = async (initial) =>
    (
      await createBackend(
        msg.backend,
        msg.backendReason,
        layout,
        initial,
        msg.job.kernel,
        PARZEN_MERGE_RULE,
      )
    ).backend;
  const seed = idHash(msg.workerId);
  const batcher = new Batcher(shard, msg.job.batchSize, msg.job.seed ^ seed);
  asgd = new AsgdWorker({
    backend,
    nextBatch: () => batcher.next(),
    sink: {
      // Skips, counted by the loop, while the link connects or its backlog is over the limit.
      ready: (peer) => links.get(peer)?.ready ?? false,
      maxMessageBytes: (peer) => links.get(peer)?.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      send(peer, message) {
        if (!links.get(peer)?.ready) return false;
        // A standalone copy, so the transfer detaches nothing the loop still uses.
        const data = message.slice().buffer;
        post({ type: 'send', peer, data }, [data]);
        return true;
      },
    },
    jobId: msg.job.id,
    workerId: msg.workerId,
    learningRate: latest?.learningRate ?? msg.job.learningRate,
    settings: latest?.settings ?? msg.settings,
    neighbours: [...(latest?.neighbours ?? msg.neighbours)],
    initialParams: params,
    guard: msg.job.mode === 'sync' ? 'off' : (msg.job.guard ?? 'off'),
    seed,
  });
  stopAfterSamples = msg.stopAfterSamples;
  post({ type: 'ready', backend: backend.name, reason });
  if (msg.job.mode === 'sync') {
    const trainer: SyncTrainer = new SyncTrainer({
      backend,
      nextBatch: () => batcher.next(),
      post,
      halted: () =>
        paused || (stopAfterSamples !== undefined && trainer.samples >= stopAfterSamples),
      dutyCycle: () => dutyCycle,
    });
    sync = trainer;
    trainer.start();
    return;
  }
  void loop(asgd);
}

async function loop(worker: AsgdWorker): Promise<void> {
  running = true;
  let lastStats = performance.now();
  let samplesAtLast = 0;
  let lossSum = 0;
  let lossCount = 0;
  let sinceDrain = 0;
  /** The drain started at the last drain point, awaited at the next. */
  let drain: ReturnType<AsgdWorker['drainStats']> | null = null;
  const halted = () =>
    paused || (stopAfterSamples !== undefined && worker.counters.samples >= stopAfterSamples);
  while (running) {
    const sliceStart = performance.now();
    if (!halted()) {
      while (performance.now() - sliceStart < SLICE_MS && !halted()) {
        await worker.step();
        if (++sinceDrain >= DRAIN_EVERY_STEPS) {
          sinceDrain = 0;
          const s = await drain;
          drain = worker.drainStats();
          // Awaited at the next drain point; until then a rejection is not an unhandled one.
          drain.catch(() => undefined);
          if (s?.loss !== undefined) {
            lossSum += s.loss * s.steps;
            lossCount += s.steps;
          }
        }
      }
    }
    const busy = performance.now() - sliceStart;
    // Duty cycle d: after `busy` ms of work rest busy·(1−d)/d ms, so work/(work+rest) = d.
    const rest = halted() ? 100 : dutyCycle < 1 ? (busy * (1 - dutyCycle)) / dutyCycle : 0;
    await sleep(rest);
    const now = performance.now();
    if (now - lastStats >= STATS_INTERVAL_MS) {
      const c = worker.counters;
      post({
        type: 'stats',
        stats: {
          samples: c.samples,
          samplesPerSec: ((c.samples - samplesAtLast) * 1000) / (now - lastStats),
          loss: lossCount ? lossSum / lossCount : undefined,
          offered: c.offered,
          accepted: c.accepted,
          blocksSent: c.blocksSent,
          blocksReceived: c.blocksReceived,
          rejected: c.rejected,
          overwritten: worker.mailbox.overwritten,
          sendsSkipped: c.sendsSkipped,
          paused: halted(),
          peers: [...worker.peerCounters].map(([peer, p]) => ({
            peer,
            ...p,
            overwritten: worker.mailbox.overwrittenByPeer.get(peer) ?? 0,
          })),
        },
      });
      lastStats = now;
      samplesAtLast = c.samples;
      lossSum = 0;
      lossCount = 0;
    }
  }
}

/** One step from the check's parameters on its minibatch, no peer blocks; the result goes back. */
async function spotCheck(msg: Extract<ToWorker, { type: 'spotCheck' }>): Promise<void> {
  if (!makeCheckBackend) return; // not started: the server drops the check unanswered
  const params = new Float32Array(msg.params);
  checkBackend ??= makeCheckBackend(params);
  const backend = await checkBackend;
  backend.writeParameters(params);
  const labels = msg.labels ? new Uint32Array(msg.labels) : null;
  backend.step({ size: msg.size, x: new Float32Array(msg.x), labels }, msg.learningRate);
  await backend.drainStats();
  const after = await backend.readParameters();
  const buffer = (
    after.byteLength === after.buffer.byteLength ? after.buffer : after.slice().buffer
  ) as ArrayBuffer;
  post({ type: 'spotCheckAnswer', checkId: msg.checkId, params: buffer }, [buffer]);
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'start':
      // Taken now, before `start` awaits anything: the messages that follow are newer.
      paused = msg.paused;
      dutyCycle = msg.dutyCycle;
      latest = {
        neighbours: msg.neighbours,
        settings: msg.settings,
        learningRate: msg.job.learningRate,
      };
      await start(msg);
      return;
    case 'receive':
      asgd?.receive(msg.from, msg.data);
      return;
    case 'settings':
      if (latest) latest.settings = msg.settings;
      if (asgd) asgd.settings = msg.settings;
      return;
    case 'neighbours':
      if (latest) latest.neighbours = msg.neighbours;
      if (asgd) asgd.neighbours = [...msg.neighbours];
      return;
    case 'control':
      paused = msg.paused;
      if (latest) latest.learningRate = msg.learningRate;
      if (asgd) asgd.learningRate = msg.learningRate;
      sync?.resume();
      return;
    case 'syncRound':
      sync?.offer(msg);
      return;
    case 'spotCheck':
      // A check that cannot run is the server's to judge (unanswered); training goes on.
      await spotCheck(msg).catch((err: unknown) =>
        console.warn(`spot check ${msg.checkId}: ${(err as Error).message}`),
      );
      return;
    case 'duty':
      dutyCycle = Math.min(1, Math.max(0.05, msg.dutyCycle));
      return;
    case 'links':
      links = new Map(msg.links.map((l) => [l.peer, l]));
      return;
    case 'readParameters': {
      if (!asgd) return;
      const samples = sync?.samples ?? asgd.counters.samples;
      const buffer = (await asgd.readParameters()).buffer as ArrayBuffer;
      post({ type: 'parameters', requestId: msg.requestId, samples, params: buffer }, [buffer]);
      return;
    }
    case 'readState': {
      if (!asgd) return;
      const samples = asgd.counters.samples;
      const params = await asgd.readParameters();
      const buffer = params.buffer as ArrayBuffer;
      post({ type: 'state', requestId: msg.requestId, samples, params: buffer }, [buffer]);
      return;
    }
  }
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  handle(event.data).catch((err: unknown) => {
    running = false;
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  });
};
