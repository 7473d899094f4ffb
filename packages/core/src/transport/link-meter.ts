/**
 * Per-link traffic accounting, pure and clock-free (the caller passes the time), so the same
 * meter serves the volunteer page, tests and the simulator.
 */

/** What one interval of a link looked like. */
export interface LinkInterval {
  /**
   * Bytes per second that left the send queue toward the peer: bytes queued in the interval
   * minus the growth of the backlog. A link that only queues reports ~0, not what it queued.
   */
  readonly goodputBytesPerSec: number;
  /** Bytes per second received from the peer. */
  readonly receivedBytesPerSec: number;
  /** Backlog at the end of the interval. */
  readonly backlogBytes: number;
  /** Messages queued, received and refused (skipped sends) during the interval. */
  readonly sent: number;
  readonly received: number;
  readonly dropped: number;
}

/** Cumulative counters of one link, plus the interval view `sample()` derives from them. */
export class LinkMeter {
  /** Cumulative since the meter was created; monotonic. */
  bytesQueued = 0;
  bytesReceived = 0;
  messagesQueued = 0;
  messagesReceived = 0;
  /** Sends refused at the link (not open, backlog over the ceiling, message too big). */
  messagesDropped = 0;

  private last: {
    time: number;
    queued: number;
    received: number;
    backlog: number;
    sent: number;
    got: number;
    dropped: number;
  };

  /** `now` in milliseconds on any monotonic clock; `sample()` must use the same one. */
  constructor(now: number) {
    this.last = { time: now, queued: 0, received: 0, backlog: 0, sent: 0, got: 0, dropped: 0 };
  }

  queued(bytes: number): void {
    this.bytesQueued += bytes;
    this.messagesQueued++;
  }

  received(bytes: number): void {
    this.bytesReceived += bytes;
    this.messagesReceived++;
  }

  dropped(): void {
    this.messagesDropped++;
  }

  /** The interval since the previous `sample()` (or creation), ending at `now` with `backlog`. */
  sample(now: number, backlogBytes: number): LinkInterval {
    const last = this.last;
    const seconds = Math.max(now - last.time, 1) / 1000;
    const left = this.bytesQueued - last.queued - (backlogBytes - last.backlog);
    const interval: LinkInterval = {
      goodputBytesPerSec: Math.max(0, left) / seconds,
      receivedBytesPerSec: (this.bytesReceived - last.received) / seconds,
      backlogBytes,
      sent: this.messagesQueued - last.sent,
      received: this.messagesReceived - last.got,
      dropped: this.messagesDropped - last.dropped,
    };
    this.last = {
      time: now,
      queued: this.bytesQueued,
      received: this.bytesReceived,
      backlog: backlogBytes,
      sent: this.messagesQueued,
      got: this.messagesReceived,
      dropped: this.messagesDropped,
    };
    return interval;
  }
}
