/**
 * Core's `PeerLink` over one simple-peer data channel (DESIGN §4): the only file that knows the
 * WebRTC library, so the mesh (peers.ts) can be tested with links in memory and the library
 * swapped. `simplePeerLinks` is the factory the page hands to `PeerMesh`.
 */
// The e2e transport bench compiles this file without the client's tsconfig (which includes
// the declaration); the reference makes the declaration travel with the file.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference
/// <reference path="./simple-peer.d.ts" />
import SimplePeer from 'simple-peer/simplepeer.min.js';
import {
  BACKLOG_LOW_WATER_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  LinkError,
  MAX_RELAY_BYTES,
  probeFromStats,
  SEND_QUEUE_CEILING_BYTES,
  type LinkProbe,
  type PeerLinkHandlers,
  type SignalData,
  type StatsRecord,
} from '@meshgrad/core';
import type { LinkFactory, LinkRequest, SignaledLink } from './peers.ts';

/**
 * The factory `PeerMesh` makes its links with: each new connection gets `rtc()` afresh, so a
 * link made later uses the TURN credentials current then.
 */
export function simplePeerLinks(rtc: () => RTCConfiguration): LinkFactory {
  return (request) => new SimplePeerLink(request, rtc());
}

/** A `PeerLink` over one simple-peer data channel. */
export class SimplePeerLink implements SignaledLink {
  readonly peer: string;
  private readonly sp: SimplePeer;
  private readonly handlers: PeerLinkHandlers;
  private pc: RTCPeerConnection | null = null;
  private channel: RTCDataChannel | null = null;
  private state: 'connecting' | 'open' | 'closed' = 'connecting';

  constructor(request: LinkRequest, rtc: RTCConfiguration) {
    this.peer = request.peer;
    this.handlers = request.handlers;
    // simple-peer keeps its RTCPeerConnection and RTCDataChannel private. We need both (SCTP
    // max message size, getStats, bufferedamountlow), so hand it the browser's classes through
    // its documented `wrtc` option, subclassed to show us each object as it is made.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const link = this;
    class ObservedPeerConnection extends RTCPeerConnection {
      constructor(config?: RTCConfiguration) {
        super(config);
        link.pc = this;
        this.addEventListener('datachannel', (e) => link.adopt(e.channel));
      }
      override createDataChannel(label: string, init?: RTCDataChannelInit): RTCDataChannel {
        const channel = super.createDataChannel(label, init);
        link.adopt(channel);
        return channel;
      }
    }
    this.sp = new SimplePeer({
      initiator: request.initiator,
      trickle: true,
      // Why the explicit empty list: simple-peer's default config names public STUN servers;
      // ICE servers come from the job server's configuration only (DESIGN §4).
      config: { iceServers: [], ...rtc },
      // Ordered and reliable (the defaults): a state message is one SCTP message either way,
      // and lossy delivery is the mailbox's job, not the wire's.
      channelConfig: {},
      wrtc: {
        RTCPeerConnection: ObservedPeerConnection,
        RTCSessionDescription,
        RTCIceCandidate,
      },
    });
    this.sp.on('signal', (data) => {
      if (this.state === 'closed') return;
      if (data.type === 'offer' || data.type === 'answer' || data.type === 'candidate') {
        request.signal(data as SignalData);
      }
    });
    this.sp.on('connect', () => this.onConnect());
    this.sp.on('data', (data) => {
      if (this.state === 'open') this.handlers.onMessage(data);
    });
    this.sp.on('error', (err) =>
      this.destroy(
        new LinkError('ERR_LINK_FAILED', `${err.code ?? 'error'}: ${err.message}`, { cause: err }),
      ),
    );
    this.sp.on('close', () =>
      this.destroy(new LinkError('ERR_LINK_FAILED', 'the data channel closed')),
    );
  }

  get open(): boolean {
    return this.state === 'open' && this.channel?.readyState === 'open';
  }

  get bufferedAmount(): number {
    return this.channel?.bufferedAmount ?? 0;
  }

  get maxMessageSize(): number {
    const max = this.pc?.sctp?.maxMessageSize;
    // 0 would mean "no limit" per the spec; Chromium says 262,144. Clamp to what we can send.
    return max && Number.isFinite(max) ? Math.min(max, MAX_RELAY_BYTES) : DEFAULT_MAX_MESSAGE_BYTES;
  }

  signal(data: SignalData): void {
    if (this.state === 'closed') return;
    try {
      this.sp.signal(data);
    } catch (err) {
      this.destroy(
        new LinkError('ERR_LINK_FAILED', `bad signaling data: ${String(err)}`, { cause: err }),
      );
    }
  }

  send(bytes: Uint8Array): void {
    if (!this.open) throw new LinkError('ERR_LINK_NOT_OPEN', `link to ${this.peer} is not open`);
    if (bytes.byteLength > this.maxMessageSize) {
      throw new LinkError(
        'ERR_LINK_MESSAGE_SIZE',
        `${bytes.byteLength} bytes is over the link's ${this.maxMessageSize}`,
      );
    }
    if (this.bufferedAmount + bytes.byteLength > SEND_QUEUE_CEILING_BYTES) {
      throw new LinkError('ERR_LINK_BACKLOG', `${this.bufferedAmount} bytes already queued`);
    }
    try {
      this.sp.send(bytes);
    } catch (err) {
      // The channel closed under us (send() throws InvalidStateError then).
      const failure = new LinkError('ERR_LINK_FAILED', `send failed: ${String(err)}`, {
        cause: err,
      });
      this.destroy(failure);
      throw failure;
    }
  }

  async probe(): Promise<LinkProbe> {
    const pc = this.pc;
    if (!pc || this.state !== 'open') return { rttMs: undefined, route: undefined };
    try {
      const report = await pc.getStats();
      return probeFromStats(report.values() as Iterable<StatsRecord>);
    } catch {
      return { rttMs: undefined, route: undefined };
    }
  }

  destroy(err?: LinkError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.sp.destroy();
    this.channel = null;
    this.pc = null;
    this.handlers.onClose(err);
  }

  private adopt(channel: RTCDataChannel): void {
    this.channel = channel;
    channel.binaryType = 'arraybuffer';
    channel.addEventListener('bufferedamountlow', () => {
      if (this.state === 'open') this.handlers.onBufferedAmountLow();
    });
  }

  private onConnect(): void {
    if (this.state !== 'connecting') return;
    this.state = 'open';
    // simple-peer sets its own 64 KiB threshold when it wires the channel; ours replaces it.
    if (this.channel) this.channel.bufferedAmountLowThreshold = BACKLOG_LOW_WATER_BYTES;
    this.handlers.onOpen();
  }
}
