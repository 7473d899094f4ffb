/** Protocol version spoken by this build; `hello` carries it and the server refuses others. */
export const PROTOCOL_VERSION = 1;

/**
 * Largest socket.io payload the server accepts (bytes). State uploads of the default MLP are
 * ~400 KB as float32; 16 MiB leaves room for larger models without letting one client exhaust
 * server memory.
 */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

/** Largest relayed state message (bytes): one encoded block plus header, as on a data channel. */
export const MAX_RELAY_BYTES = 262_144;

/**
 * Largest WebRTC signaling payload relayed between two volunteers (bytes of its SDP or
 * candidate text). A data-channel-only offer is about 1 KB; media would never come this way.
 */
export const MAX_SIGNAL_BYTES = 16_384;

/** Most links one statistics report may carry (a volunteer's first neighbours). */
export const MAX_REPORTED_LINKS = 64;

/** How often a volunteer reports statistics (ms). */
export const STATS_INTERVAL_MS = 1_000;

/** Default time a request waits for its reply before failing with ERR_TIMEOUT (ms). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
