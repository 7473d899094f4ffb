/**
 * The peer mesh between volunteer tabs (DESIGN §4): one link per neighbour, signaled through the
 * job server, with backpressure, the server relay as the fallback, and measurements of every
 * link. It sees links only through core's `PeerLink` (plus the signaling they need), made by a
 * factory: the page passes simple-peer's (simple-peer-link.ts), unit tests links in memory.
 * Runs on the page's main thread, where WebRTC lives; the training Web Worker learns which peers
 * take messages through `status()`.
 */
import {
  BACKLOG_HARD_LIMIT_BYTES,
  BACKLOG_LOW_WATER_BYTES,
  CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  LinkError,
  LinkMeter,
  MAX_RELAY_BYTES,
  RECONNECT_AFTER_MS,
  type LinkErrorCode,
  type LinkRoute,
  type PeerLink,
  type PeerLinkHandlers,
  type SignalData,
} from '@meshgrad/core';
import { BUSY_SAMPLE_MS, BusyMeter, drainRateSample, type ValveLimit } from './backpressure.ts';

/** A `PeerLink` that is made by exchanging signaling data with the peer (WebRTC's offer/answer). */
export interface SignaledLink extends PeerLink {
  /** Hands the peer's signaling data (relayed by the job server) to the connection. */
  signal(data: SignalData): void;
}

/** What the mesh asks of a link factory. */
export interface LinkRequest {
  readonly peer: string;
  /** This side sends the offer; the other waits for it. */
  readonly initiator: boolean;
  /** Sends this side's signaling data to the peer (through the job server). */
  readonly signal: (data: SignalData) => void;
  readonly handlers: PeerLinkHandlers;
}

/**
 * Makes one link; the connection starts at once (the initiator's offer follows on `signal`).
 * The link calls its handlers only after the factory returned (WebRTC's events are async).
 */
export type LinkFactory = (request: LinkRequest) => SignaledLink;

/**
 * A side that names a peer with a smaller id waits this long for the peer's offer before it
 * offers itself, ms: neighbour lists are one-way (the balancer chooses whom each worker sends
 * to), so the peer may not name it and no offer may come.
 */
export const OFFER_WAIT_MS = 5_000;
/**
 * A link kept only because the peer may send over it (we do not name the peer) closes after
 * this long without a message from the peer, ms.
 */
export const IDLE_LINK_CLOSE_MS = 60_000;
/**
 * After a glare our offer won, ms: if the peer has not answered it by then, it most likely never
 * got it (signaling lost on the way, e.g. across the processes of a cluster), so we answer the
 * peer's offer instead, well inside the connect timeout, rather than both waiting for it and
 * falling back to the relay.
 */
export const GLARE_ANSWER_WAIT_MS = OFFER_WAIT_MS;
/** The answering side retries a failed link this many times later than the offering side. */
const ANSWERER_RETRY_FACTOR = 1.5;
/** While the local safety valve holds sends back, the buffers are looked at this often, ms. */
export const VALVE_RECHECK_MS = 50;
/** A busy fraction under this gives no drain-rate sample (goodput / busy would be noise). */
const MIN_BUSY_FOR_DRAIN = 0.02;

/** The sending side of the server relay (socket.io), the fallback route. */
export interface RelaySender {
  /** Whether the server connection is up. */
  readonly available: boolean;
  send(to: string, data: ArrayBuffer): void;
}

export interface PeerMeshOptions {
  readonly selfId: string;
  /** Makes each link (simple-peer's in the page: `simplePeerLinks`). */
  readonly createLink: LinkFactory;
  readonly signal: (to: string, data: SignalData) => void;
  readonly relay: RelaySender;
  /** A state message from a peer, direct or relayed. */
  readonly onMessage: (from: string, data: ArrayBuffer) => void;
  /** A link opened, closed, changed route or drained: `status()` changed. */
  readonly onChange: () => void;
  /** A link not open within this long is given up for the relay. Default CONNECT_TIMEOUT_MS. */
  readonly connectTimeoutMs?: number;
  readonly reconnectAfterMs?: number;
  readonly now?: () => number;
  /**
   * The local safety valve (DESIGN §3): what the channels may hold before the next send, given
   * the rate they were last seen to drain at (bytes/s, undefined until measured); null while
   * the settings are unknown. Absent: only the hard backlog limit applies.
   */
  readonly valve?: (drainBytesPerSec: number | undefined) => ValveLimit | null;
}

/** What the training loop needs to know about a peer before it reads and sends blocks. */
export interface LinkStatus {
  readonly peer: string;
  /**
   * Takes a message now: on the server relay, or open, under the backlog limit and, with the
   * worker's channels together, under the local safety valve.
   */
  readonly ready: boolean;
  readonly maxMessageBytes: number;
}

/** One link's measurements over the last interval, for the statistics report. */
export interface LinkReport {
  readonly peer: string;
  /** `connecting` until the first link opens or fails. */
  readonly route: LinkRoute | 'connecting';
  readonly goodputBytesPerSec: number;
  readonly backlogBytes: number;
  readonly rttMs: number | undefined;
  /** Sends the page refused (link not open, over the ceiling, relay down), cumulative. */
  readonly dropped: number;
  /** Why the last direct link failed, when the pair is on the relay. */
  readonly lastError: LinkErrorCode | undefined;
}

interface Entry {
  readonly peer: string;
  /** The server named this peer a neighbour (else it reached us first through a signal). */
  neighbour: boolean;
  route: LinkRoute | 'connecting';
  link: SignaledLink | null;
  /** The current link's side: this side sent (or will send) the offer. */
  linkInitiator: boolean;
  /** An offer for the current (answering) link arrived. */
  offerReceived: boolean;
  /** Gives the current link up when it is not open within the connect timeout. */
  connectTimer: ReturnType<typeof setTimeout> | undefined;
  readonly meter: LinkMeter;
  /** Over BACKLOG_HARD_LIMIT_BYTES and not yet drained to the low-water mark. */
  full: boolean;
  rttMs: number | undefined;
  lastError: LinkErrorCode | undefined;
  retry: ReturnType<typeof setTimeout> | undefined;
  /** See OFFER_WAIT_MS. */
  offerWait: ReturnType<typeof setTimeout> | undefined;
  /**
   * The peer's offer lost a glare to ours: its attempt's signals (offer, then candidates) are
   * kept here, not used, until it answers ours or GLARE_ANSWER_WAIT_MS passes.
   */
  glareSignals: SignalData[] | undefined;
  glareWait: ReturnType<typeof setTimeout> | undefined;
  /** When the peer last sent a message, or the link became one we only receive on. */
  heardAt: number;
}

/**
 * One link per neighbour. Neighbour lists are one-way (a worker sends to the peers it names),
 * while a link carries both ways, so a link exists when either side names the other: the
 * lexicographically smaller worker id offers; the other side, if it names the peer, waits
 * OFFER_WAIT_MS for that offer and then offers itself; when both offer at once, the smaller
 * id's offer wins, unless the peer has not answered it GLARE_ANSWER_WAIT_MS later (it never
 * got it), when the smaller id answers the peer's offer instead. A link the peer opened without being named here, or to a peer no longer
 * named, stays while the peer sends over it (until it closes it or falls silent for
 * IDLE_LINK_CLOSE_MS), so a change of lists on one side cuts no link the other still uses.
 * While a link connects, sends to that peer are skipped (counted), not relayed, so a healthy
 * mesh relays nothing; a link that cannot be made within the connect timeout, or is lost, puts
 * the pair on the server relay, and the side that names the peer tries again later (the
 * offering side first).
 */
export class PeerMesh {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private destroyed = false;
  private readonly busy: BusyMeter;
  private busyTimer: ReturnType<typeof setInterval> | undefined;
  /** Rate the channels empty at while they hold bytes (goodput / busy fraction), bytes/s. */
  private drainBytesPerSec: number | undefined;
  private valveClosed = false;
  private valveTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly opts: PeerMeshOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.busy = new BusyMeter(this.now());
  }

  /** The server's current neighbour list: links open to new neighbours, close to old ones. */
  setNeighbours(neighbours: readonly string[]): void {
    const wanted = new Set(neighbours.filter((p) => p !== this.opts.selfId));
    for (const entry of [...this.entries.values()]) {
      // A link the peer opened to us is the peer's to close: it may still send over it.
      if (!entry.neighbour || wanted.has(entry.peer)) continue;
      if (entry.link?.open && entry.route !== 'server') {
        // The peer may still name us: keep the link until it closes it or falls silent.
        entry.neighbour = false;
        entry.heardAt = this.now();
        clearTimeout(entry.retry);
      } else this.remove(entry);
    }
    for (const peer of wanted) {
      const entry = this.entries.get(peer);
      if (entry) entry.neighbour = true;
      else this.connect(this.add(peer, true));
    }
    this.opts.onChange();
  }

  /** Signaling data from `from`, relayed by the server. */
  handleSignal(from: string, data: SignalData): void {
    if (this.destroyed || from === this.opts.selfId) return;
    let entry = this.entries.get(from);
    if (!entry) {
      // Its neighbour list reached it before ours reached us: answer now, keep it if named.
      if (data.type !== 'offer') return;
      entry = this.add(from, false);
    }
    const link = entry.link;
    if (data.type === 'offer') {
      if (link && entry.linkInitiator && !link.open && this.initiator(from)) {
        // Both sides offered (glare): the smaller id's offer wins, so the peer answers ours.
        // Unless ours never reached it: then its offer is the one to answer, a little later.
        entry.glareSignals = [data];
        clearTimeout(entry.glareWait);
        entry.glareWait = setTimeout(() => this.answerLostGlare(entry, link), GLARE_ANSWER_WAIT_MS);
        return;
      }
      if (!link || entry.linkInitiator || entry.offerReceived) {
        // A new attempt (the first, one after a failure or timeout, or one that won a glare
        // over ours): start afresh.
        if (link) this.dropLink(entry, link);
        this.newLink(entry, false);
      }
      entry.offerReceived = true;
      this.clearGlare(entry);
    } else if (data.type === 'answer') {
      // An answer to the offer we withdrew after a lost glare: our link no longer offers.
      if (!entry.linkInitiator) return;
      this.clearGlare(entry);
    } else if (entry.glareSignals) {
      entry.glareSignals.push(data);
      return;
    }
    entry.link?.signal(data);
  }

  /** Our offer won a glare but was never answered: answer the peer's offer after all. */
  private answerLostGlare(entry: Entry, ours: SignaledLink): void {
    const signals = entry.glareSignals;
    this.clearGlare(entry);
    if (this.destroyed || this.entries.get(entry.peer) !== entry || entry.link !== ours) return;
    if (ours.open || !signals) return;
    this.dropLink(entry, ours);
    const link = this.newLink(entry, false);
    entry.offerReceived = true;
    for (const data of signals) link.signal(data);
  }

  private clearGlare(entry: Entry): void {
    clearTimeout(entry.glareWait);
    entry.glareWait = undefined;
    entry.glareSignals = undefined;
  }

  /**
   * Sends one state message; false when it was dropped (link not open, over the queue ceiling,
   * or relay down). The training loop already skips peers that are not ready, so drops here
   * are races with a link that just changed, and are counted as skipped sends.
   */
  send(peer: string, data: ArrayBuffer): boolean {
    const entry = this.entries.get(peer);
    if (!entry) return false;
    if (entry.route === 'server') {
      if (!this.opts.relay.available || data.byteLength > MAX_RELAY_BYTES) {
        entry.meter.dropped();
        return false;
      }
      this.opts.relay.send(peer, data);
      entry.meter.queued(data.byteLength);
      return true;
    }
    const link = entry.link;
    if (entry.route === 'connecting' || !link) {
      entry.meter.dropped();
      return false;
    }
    // The training worker sends by the status it was last posted, and on a busy page that
    // status lags: sends queued behind it arrive here in a burst. The valve is held here too,
    // so they cannot take the channels past it (docs/design.md §3.5).
    if (this.overValveWith(data.byteLength)) {
      entry.meter.dropped();
      this.closeValve();
      this.recheckValve();
      return false;
    }
    try {
      link.send(new Uint8Array(data));
    } catch {
      entry.meter.dropped();
      return false;
    }
    entry.meter.queued(data.byteLength);
    this.busy.sent(this.now());
    this.busyTimer ??= setInterval(() => this.lookAtBuffers(), BUSY_SAMPLE_MS);
    if (!entry.full && link.bufferedAmount >= BACKLOG_HARD_LIMIT_BYTES) {
      entry.full = true;
      this.opts.onChange();
    } else if (!this.valveClosed && this.overValve()) {
      this.closeValve();
    }
    return true;
  }

  /** A state message that came through the server relay. */
  receiveRelayed(from: string, data: ArrayBuffer): void {
    this.entries.get(from)?.meter.received(data.byteLength);
    this.opts.onMessage(from, data);
  }

  /** Which peers take messages now. */
  status(): LinkStatus[] {
    this.valveClosed = this.overValve();
    if (this.valveClosed) this.recheckValve();
    const out: LinkStatus[] = [];
    for (const e of this.entries.values()) {
      if (!e.neighbour) continue;
      if (e.route === 'server') {
        out.push({
          peer: e.peer,
          ready: this.opts.relay.available,
          maxMessageBytes: MAX_RELAY_BYTES,
        });
        continue;
      }
      const link = e.link;
      if (link && e.full && link.bufferedAmount <= BACKLOG_LOW_WATER_BYTES) e.full = false;
      if (link && !e.full && link.bufferedAmount >= BACKLOG_HARD_LIMIT_BYTES) e.full = true;
      out.push({
        peer: e.peer,
        ready: e.route !== 'connecting' && !!link?.open && !e.full && !this.valveClosed,
        maxMessageBytes: link?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_BYTES,
      });
    }
    return out;
  }

  /** Measures every link over the interval since the previous report. */
  async report(): Promise<LinkReport[]> {
    return (await this.measure()).links;
  }

  /**
   * Measures every link, and the send busy fraction, over the interval since the previous
   * measurement: both end at the same instant, so goodput / busy fraction is a capacity sample.
   * The busy fraction (the stats' `sendBusyFraction`) is undefined when no direct link is open.
   */
  async measure(): Promise<{ links: LinkReport[]; sendBusyFraction: number | undefined }> {
    for (const e of [...this.entries.values()]) {
      if (!e.neighbour && this.now() - e.heardAt > IDLE_LINK_CLOSE_MS) this.remove(e);
    }
    const entries = [...this.entries.values()].filter((e) => e.neighbour || e.link?.open);
    const probes = await Promise.all(
      entries.map((e) =>
        e.link?.open && e.route !== 'server' ? e.link.probe() : Promise.resolve(null),
      ),
    );
    const now = this.now();
    this.lookAtBuffers();
    const busy = this.busy.take(now);
    const direct = entries.filter((e) => e.link?.open && e.route !== 'server');
    const sendBusyFraction = direct.length > 0 ? busy : undefined;
    let directGoodput = 0;
    const reports = entries.map((e, i) => {
      const probe = probes[i];
      if (probe) {
        e.rttMs = probe.rttMs;
        if (probe.route && e.route !== probe.route && e.route !== 'server') {
          e.route = probe.route;
        }
      }
      const onLink = e.route === 'direct' || e.route === 'turn';
      const backlog = onLink ? (e.link?.bufferedAmount ?? 0) : 0;
      const interval = e.meter.sample(now, backlog);
      if (onLink) directGoodput += interval.goodputBytesPerSec;
      return {
        peer: e.peer,
        route: e.route,
        goodputBytesPerSec: interval.goodputBytesPerSec,
        backlogBytes: backlog,
        rttMs: onLink ? e.rttMs : undefined,
        dropped: e.meter.messagesDropped,
        lastError: e.lastError,
      };
    });
    if (busy >= MIN_BUSY_FOR_DRAIN && directGoodput > 0) {
      this.drainBytesPerSec = drainRateSample(directGoodput, busy);
    }
    return { links: reports, sendBusyFraction };
  }

  /** Closes every link. */
  destroy(): void {
    this.destroyed = true;
    clearInterval(this.busyTimer);
    clearTimeout(this.valveTimer);
    for (const entry of [...this.entries.values()]) this.remove(entry);
  }

  /** Bytes buffered on all open direct (or TURN) channels. */
  private bufferedBytes(): number {
    let total = 0;
    for (const e of this.entries.values()) {
      if (e.route !== 'server' && e.link?.open) total += e.link.bufferedAmount;
    }
    return total;
  }

  /** Whether the next send would take the channels over the local safety valve. */
  private overValve(): boolean {
    const limit = this.opts.valve?.(this.drainBytesPerSec);
    return !!limit && this.bufferedBytes() + limit.nextSendBytes > limit.limitBytes;
  }

  /**
   * Whether a message of `bytes` would take the channels over the valve. Empty channels take
   * any message, so a message larger than the limit is still sent, alone.
   */
  private overValveWith(bytes: number): boolean {
    const limit = this.opts.valve?.(this.drainBytesPerSec);
    if (!limit) return false;
    const buffered = this.bufferedBytes();
    return buffered > 0 && buffered + bytes > limit.limitBytes;
  }

  /** Marks the valve closed and says so, once. */
  private closeValve(): void {
    if (this.valveClosed) return;
    this.valveClosed = true;
    this.opts.onChange();
  }

  /** While the valve is closed, looks again soon, so sends resume once the buffers drain. */
  private recheckValve(): void {
    if (this.valveTimer !== undefined || this.destroyed) return;
    this.valveTimer = setTimeout(() => {
      this.valveTimer = undefined;
      if (this.overValve()) this.recheckValve();
      else {
        this.valveClosed = false;
        this.opts.onChange();
      }
    }, VALVE_RECHECK_MS);
  }

  /** Feeds the busy meter; stops looking once every buffer is empty. */
  private lookAtBuffers(): void {
    const busy = this.bufferedBytes() > 0;
    this.busy.observe(this.now(), busy);
    if (!busy) {
      clearInterval(this.busyTimer);
      this.busyTimer = undefined;
    }
  }

  private initiator(peer: string): boolean {
    return this.opts.selfId < peer;
  }

  private add(peer: string, neighbour: boolean): Entry {
    const entry: Entry = {
      peer,
      neighbour,
      route: 'connecting',
      link: null,
      linkInitiator: false,
      offerReceived: false,
      connectTimer: undefined,
      meter: new LinkMeter(this.now()),
      full: false,
      rttMs: undefined,
      lastError: undefined,
      retry: undefined,
      offerWait: undefined,
      glareSignals: undefined,
      glareWait: undefined,
      heardAt: this.now(),
    };
    this.entries.set(peer, entry);
    return entry;
  }

  /**
   * Starts a link: the offering side (or `offer`) now; the other side waits for the offer, and
   * offers itself when none came within OFFER_WAIT_MS (the peer may not name it).
   */
  private connect(entry: Entry, offer = this.initiator(entry.peer)): void {
    if (this.destroyed) return;
    const link = this.newLink(entry, offer);
    clearTimeout(entry.offerWait);
    if (offer) return;
    entry.offerWait = setTimeout(() => {
      if (this.entries.get(entry.peer) !== entry || entry.link !== link) return;
      if (entry.offerReceived || link.open) return;
      this.dropLink(entry, link);
      this.newLink(entry, true);
    }, OFFER_WAIT_MS);
  }

  /** Makes the entry's current link (the factory's handlers check that it still is). */
  private newLink(entry: Entry, initiator: boolean): SignaledLink {
    const timeoutMs = this.opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    const link: SignaledLink = this.opts.createLink({
      peer: entry.peer,
      initiator,
      signal: (data) => this.opts.signal(entry.peer, data),
      handlers: {
        onOpen: () => {
          if (entry.link !== link) return;
          clearTimeout(entry.connectTimer);
          clearTimeout(entry.retry);
          entry.route = 'direct'; // refined to 'turn' by the first probe
          entry.full = false;
          entry.lastError = undefined;
          void link.probe().then((p) => {
            if (entry.link === link && p.route) {
              entry.route = p.route;
              entry.rttMs = p.rttMs;
            }
          });
          this.opts.onChange();
        },
        onMessage: (bytes) => {
          entry.heardAt = this.now();
          entry.meter.received(bytes.byteLength);
          this.opts.onMessage(entry.peer, standalone(bytes));
        },
        onBufferedAmountLow: () => {
          if (entry.full) {
            entry.full = false;
            this.opts.onChange();
          }
        },
        onClose: (err) => {
          if (entry.link !== link) return;
          clearTimeout(entry.connectTimer);
          entry.link = null;
          if (this.entries.get(entry.peer) !== entry) return;
          if (!entry.neighbour) {
            // The peer opened it and we send nothing to it: no relay to fall back to.
            this.remove(entry);
            this.opts.onChange();
            return;
          }
          entry.route = 'server';
          entry.lastError = err?.code ?? 'ERR_LINK_CLOSED';
          this.scheduleRetry(entry);
          this.opts.onChange();
        },
      },
    });
    entry.link = link;
    entry.linkInitiator = initiator;
    entry.offerReceived = false;
    clearTimeout(entry.connectTimer);
    entry.connectTimer = setTimeout(() => {
      if (entry.link !== link || link.open) return;
      link.destroy(
        new LinkError(
          'ERR_LINK_CONNECT_TIMEOUT',
          `no data channel to ${entry.peer} within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    return link;
  }

  /**
   * Tries a direct link again later, offering. The offering side goes first; the other side
   * later, in case the peer does not name it and so never tries (an offer that arrives first
   * makes a link, and this retry then does nothing).
   */
  private scheduleRetry(entry: Entry): void {
    if (this.destroyed) return;
    clearTimeout(entry.retry);
    const after =
      (this.opts.reconnectAfterMs ?? RECONNECT_AFTER_MS) *
      (this.initiator(entry.peer) ? 1 : ANSWERER_RETRY_FACTOR);
    entry.retry = setTimeout(() => {
      // The pair keeps using the relay while the new attempt connects.
      if (this.entries.get(entry.peer) === entry && !entry.link) this.connect(entry, true);
    }, after);
  }

  private dropLink(entry: Entry, link: SignaledLink): void {
    entry.link = null;
    clearTimeout(entry.connectTimer);
    link.destroy(new LinkError('ERR_LINK_CLOSED', 'replaced by a new attempt'));
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry.peer);
    clearTimeout(entry.retry);
    this.clearGlare(entry);
    clearTimeout(entry.offerWait);
    const link = entry.link;
    if (link) this.dropLink(entry, link);
  }
}

/** The message as an ArrayBuffer of its own, so it can be transferred to the worker. */
function standalone(bytes: Uint8Array): ArrayBuffer {
  const buffer = bytes.buffer;
  if (
    buffer instanceof ArrayBuffer &&
    bytes.byteOffset === 0 &&
    bytes.byteLength === buffer.byteLength
  ) {
    return buffer;
  }
  return bytes.slice().buffer;
}
