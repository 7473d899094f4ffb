/**
 * Links in memory for the mesh's unit tests (peers.test.ts): a `LinkFactory` per volunteer over
 * one `MemoryNetwork` that carries signaling and messages only when the test lets it
 * (`settle`, `deliver`), so races such as two crossing offers can be set up exactly.
 *
 * They behave as simple-peer's links do where the mesh depends on it: a link opens once the
 * offer and answer have crossed, a trickled candidate from a different attempt fails the link
 * (simple-peer destroys it when `addIceCandidate` rejects), the far end closes when one end is
 * destroyed, sends are refused over the queue ceiling, and `bufferedamountlow` fires when the
 * backlog falls to the low-water mark.
 */
import {
  BACKLOG_LOW_WATER_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  LinkError,
  SEND_QUEUE_CEILING_BYTES,
  type LinkProbe,
  type SignalData,
} from '@meshgrad/core';
import type { LinkFactory, LinkRequest, SignaledLink } from './peers.ts';

/** The volunteers' signaling and data channels, advanced only when the test says so. */
export class MemoryNetwork {
  /** Every link ever made, in order. */
  readonly links: MemoryLink[] = [];
  /** While true, signaling is lost (ICE that never connects): links time out. */
  blocked = false;
  private readonly pending: Array<() => void> = [];
  private readonly signalTo = new Map<string, (from: string, data: SignalData) => void>();
  private nextId = 1;

  /**
   * A volunteer's way into the network: its link factory, and the `signal` callback its mesh
   * sends signaling through.
   */
  join(self: string): { createLink: LinkFactory; signal: (to: string, data: SignalData) => void } {
    return {
      createLink: (request) => {
        const link = new MemoryLink(this, `${self}#${this.nextId++}`, self, request);
        this.links.push(link);
        return link;
      },
      signal: (to, data) => {
        if (this.blocked) return;
        this.later(() => this.signalTo.get(to)?.(self, data));
      },
    };
  }

  /** Where signaling for `self` goes: its mesh's `handleSignal`. */
  listen(self: string, receive: (from: string, data: SignalData) => void): void {
    this.signalTo.set(self, receive);
  }

  /** The links of `owner` that are open now. */
  open(owner: string): MemoryLink[] {
    return this.links.filter((l) => l.owner === owner && l.open);
  }

  later(action: () => void): void {
    this.pending.push(action);
  }

  /** Runs everything queued, and what that queues in turn. */
  settle(): void {
    for (let steps = 0; this.pending.length > 0; steps++) {
      if (steps > 10_000) throw new Error('the memory network did not settle');
      this.pending.shift()?.();
    }
  }

  byId(id: string): MemoryLink | undefined {
    return this.links.find((l) => l.id === id);
  }
}

/** One end of a data channel in memory. Signaling carries link ids in place of SDP. */
export class MemoryLink implements SignaledLink {
  readonly peer: string;
  open = false;
  bufferedAmount = 0;
  maxMessageSize = DEFAULT_MAX_MESSAGE_BYTES;
  closed = false;
  /** Why it closed (undefined while open or when closed without error). */
  closeError: LinkError | undefined;
  private remote: MemoryLink | undefined;
  /** Candidates that came before the far end's description (simple-peer holds them too). */
  private readonly heldCandidates: string[] = [];
  private readonly queue: Uint8Array[] = [];

  constructor(
    private readonly network: MemoryNetwork,
    readonly id: string,
    readonly owner: string,
    private readonly request: LinkRequest,
  ) {
    this.peer = request.peer;
    if (request.initiator) {
      request.signal({ type: 'offer', sdp: id });
      request.signal({ type: 'candidate', candidate: { candidate: id } });
    }
  }

  signal(data: SignalData): void {
    if (this.closed) return;
    if (data.type === 'offer') {
      if (this.request.initiator || this.remote) {
        this.fail('an offer on a link that already has one');
        return;
      }
      this.remote = this.network.byId(data.sdp);
      if (!this.checkHeldCandidates()) return;
      this.request.signal({ type: 'answer', sdp: this.id });
      this.request.signal({ type: 'candidate', candidate: { candidate: this.id } });
    } else if (data.type === 'answer') {
      const remote = this.network.byId(data.sdp);
      if (!this.request.initiator || this.remote || remote?.remote !== this) {
        this.fail('an answer that does not answer this link');
        return;
      }
      this.remote = remote;
      if (!this.checkHeldCandidates()) return;
      this.network.later(() => {
        if (this.closed || remote.closed) return;
        this.open = remote.open = true;
        this.request.handlers.onOpen();
        remote.request.handlers.onOpen();
      });
    } else if (data.type === 'candidate') {
      this.heldCandidates.push(data.candidate.candidate);
      if (this.remote) this.checkHeldCandidates();
    }
  }

  /** Fails the link if a candidate came from another attempt than the far end's. */
  private checkHeldCandidates(): boolean {
    const stray = this.heldCandidates.find((c) => c !== this.remote?.id);
    this.heldCandidates.length = 0;
    if (stray === undefined) return true;
    this.fail(`a candidate of another attempt (${stray})`);
    return false;
  }

  send(bytes: Uint8Array): void {
    if (!this.open) throw new LinkError('ERR_LINK_NOT_OPEN', `link to ${this.peer} is not open`);
    if (bytes.byteLength > this.maxMessageSize) {
      throw new LinkError('ERR_LINK_MESSAGE_SIZE', `${bytes.byteLength} bytes is too large`);
    }
    if (this.bufferedAmount + bytes.byteLength > SEND_QUEUE_CEILING_BYTES) {
      throw new LinkError('ERR_LINK_BACKLOG', `${this.bufferedAmount} bytes already queued`);
    }
    this.queue.push(bytes.slice());
    this.bufferedAmount += bytes.byteLength;
  }

  /** Hands up to `count` queued messages to the far end, as the network drains the channel. */
  deliver(count = Infinity): void {
    const wasAbove = this.bufferedAmount > BACKLOG_LOW_WATER_BYTES;
    for (let i = 0; i < count && this.queue.length > 0 && this.open; i++) {
      const bytes = this.queue.shift() as Uint8Array;
      this.bufferedAmount -= bytes.byteLength;
      if (this.remote?.open) this.remote.request.handlers.onMessage(bytes);
    }
    if (wasAbove && this.bufferedAmount <= BACKLOG_LOW_WATER_BYTES && this.open) {
      this.request.handlers.onBufferedAmountLow();
    }
  }

  probe(): Promise<LinkProbe> {
    return Promise.resolve(
      this.open ? { rttMs: 2, route: 'direct' } : { rttMs: undefined, route: undefined },
    );
  }

  destroy(err?: LinkError): void {
    if (this.closed) return;
    this.closed = true;
    this.open = false;
    this.closeError = err;
    this.request.handlers.onClose(err);
    const remote = this.remote;
    if (remote) {
      this.network.later(() =>
        remote.destroy(new LinkError('ERR_LINK_FAILED', 'the data channel closed')),
      );
    }
  }

  private fail(why: string): void {
    this.destroy(new LinkError('ERR_LINK_FAILED', why));
  }
}
