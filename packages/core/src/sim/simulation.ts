/**
 * The simulator's configuration and results, and `simulate`, which runs one configuration:
 * real ASGD workers (`AsgdWorker` over `CpuBackend`, real codec) or synchronous parameter-server
 * SGD, on the simulated network and a virtual clock. Compute takes simulated time (a step of B
 * samples takes B / speed seconds), not wall time, so 64 workers run on a laptop.
 */
import type { BalancerOptions, BudgetReason } from '../balancer/controller.ts';
import type { Dataset } from '../data/dataset.ts';
import type { MergeRule } from '../model/merge-rule.ts';
import type { ParameterLayout } from '../model/spec.ts';
import type { WorkerSettings } from '../protocol/events.ts';
import type { EventQueue } from './event-queue.ts';
import type { PathOptions, SimNetwork } from './network.ts';
import type { Schedule } from './schedule.ts';

/**
 * How the workers train. 'asgd': the project's algorithm (DESIGN §3). 'sync': synchronous
 * parameter-server SGD, one barrier per round. The simulator implements both; the real system
 * runs 'asgd', and a real 'sync' mode would plug in under the same name.
 */
export type TrainingMode = 'asgd' | 'sync';

/** How ASGD workers choose their communication settings. */
export type CommunicationPolicy =
  | { readonly kind: 'balancer'; readonly options?: BalancerOptions }
  | { readonly kind: 'fixed'; readonly settings: WorkerSettings }
  | { readonly kind: 'none' };

/** A training task: model, data, hyperparameters and what counts as done. */
export interface Workload {
  readonly name: string;
  readonly layout: ParameterLayout;
  /** Every worker starts from these parameters (the job's seeded initialisation). */
  readonly initialParams: Float32Array;
  readonly batchSize: number;
  readonly learningRate: number;
  /** Training data of worker `index` among `count` data slots. */
  shard(index: number, count: number): Dataset;
  /** Held-out progress of a parameter vector; `reached` when the target is met. */
  progress(params: Float32Array): { readonly value: number; readonly reached: boolean };
  /** What `progress().value` is, for reports (e.g. `test accuracy`). */
  readonly metric: string;
}

/** One simulated volunteer. */
export interface SimWorkerSpec {
  readonly id: string;
  /** Training speed, samples/s (a schedule to slow down or pause: 0 pauses). */
  readonly samplesPerSec: Schedule;
  /** Upload capacity, bytes/s. */
  readonly uplink: Schedule;
  /** Download capacity, bytes/s. */
  readonly downlink: Schedule;
  /** When the worker joins, seconds; default 0. */
  readonly joinAtS?: number;
  /** When the worker leaves, seconds; default never. */
  readonly leaveAtS?: number;
}

export interface SimulationConfig {
  readonly workload: Workload;
  /** Worker i trains on data slot i of `workers.length`. */
  readonly workers: readonly SimWorkerSpec[];
  /** Properties of the path between two workers (or a worker and the 'server'). */
  readonly path: (from: string, to: string) => PathOptions;
  /** Default 'asgd'. */
  readonly mode?: TrainingMode;
  /** ASGD only; default the balancer with its defaults. */
  readonly policy?: CommunicationPolicy;
  /** ASGD only: how each worker's backend merges (default `PARZEN_MERGE_RULE`, the first rule). */
  readonly merge?: MergeRule;
  /** Neighbours per worker for ASGD; default 4. */
  readonly neighbours?: number;
  /** How often workers report and the balancer runs, simulated seconds; default 1. */
  readonly tickIntervalS?: number;
  /** How often the probe worker's model is evaluated, simulated seconds; default 1. */
  readonly evalIntervalS?: number;
  /**
   * The worker whose model is evaluated (the one the server would checkpoint); default the
   * first worker. If it leaves, the first live worker in `workers` order takes over.
   */
  readonly probeWorker?: string;
  /** Simulated time limit, seconds. */
  readonly maxTimeS: number;
  /** Stop at the first evaluation that reaches the target; default true. */
  readonly stopAtTarget?: boolean;
  /** Seeds everything random (batches, neighbour choice, jitter); default 1. */
  readonly seed?: number;
  /** Hard safety valve per channel, bytes; default DEFAULT_SEND_BACKLOG_LIMIT_BYTES. */
  readonly sendBacklogLimitBytes?: number;
  /**
   * Workers also skip sends while their channels hold more than `localValveBytes` (a quarter
   * second of what their buffers drain); default true.
   */
  readonly localValve?: boolean;
  /** Parameter server capacity in 'sync' mode, bytes/s each way; default 125 MB/s (1 Gbit/s). */
  readonly serverBytesPerSec?: number;
  /** Encoding of the parameter server's transfers; default 'f32'. */
  readonly syncEncoding?: WorkerSettings['encoding'];
  /** Record per-tick worker and link details in the result; default false. */
  readonly recordTicks?: boolean;
  /** Called after every tick (progress output, live plots). */
  readonly onTick?: (tick: TickRecord) => void;
}

/** One worker at one tick. */
export interface WorkerTick {
  readonly id: string;
  readonly samplesPerSec: number;
  readonly settings: WorkerSettings;
  readonly neighbours: readonly string[];
  /** Balancer only. */
  readonly budgetBytesPerSec?: number;
  readonly capacityBytesPerSec?: number | null;
  readonly reason?: BudgetReason;
  /** Bytes/s that left this worker's send buffers. */
  readonly goodputBytesPerSec: number;
  /** Sum over its channels of the time-averaged backlog, bytes. */
  readonly backlogBytes: number;
  /** Largest backlog of any of its channels during the interval, bytes. */
  readonly maxBacklogBytes: number;
  readonly sendBusyFraction: number;
  /** Sends this worker skipped so far (safety valve), cumulative. */
  readonly sendsSkipped: number;
  /** Sends of this worker that would have overflowed a data channel so far, cumulative. */
  readonly overflows: number;
}

export interface TickRecord {
  readonly timeS: number;
  readonly workers: readonly WorkerTick[];
  /** Latest evaluation of the probe model. */
  readonly progress: number | null;
}

/** Totals over the whole run. */
export interface SimulationTotals {
  samples: number;
  steps: number;
  blocksSent: number;
  sendsSkipped: number;
  /** Sends that would have overflowed a data channel (16 MiB). */
  overflows: number;
  messagesDelivered: number;
  bytesDelivered: number;
  overwritten: number;
  offered: number;
  accepted: number;
  rejected: number;
  /** Largest backlog any channel reached, bytes. */
  maxBacklogBytes: number;
}

export interface SimulationResult {
  /** Simulated seconds until the probe model reached the target, or null. */
  readonly timeToTargetS: number | null;
  /** Simulated time at the end of the run. */
  readonly endS: number;
  readonly evaluations: readonly { readonly timeS: number; readonly value: number }[];
  /** Every tick when `recordTicks`, otherwise empty. */
  readonly ticks: readonly TickRecord[];
  readonly totals: SimulationTotals;
}

/** Defaults shared by both modes. */
export const DEFAULT_TICK_INTERVAL_S = 1;
export const DEFAULT_EVAL_INTERVAL_S = 1;
/** 1 Gbit/s. */
export const DEFAULT_SERVER_BYTES_PER_SEC = 125_000_000;

export function emptyTotals(): SimulationTotals {
  return {
    samples: 0,
    steps: 0,
    blocksSent: 0,
    sendsSkipped: 0,
    overflows: 0,
    messagesDelivered: 0,
    bytesDelivered: 0,
    overwritten: 0,
    offered: 0,
    accepted: 0,
    rejected: 0,
    maxBacklogBytes: 0,
  };
}

/** Checks a configuration and throws a RangeError naming the bad field. */
export function validateConfig(config: SimulationConfig): void {
  if (config.workers.length === 0) throw new RangeError('workers must not be empty');
  const ids = new Set<string>();
  for (const w of config.workers) {
    if (ids.has(w.id)) throw new RangeError(`duplicate worker id ${w.id}`);
    if (w.id === SERVER_ID) throw new RangeError(`worker id ${SERVER_ID} is reserved`);
    ids.add(w.id);
    if (w.leaveAtS !== undefined && !(w.leaveAtS > (w.joinAtS ?? 0))) {
      throw new RangeError(`worker ${w.id} must leave after it joins`);
    }
  }
  if (!(config.maxTimeS > 0)) throw new RangeError('maxTimeS must be > 0');
  if (config.probeWorker !== undefined && !ids.has(config.probeWorker)) {
    throw new RangeError(`probeWorker ${config.probeWorker} is not a worker`);
  }
  for (const [name, v] of [
    ['tickIntervalS', config.tickIntervalS],
    ['evalIntervalS', config.evalIntervalS],
  ] as const) {
    if (v !== undefined && !(v > 0)) throw new RangeError(`${name} must be > 0`);
  }
}

/** Node id of the parameter server in 'sync' mode. */
export const SERVER_ID = 'server';

/**
 * What a run knows of its evaluated model: every evaluation, the latest value, and when the
 * target was first reached (after which a run with `stopAtTarget` stops).
 */
export class TargetTracker {
  readonly evaluations: { timeS: number; value: number }[] = [];
  last: number | null = null;
  timeToTargetS: number | null = null;
  stopped = false;

  constructor(private readonly stopAtTarget: boolean) {}

  record(timeS: number, { value, reached }: { value: number; reached: boolean }): void {
    this.last = value;
    this.evaluations.push({ timeS, value });
    if (reached && this.timeToTargetS === null) {
      this.timeToTargetS = timeS;
      if (this.stopAtTarget) this.stopped = true;
    }
  }
}

/** A runner's handlers for the events every run has. */
export interface RunHandlers {
  join(spec: SimWorkerSpec, index: number): void | Promise<void>;
  leave(spec: SimWorkerSpec): void;
  tick(): void | Promise<void>;
  evaluate(): void | Promise<void>;
}

/**
 * Schedules the workers' joins and leaves, a tick every `tickS` and an evaluation every
 * `evalS` on `clock`, and runs it to `config.maxTimeS` or until `target` stops the run.
 */
export async function runScheduled(
  clock: EventQueue,
  config: SimulationConfig,
  tickS: number,
  evalS: number,
  target: TargetTracker,
  on: RunHandlers,
): Promise<void> {
  config.workers.forEach((spec, index) => {
    clock.at(spec.joinAtS ?? 0, () => on.join(spec, index));
    if (spec.leaveAtS !== undefined) clock.at(spec.leaveAtS, () => on.leave(spec));
  });
  for (let t = tickS; t <= config.maxTimeS + 1e-9; t += tickS) clock.at(t, () => on.tick());
  for (let t = evalS; t <= config.maxTimeS + 1e-9; t += evalS) clock.at(t, () => on.evaluate());
  await clock.run(config.maxTimeS, () => target.stopped);
}

/**
 * Runs `done` once a worker of `speed` samples/s has worked through `samples`, in simulated
 * time. While its speed is zero (paused) nothing runs; `retry` runs when the speed next changes.
 */
export function afterWork(
  clock: EventQueue,
  speed: Schedule,
  samples: number,
  retry: () => void,
  done: () => void | Promise<void>,
): void {
  const now = speed.valueAt(clock.nowS);
  if (now <= 0) {
    const next = speed.nextChangeAfter(clock.nowS);
    if (next < Infinity) clock.at(next, retry);
    return;
  }
  clock.after(samples / now, done);
}

/** The open channels among `ids` with their cumulative counters, each sender's in `ids` order. */
export function* channelsAmong(network: SimNetwork, ids: readonly string[]) {
  for (const from of ids) {
    for (const to of ids) {
      const counters = from === to ? undefined : network.counters(from, to);
      if (counters) yield [{ from, to }, counters] as const;
    }
  }
}
