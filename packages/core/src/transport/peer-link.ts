/**
 * The data-plane connection to one peer (DESIGN §4), behind an interface of our own so the
 * WebRTC library (simple-peer today) can be swapped. No DOM types: core runs in Node too, where
 * tests and the simulator implement links in memory.
 */

/**
 * How a link's bytes travel: `direct` between the two hosts, `turn` through a TURN relay
 * (NAT traversal, still peer to peer for the application), or `server` through the job server's
 * socket.io relay when no WebRTC link could be made.
 */
export type LinkRoute = 'direct' | 'turn' | 'server';

/** Stable codes of link failures (`LinkError.code`). */
export type LinkErrorCode =
  /** Not open within CONNECT_TIMEOUT_MS. */
  | 'ERR_LINK_CONNECT_TIMEOUT'
  /** ICE, DTLS or SCTP failed, or the remote closed the link. */
  | 'ERR_LINK_FAILED'
  /** `send()` on a link that is not open. */
  | 'ERR_LINK_NOT_OPEN'
  /** `send()` of a message larger than the link's maximum message size. */
  | 'ERR_LINK_MESSAGE_SIZE'
  /** `send()` while the queue is over SEND_QUEUE_CEILING_BYTES. */
  | 'ERR_LINK_BACKLOG'
  /** Closed on purpose, e.g. the peer is no longer a neighbour. */
  | 'ERR_LINK_CLOSED';

export class LinkError extends Error {
  constructor(
    readonly code: LinkErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LinkError';
  }
}

/** What a link reports to its owner. Called at most once each for open and close. */
export interface PeerLinkHandlers {
  /** The link can carry messages now. */
  onOpen(): void;
  /** One whole message from the peer. */
  onMessage(bytes: Uint8Array): void;
  /** The backlog fell to BACKLOG_LOW_WATER_BYTES after being above it. */
  onBufferedAmountLow(): void;
  /** The link is gone; `err` says why (absent for a close asked by `destroy()` without error). */
  onClose(err?: LinkError): void;
}

/** Round-trip time and route of an open link, from the transport's own statistics. */
export interface LinkProbe {
  readonly rttMs: number | undefined;
  readonly route: 'direct' | 'turn' | undefined;
}

/** One bidirectional message link to one peer. */
export interface PeerLink {
  /** The peer's worker id. */
  readonly peer: string;
  /** Whether `send()` can be called now. */
  readonly open: boolean;
  /** Bytes queued by `send()` and not yet handed to the network. */
  readonly bufferedAmount: number;
  /** Largest message this link carries (negotiated; DEFAULT_MAX_MESSAGE_BYTES until known). */
  readonly maxMessageSize: number;
  /** Queues one message. Throws LinkError when the link is not open or the message too big. */
  send(bytes: Uint8Array): void;
  /** Measures RTT and route; resolves undefined fields when the transport cannot say. */
  probe(): Promise<LinkProbe>;
  /** The one teardown path: closes the link; `onClose(err)` follows once. Idempotent. */
  destroy(err?: LinkError): void;
}
