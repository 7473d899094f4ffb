/**
 * A malicious volunteer for the byzantine spec, made from the test alone (no attack knobs in
 * production code): an init script wraps `RTCDataChannel.prototype.send` so every state message
 * the tab sends carries its block sign-flipped (each value v sent as −v, in whichever encoding the
 * message uses) with the checksum recomputed. The message is well formed and under the norm
 * bound, so only the receive-path guard (docs/design.md §8.1) can tell it from an honest one.
 */
import type { BrowserContext, Page } from '@playwright/test';

/** Wraps the page's data-channel sends; call before the page loads. */
export async function injectSignFlip(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const HEADER = 48;
    const counts = { flipped: 0 };
    (window as unknown as { __meshgradSignFlips: typeof counts }).__meshgradSignFlips = counts;
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    const crc32 = (bytes: Uint8Array, previous = 0) => {
      let crc = (previous ^ 0xffffffff) >>> 0;
      for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
      return (crc ^ 0xffffffff) >>> 0;
    };
    const send = RTCDataChannel.prototype.send as (this: RTCDataChannel, data: unknown) => void;
    RTCDataChannel.prototype.send = function (this: RTCDataChannel, data: unknown) {
      if (!ArrayBuffer.isView(data) || data.byteLength <= HEADER) return send.call(this, data);
      const bytes = new Uint8Array(data.byteLength);
      bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      const view = new DataView(bytes.buffer);
      // Only state messages ('MGB1', version 1); anything else on the channel goes as it was.
      if (view.getUint32(0, true) !== 0x3142474d || view.getUint8(4) !== 1) {
        return send.call(this, data);
      }
      const encoding = view.getUint8(5);
      if (encoding === 0) {
        for (let i = HEADER; i + 4 <= bytes.length; i += 4) bytes[i + 3]! ^= 0x80;
      } else if (encoding === 1) {
        for (let i = HEADER; i + 2 <= bytes.length; i += 2) bytes[i + 1]! ^= 0x80;
      } else {
        // int8 codes lie in [−127, 127], so negating one never overflows.
        for (let i = HEADER; i < bytes.length; i++) view.setInt8(i, -view.getInt8(i));
      }
      const crc = crc32(bytes.subarray(HEADER), crc32(bytes.subarray(0, 40)));
      view.setUint32(40, crc, true);
      counts.flipped++;
      return send.call(this, bytes);
    };
  });
}

/** The state messages the tab has sent sign-flipped so far. */
export function signFlips(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      (window as unknown as { __meshgradSignFlips: { flipped: number } }).__meshgradSignFlips
        .flipped,
  );
}
