/** Which encoding of a block fits a link's maximum message size (DESIGN §4). */
import { bytesPerValue, ENCODINGS, type Encoding } from '../codec/encoding.ts';
import { MAX_MESSAGE_BYTES, MESSAGE_HEADER_BYTES } from '../codec/message.ts';

/** Bytes of a state message carrying `values` values as `encoding`. */
export function stateMessageBytes(values: number, encoding: Encoding): number {
  return MESSAGE_HEADER_BYTES + values * bytesPerValue(encoding);
}

/**
 * The encoding to send a block of `values` values with: `preferred` when its message fits in
 * `maxMessageBytes` (and in the codec's own MAX_MESSAGE_BYTES), else the next less precise one
 * that fits, else null (the block cannot go over this link). Never more precise than asked, so
 * the balancer's choice is an upper bound on what goes on the wire.
 */
export function fitEncoding(
  values: number,
  preferred: Encoding,
  maxMessageBytes: number,
): Encoding | null {
  const limit = Math.min(maxMessageBytes, MAX_MESSAGE_BYTES);
  for (let i = ENCODINGS.indexOf(preferred); i < ENCODINGS.length; i++) {
    const encoding = ENCODINGS[i] as Encoding;
    if (stateMessageBytes(values, encoding) <= limit) return encoding;
  }
  return null;
}
