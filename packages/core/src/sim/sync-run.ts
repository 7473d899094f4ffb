/**
 * Synchronous parameter-server SGD on the simulated network, the baseline ASGD has to beat.
 * Each round: the server sends the parameters to every worker; each worker computes the
 * gradient of one minibatch (simulated time batch / speed) and sends it back; once every
 * worker's gradient has arrived the server applies their mean, w ← w − η·mean(g), and starts
 * the next round. A round therefore waits for the slowest worker and for every transfer at the
 * link speeds. Transfers are the real state messages (one per block, `syncEncoding`).
 */
import { Batcher } from '../data/batcher.ts';
import { decodeStateMessage, encodeStateMessage, idHash } from '../codec/message.ts';
import { lossAndGradient, ModelScratch } from '../model/math.ts';
import { blockRange } from '../model/spec.ts';
import { EventQueue } from './event-queue.ts';
import { SimNetwork } from './network.ts';
import { Schedule } from './schedule.ts';
import {
  afterWork,
  channelsAmong,
  DEFAULT_EVAL_INTERVAL_S,
  DEFAULT_SERVER_BYTES_PER_SEC,
  DEFAULT_TICK_INTERVAL_S,
  emptyTotals,
  runScheduled,
  TargetTracker,
  SERVER_ID,
  validateConfig,
  type SimulationConfig,
  type SimulationResult,
  type SimWorkerSpec,
  type TickRecord,
} from './simulation.ts';

interface SyncWorker {
  readonly spec: SimWorkerSpec;
  readonly batcher: Batcher;
  readonly params: Float32Array;
  readonly gradient: Float32Array;
  blocksIn: number;
  samples: number;
  samplesAtTick: number;
}

export async function runSync(config: SimulationConfig): Promise<SimulationResult> {
  validateConfig(config);
  const { workload } = config;
  const { layout } = workload;
  const seed = config.seed ?? 1;
  const encoding = config.syncEncoding ?? 'f32';
  const tickS = config.tickIntervalS ?? DEFAULT_TICK_INTERVAL_S;
  const evalS = config.evalIntervalS ?? DEFAULT_EVAL_INTERVAL_S;
  const stopAtTarget = config.stopAtTarget ?? true;
  const serverRate = Schedule.constant(config.serverBytesPerSec ?? DEFAULT_SERVER_BYTES_PER_SEC);
  const jobHash = idHash(workload.name);

  const clock = new EventQueue();
  const network = new SimNetwork(clock, config.path, seed ^ 0x5eed);
  const scratch = new ModelScratch(layout, workload.batchSize);
  const weights = Float32Array.from(workload.initialParams);
  const gradientSum = new Float64Array(layout.size);
  const live = new Map<string, SyncWorker>();
  const totals = emptyTotals();
  const ticks: TickRecord[] = [];
  const target = new TargetTracker(stopAtTarget);
  let round = 0;
  let roundOpen = false;
  let roundScheduled = false;
  /** Workers whose gradient the current round waits for, with blocks still missing. */
  const waiting = new Map<string, number>();
  let contributors = 0;
  let seq = 0;

  const sendBlocks = (from: string, to: string, values: Float32Array) => {
    for (let k = 0; k < layout.blockCount; k++) {
      const { start, end } = blockRange(layout, k);
      const message = encodeStateMessage({
        job: jobHash,
        sender: idHash(from),
        seq: seq++,
        block: k,
        encoding,
        samples: round,
        values: values.subarray(start, end),
      });
      if (network.send(from, to, message) !== 'queued') {
        throw new Error(
          `sync transfer ${from} → ${to} refused; the valve must be off in sync mode`,
        );
      }
    }
  };

  network.addNode(SERVER_ID, {
    uplink: serverRate,
    downlink: serverRate,
    sendBacklogLimitBytes: Infinity,
    onMessage: (from, bytes) => {
      const missing = waiting.get(from);
      if (missing === undefined) return; // a worker that left mid-round
      const m = decodeStateMessage(bytes);
      const { start } = blockRange(layout, m.block);
      for (let i = 0; i < m.values.length; i++) gradientSum[start + i]! += m.values[i]!;
      if (missing === 1) {
        waiting.delete(from);
        contributors++;
        maybeFinishRound();
      } else waiting.set(from, missing - 1);
    },
  });

  const startRound = () => {
    if (target.stopped) return;
    if (live.size === 0) {
      roundOpen = false;
      return;
    }
    roundOpen = true;
    round++;
    gradientSum.fill(0);
    contributors = 0;
    waiting.clear();
    for (const w of live.values()) {
      waiting.set(w.spec.id, layout.blockCount);
      w.blocksIn = 0;
      sendBlocks(SERVER_ID, w.spec.id, weights);
    }
  };

  const maybeFinishRound = () => {
    if (!roundOpen || waiting.size > 0) return;
    if (contributors > 0) {
      const step = workload.learningRate / contributors;
      for (let i = 0; i < weights.length; i++) weights[i] = weights[i]! - step * gradientSum[i]!;
      totals.steps++;
    }
    startRound();
  };

  const compute = (w: SyncWorker) => {
    const startedRound = round;
    afterWork(
      clock,
      w.spec.samplesPerSec,
      workload.batchSize,
      () => compute(w),
      () => {
        if (live.get(w.spec.id) !== w || round !== startedRound || target.stopped) return;
        lossAndGradient(layout, w.params, w.batcher.next(), w.gradient, scratch);
        w.samples += workload.batchSize;
        totals.samples += workload.batchSize;
        sendBlocks(w.spec.id, SERVER_ID, w.gradient);
      },
    );
  };

  const join = (spec: SimWorkerSpec, index: number) => {
    const w: SyncWorker = {
      spec,
      batcher: new Batcher(
        workload.shard(index, config.workers.length),
        workload.batchSize,
        seed * 1009 + index,
      ),
      params: new Float32Array(layout.size),
      gradient: new Float32Array(layout.size),
      blocksIn: 0,
      samples: 0,
      samplesAtTick: 0,
    };
    network.addNode(spec.id, {
      uplink: spec.uplink,
      downlink: spec.downlink,
      sendBacklogLimitBytes: Infinity,
      onMessage: (_from, bytes) => {
        const m = decodeStateMessage(bytes);
        w.params.set(m.values, blockRange(layout, m.block).start);
        if (++w.blocksIn === layout.blockCount) compute(w);
      },
    });
    live.set(spec.id, w);
    // A worker joining mid-round waits for the next round's parameters. With no round open,
    // one starts after every join due at this instant has run.
    if (!roundOpen && !roundScheduled) {
      roundScheduled = true;
      clock.at(clock.nowS, () => {
        roundScheduled = false;
        if (!roundOpen) startRound();
      });
    }
  };

  const leave = (spec: SimWorkerSpec) => {
    if (!live.delete(spec.id)) return;
    network.removeNode(spec.id);
    waiting.delete(spec.id);
    maybeFinishRound();
  };

  const tick = () => {
    const interval = network.collect();
    const span = Math.max(interval.toS - interval.fromS, Number.MIN_VALUE);
    const record: TickRecord = {
      timeS: clock.nowS,
      progress: target.last,
      workers: [...live.values()].map((w) => {
        const up = interval.channels.find((c) => c.from === w.spec.id);
        const tickRecord = {
          id: w.spec.id,
          samplesPerSec: (w.samples - w.samplesAtTick) / span,
          settings: {
            communicationPeriod: workload.batchSize,
            blocksPerMessage: layout.blockCount,
            encoding,
          },
          neighbours: [SERVER_ID],
          goodputBytesPerSec: (up?.transmittedBytes ?? 0) / span,
          backlogBytes: up?.meanBacklogBytes ?? 0,
          maxBacklogBytes: up?.maxBacklogBytes ?? 0,
          sendBusyFraction: interval.sendBusyFraction.get(w.spec.id) ?? 0,
          sendsSkipped: 0,
          overflows: 0,
        };
        w.samplesAtTick = w.samples;
        return tickRecord;
      }),
    };
    if (config.recordTicks) ticks.push(record);
    config.onTick?.(record);
  };

  const evaluateServer = () => target.record(clock.nowS, workload.progress(weights));

  await runScheduled(clock, config, tickS, evalS, target, {
    join,
    leave,
    tick,
    evaluate: evaluateServer,
  });

  for (const [, c] of channelsAmong(network, [SERVER_ID, ...live.keys()])) {
    totals.messagesDelivered += c.messagesDelivered;
    totals.bytesDelivered += c.bytesDelivered;
    totals.maxBacklogBytes = Math.max(totals.maxBacklogBytes, c.maxBacklogBytes);
  }
  totals.blocksSent = seq;
  return {
    timeToTargetS: target.timeToTargetS,
    endS: clock.nowS,
    evaluations: target.evaluations,
    ticks,
    totals,
  };
}
