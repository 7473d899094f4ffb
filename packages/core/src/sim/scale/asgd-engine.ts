/**
 * The scaling simulator's ASGD: N workers on a virtual clock, each stepping every B / speed
 * seconds, merging the peer states that arrived since its last step with a pluggable
 * `MergeStrategy`, then pushing its state to `pushesPerStep` of its neighbours. Built for
 * 10,000 workers: every event costs O(model + neighbours), never O(workers); a pushed state is
 * one copy shared by reference by every receiver; data are streamed (`GradientStream`).
 */
import { Rng } from '../../util/rng.ts';
import { EventQueue } from '../event-queue.ts';
import { CrossingTracker } from './crossing.ts';
import type { LinkModel } from './links.ts';
import type { MergeStrategy, WorkerMerge } from './merge/strategy.ts';
import { WorkMeter } from './work-meter.ts';
import type { GradientStream, ScaleWorkload } from './workload.ts';

/** Most states one worker holds between two steps; a newer one from the same peer replaces. */
export const MAX_INBOX = 8;

export interface ScaleAsgdConfig {
  readonly workload: ScaleWorkload;
  readonly workers: number;
  readonly links: LinkModel;
  readonly strategy: MergeStrategy;
  readonly learningRate: number;
  /** Samples/s of every worker; default 400. */
  readonly samplesPerSec?: number;
  /** Peers each step's state goes to; default 1. */
  readonly pushesPerStep?: number;
  /** Fixed random neighbours per worker; default 4. */
  readonly neighbours?: number;
  /** Skip a push while the uplink queue holds more than this, seconds; default 0.25. */
  readonly valveS?: number;
  /** η rises linearly from 0 over this many seconds; default 0. */
  readonly warmupS?: number;
  /** Evaluation interval of the probe, simulated seconds. */
  readonly evalIntervalS: number;
  /**
   * The probe is the mean of the states of workers 0…probeAverage−1 (what a server averaging
   * the latest state uploads of that many volunteers would checkpoint); default 1: worker 0's
   * own state, as the server checkpoints today.
   */
  readonly probeAverage?: number;
  readonly maxTimeS: number;
  /** Stop at the target; default true. */
  readonly stopAtTarget?: boolean;
  /** Stop every worker after this many steps (fixed-work runs); default unlimited. */
  readonly stepsPerWorker?: number;
  readonly seed: number;
  readonly meter?: WorkMeter;
  /**
   * Sees every outgoing state before it leaves and may replace it (the attack harness,
   * `sim/byzantine`); default: states go out as they are.
   */
  readonly outgoing?: OutgoingHook;
}

/** What an outgoing hook may read of the run: live arrays, never to be written. */
export interface EngineView {
  readonly workers: number;
  readonly size: number;
  readonly blockSize: number;
  readonly initialParams: Float32Array;
  readonly learningRate: number;
  /** Worker `i`'s parameters now. */
  state(i: number): Float32Array;
  /** Worker `i`'s last minibatch gradient (zeros before its first step). */
  gradient(i: number): Float32Array;
  neighbours(i: number): Int32Array;
}

/** Rewrites outgoing states, e.g. the attackers' (`sim/byzantine/attacks.ts`). */
export interface OutgoingHook {
  /** Called once, before the first event. */
  attach(view: EngineView): void;
  /**
   * The message worker `from` sends to `to` at `nowS` in place of `state` (the sender's own
   * parameters, shared by its receivers: a hook that changes it returns a new array), or null
   * to send nothing. Called once per push and receiver.
   */
  outgoing(from: number, to: number, state: Float32Array, nowS: number): Float32Array | null;
}

export interface ScaleRunResult {
  /** Interpolated time to target, simulated seconds, or null. */
  readonly timeToTargetS: number | null;
  /** Probe quality at the end. */
  readonly finalQuality: number;
  /** The probe's parameters at the end (a copy). */
  readonly finalParams: Float32Array;
  /** Every evaluation of the probe. */
  readonly curve: readonly { readonly timeS: number; readonly value: number }[];
  readonly endS: number;
  readonly steps: number;
  readonly pushes: number;
  readonly pushesSkipped: number;
  /** Mean summed Parzen weight merged per step. */
  readonly meanMerged: number;
}

interface Worker {
  readonly index: number;
  readonly w: Float32Array;
  readonly g: Float32Array;
  readonly stream: GradientStream;
  readonly merge: WorkerMerge;
  readonly neighbours: Int32Array;
  readonly inbox: Float32Array[];
  readonly inboxFrom: number[];
  uplinkFreeS: number;
  downlinkFreeS: number;
  steps: number;
}

export async function runScaleAsgd(config: ScaleAsgdConfig): Promise<ScaleRunResult> {
  const { workload, links, strategy } = config;
  const n = config.workers;
  if (!(n >= 1) || !Number.isInteger(n)) throw new RangeError(`workers must be ≥ 1, got ${n}`);
  const meter = config.meter ?? new WorkMeter();
  const speed = config.samplesPerSec ?? 400;
  const stepS = workload.batchSize / speed;
  const pushes = Math.min(config.pushesPerStep ?? 1, n - 1);
  const k = Math.min(config.neighbours ?? 4, n - 1);
  const valveS = config.valveS ?? 0.25;
  const warmupS = config.warmupS ?? 0;
  const bytes = workload.size * 4;
  const rng = new Rng(config.seed * 48_271 + n);
  const clock = new EventQueue();
  const tracker = new CrossingTracker(
    workload.quality(workload.initialParams),
    workload.target,
    workload.higherIsBetter,
  );
  const stopAtTarget = config.stopAtTarget ?? true;
  const hook = config.outgoing;
  let done = false;
  let steps = 0;
  let pushed = 0;
  let skipped = 0;
  let merged = 0;

  const workers: Worker[] = [];
  for (let i = 0; i < n; i++) {
    const neighbours = new Int32Array(k);
    for (let j = 0; j < k; j++) {
      // k distinct peers other than i, drawn without a scan of all workers.
      let p: number;
      do p = rng.int(n);
      while (p === i || neighbours.subarray(0, j).includes(p));
      neighbours[j] = p;
    }
    workers.push({
      index: i,
      w: Float32Array.from(workload.initialParams),
      g: new Float32Array(workload.size),
      stream: workload.stream(i, config.seed),
      merge: strategy.create(workload.size, i),
      neighbours,
      inbox: [],
      inboxFrom: [],
      uplinkFreeS: 0,
      downlinkFreeS: 0,
      steps: 0,
    });
  }

  const deliver = (to: Worker, from: number, state: Float32Array) => {
    meter.events++;
    const at = to.inboxFrom.indexOf(from);
    meter.iterations += to.inboxFrom.length;
    if (at >= 0) {
      to.inbox[at] = state;
      return;
    }
    if (to.inbox.length >= MAX_INBOX) {
      to.inbox.shift();
      to.inboxFrom.shift();
    }
    to.inbox.push(state);
    to.inboxFrom.push(from);
  };

  const push = (from: Worker) => {
    const now = clock.nowS;
    let state: Float32Array | null = null;
    for (let p = 0; p < pushes; p++) {
      meter.iterations++;
      const to = workers[from.neighbours[(from.steps * pushes + p) % k]!]!;
      if (from.uplinkFreeS - now > valveS) {
        skipped++;
        continue;
      }
      if (state === null) {
        state = from.w.slice();
        meter.elements += state.length;
      }
      const message = hook ? hook.outgoing(from.index, to.index, state, now) : state;
      if (message === null) continue;
      const rate = Math.min(
        links.uplinkBytesPerSec(from.index),
        links.pathBytesPerSec(from.index, to.index),
      );
      from.uplinkFreeS = Math.max(now, from.uplinkFreeS) + bytes / rate;
      const reach = from.uplinkFreeS + links.latencyS(from.index, to.index);
      to.downlinkFreeS =
        Math.max(reach, to.downlinkFreeS) + bytes / links.downlinkBytesPerSec(to.index);
      const sender = from.index;
      clock.at(to.downlinkFreeS, () => deliver(to, sender, message));
      pushed++;
    }
  };

  const step = (worker: Worker) => {
    if (done) return;
    meter.events++;
    const now = clock.nowS;
    const eta =
      warmupS > 0 ? config.learningRate * Math.min(1, now / warmupS) : config.learningRate;
    worker.stream.gradient(worker.w, worker.g, workload.batchSize);
    meter.elements += workload.size * (1 + worker.inbox.length);
    meter.iterations += worker.inbox.length;
    merged += worker.merge.apply({
      w: worker.w,
      g: worker.g,
      eta,
      inbox: worker.inbox,
      blockSize: workload.blockSize,
      from: worker.inboxFrom,
    });
    worker.inbox.length = 0;
    worker.inboxFrom.length = 0;
    worker.steps++;
    steps++;
    if (n > 1) push(worker);
    if (config.stepsPerWorker === undefined || worker.steps < config.stepsPerWorker) {
      clock.after(stepS, () => step(worker));
    }
  };

  const probeCount = Math.min(config.probeAverage ?? 1, n);
  const probeState = new Float32Array(workload.size);
  const probe = (): Float32Array => {
    if (probeCount === 1) return workers[0]!.w;
    probeState.fill(0);
    for (let j = 0; j < probeCount; j++) {
      const w = workers[j]!.w;
      for (let i = 0; i < w.length; i++) probeState[i]! += w[i]! / probeCount;
    }
    meter.elements += probeCount * workload.size;
    return probeState;
  };

  hook?.attach({
    workers: n,
    size: workload.size,
    blockSize: workload.blockSize,
    initialParams: workload.initialParams,
    learningRate: config.learningRate,
    state: (i) => workers[i]!.w,
    gradient: (i) => workers[i]!.g,
    neighbours: (i) => workers[i]!.neighbours,
  });
  // Workers start out of phase, as volunteers do, not all in the same instant.
  for (const worker of workers) clock.at(stepS * rng.next(), () => step(worker));
  for (let t = config.evalIntervalS; t <= config.maxTimeS + 1e-12; t += config.evalIntervalS) {
    clock.at(t, () => {
      meter.events++;
      meter.elements += workload.size;
      const reached = tracker.record(clock.nowS, workload.quality(probe()));
      if (reached && stopAtTarget) done = true;
    });
  }
  await clock.run(config.maxTimeS, () => done);
  const finalParams = probe().slice();
  return {
    timeToTargetS: tracker.crossingS,
    finalQuality: workload.quality(finalParams),
    finalParams,
    curve: tracker.curve,
    endS: clock.nowS,
    steps,
    pushes: pushed,
    pushesSkipped: skipped,
    meanMerged: steps ? merged / steps : 0,
  };
}
