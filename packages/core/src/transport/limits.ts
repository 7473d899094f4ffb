/**
 * Limits of the data plane (DESIGN §4). Sizes are in bytes, times in milliseconds.
 *
 * Chromium refuses a data-channel message over 262,144 bytes and throws from `send()` once
 * 16 MiB is queued (docs/recipes.md); everything here stays well inside both.
 */

/**
 * Backlog (`bufferedAmount`) above which a link takes no more state messages: the local safety
 * valve of DESIGN §3. A send to such a link is skipped, and counted, rather than queued.
 */
export const BACKLOG_HARD_LIMIT_BYTES = 2 * 1024 * 1024;

/**
 * Backlog at which a link that hit the hard limit takes messages again: the data channel's
 * `bufferedAmountLowThreshold`, so `bufferedamountlow` reopens the link without polling.
 */
export const BACKLOG_LOW_WATER_BYTES = 512 * 1024;

/**
 * Queued bytes past which a send is refused outright even when the sender's view of the backlog
 * is stale (it learns the backlog a few times a second): half of Chromium's 16 MiB.
 */
export const SEND_QUEUE_CEILING_BYTES = 8 * 1024 * 1024;

/**
 * Largest message assumed when the transport does not say (RFC 8841's default
 * `max-message-size` when the remote SDP carries none).
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 65_536;

/** A link not open within this time is given up; the pair then uses the server relay. */
export const CONNECT_TIMEOUT_MS = 15_000;

/** How long after a failed or lost link the initiating side tries a direct link again. */
export const RECONNECT_AFTER_MS = 30_000;

/** How often the page tells the training loop which links can take messages. */
export const LINK_STATUS_INTERVAL_MS = 250;
