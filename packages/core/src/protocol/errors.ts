/** Stable error codes carried by protocol error replies. */
export type ProtocolErrorCode =
  | 'ERR_INVALID_PAYLOAD'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_PROTOCOL_VERSION'
  | 'ERR_NOT_JOINED'
  | 'ERR_UNKNOWN_JOB'
  | 'ERR_UNKNOWN_PEER'
  | 'ERR_UNEXPECTED'
  | 'ERR_RATE_LIMITED'
  /** The job runs a custom WGSL kernel and the volunteer has no WebGPU backend. */
  | 'ERR_NEEDS_WEBGPU'
  /** The host banned this worker id from the job (docs/design.md §8). */
  | 'ERR_BANNED'
  /** A hello's challenge is not this connection's, or was used already (a replay). */
  | 'ERR_CHALLENGE'
  /** A hello's signature does not verify against its public key. */
  | 'ERR_BAD_SIGNATURE'
  | 'ERR_INTERNAL';

/** The error reply shape: every acknowledgement is either `{ ok: true, ... }` or this. */
export interface ErrorReply {
  readonly ok: false;
  readonly code: ProtocolErrorCode;
  /** Human-readable; names the offending field for ERR_INVALID_PAYLOAD. */
  readonly message: string;
}
