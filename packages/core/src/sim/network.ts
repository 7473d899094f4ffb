/**
 * An in-memory network on the virtual clock: the `Transport` of the simulator and of unit tests
 * (DESIGN §2). Every worker is a node with an uplink and a downlink capacity; every ordered pair
 * of nodes that exchanges messages gets a channel, like one WebRTC data channel, with a send
 * queue, a latency, jitter and optionally a capacity of its own (a relayed path).
 *
 * The model, and why:
 * - Bytes flow as a fluid. At any moment the channels with bytes queued share capacity max-min
 *   fairly under three constraints: the sender's uplink, the receiver's downlink and the path's
 *   own cap. That is what competing congestion-controlled flows (one SCTP association per peer)
 *   converge to, and it makes "bytes delivered never exceed capacity" hold by construction.
 * - A message is transmitted once its last byte has left the queue; it then arrives after the
 *   path latency plus uniform jitter. A data channel is ordered and reliable, so a message never
 *   overtakes an earlier one on the same channel.
 * - `backlogBytes` is what `RTCDataChannel.bufferedAmount` reports: bytes handed to `send` and
 *   not yet transmitted. Chromium throws once a channel would buffer more than 16 MiB
 *   (`DATA_CHANNEL_LIMIT_BYTES`); here that send fails and counts as an overflow. Below it, the
 *   worker's own safety valve (`sendBacklogLimitBytes`) skips a send whose message would push
 *   the backlog over its limit.
 */
import type { EventQueue } from './event-queue.ts';
import type { Schedule } from './schedule.ts';
import { Rng } from '../util/rng.ts';

/** Chromium's data-channel buffer: a send that would queue more throws. */
export const DATA_CHANNEL_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * Default worker safety valve: skip a send when the channel would buffer more than this. An
 * order of magnitude under the data-channel limit, so a sudden drop never reaches it.
 */
export const DEFAULT_SEND_BACKLOG_LIMIT_BYTES = 1024 * 1024;

/** Bytes still queued below which a message counts as transmitted (fluid rounding). */
const EPSILON_BYTES = 1e-6;

export interface NodeOptions {
  /** Upload capacity, bytes/s. */
  readonly uplink: Schedule;
  /** Download capacity, bytes/s. */
  readonly downlink: Schedule;
  /** Safety valve per channel; default DEFAULT_SEND_BACKLOG_LIMIT_BYTES. Infinity disables it. */
  readonly sendBacklogLimitBytes?: number;
  /** Called when a message arrives at this node. */
  readonly onMessage?: (from: string, bytes: Uint8Array) => void;
}

export interface PathOptions {
  /** One-way latency, seconds. */
  readonly latencyS: number;
  /** Extra delay drawn uniformly from [0, jitterS) per message; default 0. */
  readonly jitterS?: number;
  /** True when the path goes through the server's relay; default false. */
  readonly relayed?: boolean;
  /** The path's own capacity (a relay's share), bytes/s; default unlimited. */
  readonly capacity?: Schedule;
}

/** What `send` did with a message. */
export type SendResult = 'queued' | 'skipped' | 'overflow' | 'closed';

/** Cumulative counters of one channel. */
export interface ChannelCounters {
  messagesQueued: number;
  bytesQueued: number;
  /** Sends refused by the sender's safety valve. */
  messagesSkipped: number;
  /** Sends that would have gone over DATA_CHANNEL_LIMIT_BYTES. */
  overflows: number;
  messagesTransmitted: number;
  bytesTransmitted: number;
  messagesDelivered: number;
  bytesDelivered: number;
  /** Messages lost because an end left while they were queued or in flight. */
  messagesDropped: number;
  /** Largest backlog ever, bytes. */
  maxBacklogBytes: number;
}

/** One channel over the interval since the previous `collect()`. */
export interface ChannelInterval {
  readonly from: string;
  readonly to: string;
  readonly relayed: boolean;
  /** Round-trip time of the path without queueing, seconds. */
  readonly rttS: number;
  /** Bytes transmitted in the interval. */
  readonly transmittedBytes: number;
  /** Time-averaged backlog, bytes. */
  readonly meanBacklogBytes: number;
  /** Backlog at the end of the interval, bytes. */
  readonly backlogBytes: number;
  readonly maxBacklogBytes: number;
  /** Fraction of the interval with bytes queued. */
  readonly busyFraction: number;
  readonly counters: Readonly<ChannelCounters>;
}

/** Everything measured since the previous `collect()`. */
export interface NetworkInterval {
  readonly fromS: number;
  readonly toS: number;
  readonly channels: readonly ChannelInterval[];
  /** Per node: fraction of the interval during which any of its channels had bytes queued. */
  readonly sendBusyFraction: ReadonlyMap<string, number>;
}

interface Node {
  readonly id: string;
  readonly options: NodeOptions;
  readonly valveBytes: number;
  busyS: number;
  activeChannels: number;
  /** Total rate of its channels the last time any had bytes queued, bytes/s. */
  lastDrainRate: number;
}

interface Channel {
  readonly key: string;
  readonly from: Node;
  readonly to: Node;
  readonly path: PathOptions;
  readonly queue: Uint8Array[];
  head: number;
  headRemaining: number;
  backlog: number;
  rate: number;
  lastArrivalS: number;
  open: boolean;
  readonly counters: ChannelCounters;
  transmittedInterval: number;
  backlogIntegral: number;
  busyS: number;
  maxBacklogInterval: number;
}

const channelKey = (from: string, to: string) => `${from}\u0000${to}`;

/** A simulated network of nodes and lazily created channels; see the module comment. */
export class SimNetwork {
  private readonly nodes = new Map<string, Node>();
  private readonly channels = new Map<string, Channel>();
  private readonly active = new Set<Channel>();
  private readonly rng: Rng;
  private lastAdvanceS: number;
  private intervalStartS: number;
  private completionToken = 0;
  private readonly breakpoints = new Set<number>();

  /**
   * @param clock the virtual clock every delay is scheduled on.
   * @param path the properties of the path from one node to another, asked once per channel.
   * @param seed seeds the jitter; default 1.
   */
  constructor(
    private readonly clock: EventQueue,
    private readonly path: (from: string, to: string) => PathOptions,
    seed = 1,
  ) {
    this.rng = new Rng(seed);
    this.lastAdvanceS = clock.nowS;
    this.intervalStartS = clock.nowS;
  }

  addNode(id: string, options: NodeOptions): void {
    if (this.nodes.has(id)) throw new Error(`node ${id} already exists`);
    this.advance();
    const valveBytes = options.sendBacklogLimitBytes ?? DEFAULT_SEND_BACKLOG_LIMIT_BYTES;
    if (!(valveBytes > 0)) throw new RangeError(`sendBacklogLimitBytes must be > 0`);
    this.nodes.set(id, { id, options, valveBytes, busyS: 0, activeChannels: 0, lastDrainRate: 0 });
    this.watch(options.uplink);
    this.watch(options.downlink);
  }

  hasNode(id: string): boolean {
    return this.nodes.has(id);
  }

  /** Removes a node: its channels close and their queued and in-flight messages are lost. */
  removeNode(id: string): void {
    if (!this.nodes.has(id)) return;
    this.advance();
    for (const ch of [...this.channels.values()]) {
      if (ch.from.id !== id && ch.to.id !== id) continue;
      ch.counters.messagesDropped += ch.queue.length - ch.head;
      ch.open = false;
      this.setInactive(ch);
      this.channels.delete(ch.key);
    }
    this.nodes.delete(id);
    this.reschedule();
  }

  /**
   * Queues `bytes` from `from` to `to`. 'skipped': the sender's safety valve refused it;
   * 'overflow': the data channel would buffer more than 16 MiB; 'closed': an end is gone.
   * The array is kept, not copied: the caller must not change it afterwards.
   */
  send(from: string, to: string, bytes: Uint8Array): SendResult {
    const ch = this.channel(from, to);
    if (ch === null) return 'closed';
    this.advance();
    const size = bytes.byteLength;
    if (ch.backlog + size > ch.from.valveBytes) {
      ch.counters.messagesSkipped++;
      return 'skipped';
    }
    if (ch.backlog + size > DATA_CHANNEL_LIMIT_BYTES) {
      ch.counters.overflows++;
      return 'overflow';
    }
    ch.queue.push(bytes);
    ch.backlog += size;
    ch.counters.messagesQueued++;
    ch.counters.bytesQueued += size;
    if (ch.backlog > ch.counters.maxBacklogBytes) ch.counters.maxBacklogBytes = ch.backlog;
    if (ch.backlog > ch.maxBacklogInterval) ch.maxBacklogInterval = ch.backlog;
    if (ch.queue.length - ch.head === 1) {
      ch.headRemaining = size;
      this.active.add(ch);
      ch.from.activeChannels++;
      if (size === 0) this.completeHeads();
      this.reschedule();
    }
    return 'queued';
  }

  /** Bytes queued on the channel and not yet transmitted (`bufferedAmount`). */
  backlogBytes(from: string, to: string): number {
    this.advance();
    return this.channels.get(channelKey(from, to))?.backlog ?? 0;
  }

  /** Bytes queued on all of a node's outgoing channels. */
  sendBacklogBytes(from: string): number {
    this.advance();
    let total = 0;
    for (const ch of this.active) if (ch.from.id === from) total += ch.backlog;
    return total;
  }

  /**
   * The rate a node's send buffers empty at: the total rate of its busy channels, or when none
   * is busy, that total the last time one was (0 before the first send). What a browser worker
   * estimates from `bufferedAmount` falling.
   */
  drainRateBytesPerSec(from: string): number {
    return this.nodes.get(from)?.lastDrainRate ?? 0;
  }

  /** Current transmission rate of the channel, bytes/s (0 when idle). */
  rateBytesPerSec(from: string, to: string): number {
    return this.channels.get(channelKey(from, to))?.rate ?? 0;
  }

  /** Cumulative counters of a channel, or undefined when it was never used or is closed. */
  counters(from: string, to: string): Readonly<ChannelCounters> | undefined {
    return this.channels.get(channelKey(from, to))?.counters;
  }

  /** True when the path from `from` to `to` is relayed (asks the path function if unused). */
  isRelayed(from: string, to: string): boolean {
    return (this.channels.get(channelKey(from, to))?.path ?? this.path(from, to)).relayed ?? false;
  }

  /** Interval statistics of every open channel and node since the previous call. */
  collect(): NetworkInterval {
    this.advance();
    const now = this.clock.nowS;
    const span = now - this.intervalStartS;
    const channels: ChannelInterval[] = [];
    for (const ch of this.channels.values()) {
      channels.push({
        from: ch.from.id,
        to: ch.to.id,
        relayed: ch.path.relayed ?? false,
        rttS: 2 * ch.path.latencyS + (ch.path.jitterS ?? 0),
        transmittedBytes: ch.transmittedInterval,
        meanBacklogBytes: span > 0 ? ch.backlogIntegral / span : ch.backlog,
        backlogBytes: ch.backlog,
        maxBacklogBytes: ch.maxBacklogInterval,
        busyFraction: span > 0 ? Math.min(1, ch.busyS / span) : ch.backlog > 0 ? 1 : 0,
        counters: { ...ch.counters },
      });
      ch.transmittedInterval = 0;
      ch.backlogIntegral = 0;
      ch.busyS = 0;
      ch.maxBacklogInterval = ch.backlog;
    }
    const sendBusyFraction = new Map<string, number>();
    for (const node of this.nodes.values()) {
      sendBusyFraction.set(node.id, span > 0 ? Math.min(1, node.busyS / span) : 0);
      node.busyS = 0;
    }
    const interval = { fromS: this.intervalStartS, toS: now, channels, sendBusyFraction };
    this.intervalStartS = now;
    return interval;
  }

  private channel(from: string, to: string): Channel | null {
    const key = channelKey(from, to);
    const existing = this.channels.get(key);
    if (existing) return existing;
    const a = this.nodes.get(from);
    const b = this.nodes.get(to);
    if (!a || !b || a === b) return null;
    const path = this.path(from, to);
    if (!(path.latencyS >= 0) || !((path.jitterS ?? 0) >= 0)) {
      throw new RangeError(`path ${from} → ${to}: latency and jitter must be ≥ 0`);
    }
    if (path.capacity) this.watch(path.capacity);
    const ch: Channel = {
      key,
      from: a,
      to: b,
      path,
      queue: [],
      head: 0,
      headRemaining: 0,
      backlog: 0,
      rate: 0,
      lastArrivalS: 0,
      open: true,
      counters: {
        messagesQueued: 0,
        bytesQueued: 0,
        messagesSkipped: 0,
        overflows: 0,
        messagesTransmitted: 0,
        bytesTransmitted: 0,
        messagesDelivered: 0,
        bytesDelivered: 0,
        messagesDropped: 0,
        maxBacklogBytes: 0,
      },
      transmittedInterval: 0,
      backlogIntegral: 0,
      busyS: 0,
      maxBacklogInterval: 0,
    };
    this.channels.set(key, ch);
    return ch;
  }

  /** Recomputes rates at every change of a capacity schedule. */
  private watch(schedule: Schedule): void {
    for (const t of schedule.changeTimes()) {
      if (t < this.clock.nowS || this.breakpoints.has(t)) continue;
      this.breakpoints.add(t);
      this.clock.at(t, () => {
        this.breakpoints.delete(t);
        this.advance();
        this.reschedule();
      });
    }
  }

  /** Moves the fluid forward to now at the current rates, integrating the statistics. */
  private advance(): void {
    const now = this.clock.nowS;
    const dt = now - this.lastAdvanceS;
    if (dt <= 0) return;
    for (const node of this.nodes.values()) if (node.activeChannels > 0) node.busyS += dt;
    for (const ch of this.active) {
      const moved = Math.min(ch.rate * dt, ch.headRemaining);
      ch.backlogIntegral += (ch.backlog - moved / 2) * dt;
      ch.busyS += dt;
      ch.headRemaining -= moved;
      ch.backlog -= moved;
      ch.transmittedInterval += moved;
      ch.counters.bytesTransmitted += moved;
    }
    this.lastAdvanceS = now;
  }

  /** Hands every fully transmitted head message to its path. */
  private completeHeads(): void {
    const now = this.clock.nowS;
    for (const ch of [...this.active]) {
      while (ch.head < ch.queue.length) {
        const bytes = ch.queue[ch.head]!;
        if (ch.headRemaining > Math.max(EPSILON_BYTES, bytes.byteLength * 1e-12)) break;
        ch.backlog = Math.max(0, ch.backlog - ch.headRemaining);
        ch.queue[ch.head] = EMPTY;
        ch.head++;
        ch.counters.messagesTransmitted++;
        this.deliverLater(ch, bytes, now);
        ch.headRemaining = ch.head < ch.queue.length ? ch.queue[ch.head]!.byteLength : 0;
      }
      if (ch.head === ch.queue.length) {
        ch.queue.length = 0;
        ch.head = 0;
        ch.backlog = 0;
        this.setInactive(ch);
      } else if (ch.head > 1024 && ch.head * 2 > ch.queue.length) {
        ch.queue.splice(0, ch.head);
        ch.head = 0;
      }
    }
  }

  private deliverLater(ch: Channel, bytes: Uint8Array, now: number): void {
    const jitter = (ch.path.jitterS ?? 0) * this.rng.next();
    const arrival = Math.max(ch.lastArrivalS, now + ch.path.latencyS + jitter);
    ch.lastArrivalS = arrival;
    this.clock.at(arrival, () => {
      if (!ch.open) {
        ch.counters.messagesDropped++;
        return;
      }
      ch.counters.messagesDelivered++;
      ch.counters.bytesDelivered += bytes.byteLength;
      ch.to.options.onMessage?.(ch.from.id, bytes);
    });
  }

  private setInactive(ch: Channel): void {
    if (!this.active.delete(ch)) return;
    ch.rate = 0;
    ch.from.activeChannels--;
  }

  /** New max-min fair rates, and an event at the next message completion. */
  private reschedule(): void {
    this.assignRates();
    const token = ++this.completionToken;
    let next = Infinity;
    for (const ch of this.active) {
      if (ch.rate > 0) next = Math.min(next, ch.headRemaining / ch.rate);
    }
    if (next === Infinity) return;
    this.clock.at(this.clock.nowS + Math.max(0, next), () => {
      if (token !== this.completionToken) return;
      this.advance();
      this.completeHeads();
      this.reschedule();
    });
  }

  /**
   * Progressive filling: raise every unfrozen channel's rate equally until some constraint
   * (uplink, downlink, path cap) is full, freeze the channels it binds, repeat.
   */
  private assignRates(): void {
    if (this.active.size === 0) return;
    const now = this.clock.nowS;
    const remaining = new Map<string, number>();
    const members = new Map<string, Channel[]>();
    const constraintsOf = new Map<Channel, string[]>();
    const add = (name: string, capacity: () => number, ch: Channel, names: string[]) => {
      if (!remaining.has(name)) remaining.set(name, capacity());
      let list = members.get(name);
      if (!list) members.set(name, (list = []));
      list.push(ch);
      names.push(name);
    };
    for (const ch of this.active) {
      const names: string[] = [];
      add(`u${ch.from.id}`, () => ch.from.options.uplink.valueAt(now), ch, names);
      add(`d${ch.to.id}`, () => ch.to.options.downlink.valueAt(now), ch, names);
      const cap = ch.path.capacity;
      if (cap) add(`c${ch.key}`, () => cap.valueAt(now), ch, names);
      constraintsOf.set(ch, names);
      ch.rate = 0;
    }
    const frozen = new Set<Channel>();
    while (frozen.size < this.active.size) {
      let delta = Infinity;
      for (const [name, list] of members) {
        let free = 0;
        for (const ch of list) if (!frozen.has(ch)) free++;
        if (free > 0) delta = Math.min(delta, remaining.get(name)! / free);
      }
      if (!Number.isFinite(delta)) break;
      delta = Math.max(0, delta);
      for (const ch of this.active) if (!frozen.has(ch)) ch.rate += delta;
      for (const [name, list] of members) {
        let free = 0;
        for (const ch of list) if (!frozen.has(ch)) free++;
        remaining.set(name, remaining.get(name)! - delta * free);
      }
      for (const [name, list] of members) {
        const left = remaining.get(name)!;
        if (left > 1e-9 * Math.max(1, delta)) continue;
        for (const ch of list) frozen.add(ch);
      }
    }
    const totals = new Map<Node, number>();
    for (const ch of this.active) totals.set(ch.from, (totals.get(ch.from) ?? 0) + ch.rate);
    for (const [node, rate] of totals) node.lastDrainRate = rate;
  }
}

const EMPTY = new Uint8Array(0);
