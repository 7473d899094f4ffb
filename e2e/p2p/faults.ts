/**
 * Faulty and malicious volunteers for the p2p and byzantine specs, made from the test alone (no
 * fault knobs in production code): an init script wraps `RTCDataChannel.prototype.send` and
 * rewrites every state message the tab sends.
 * - `mixed`: in turn random garbage, a well-formed block of NaNs, or a well-formed block scaled
 *   by 1e6. The last two carry a valid CRC, so they get past the checksum and must be caught by
 *   the finite-value check and the norm bound.
 * - `sign-flip`: the block sign-flipped (each value v sent as −v, in whichever encoding the
 *   message uses) with the CRC recomputed: well formed and under the norm bound, so only the
 *   receive-path guard (docs/design.md §8.1) can tell it from an honest one.
 */
import type { BrowserContext, Page } from '@playwright/test';

export type FaultMode = 'mixed' | 'sign-flip';

export interface FaultCounts {
  garbage: number;
  nan: number;
  scaled: number;
  flipped: number;
}

/** Wraps the page's data-channel sends; call before the page loads. */
export async function injectFaults(
  context: BrowserContext,
  mode: FaultMode = 'mixed',
): Promise<void> {
  await context.addInitScript((mode: FaultMode) => {
    const HEADER = 48;
    const counts = { garbage: 0, nan: 0, scaled: 0, flipped: 0 };
    (window as unknown as { __meshgradFaults: typeof counts }).__meshgradFaults = counts;
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
    const reseal = (bytes: Uint8Array) => {
      const crc = crc32(bytes.subarray(HEADER), crc32(bytes.subarray(0, 40)));
      new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(40, crc, true);
    };
    let turn = 0;
    const send = RTCDataChannel.prototype.send as (this: RTCDataChannel, data: unknown) => void;
    RTCDataChannel.prototype.send = function (this: RTCDataChannel, data: unknown) {
      if (!ArrayBuffer.isView(data) || data.byteLength <= HEADER) {
        return send.call(this, data);
      }
      const bytes = new Uint8Array(data.byteLength);
      bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      const view = new DataView(bytes.buffer);
      if (mode === 'sign-flip') {
        // Only state messages ('MGB1', version 1); anything else goes as it was.
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
        reseal(bytes);
        counts.flipped++;
        return send.call(this, bytes);
      }
      const f32 = view.getUint8(5) === 0;
      const kind = turn++ % 3;
      if (kind === 0 || !f32) {
        for (let i = 0; i < bytes.length; i++) bytes[i] = (Math.random() * 256) | 0;
        counts.garbage++;
      } else if (kind === 1) {
        for (let i = HEADER; i + 4 <= bytes.length; i += 4) view.setFloat32(i, Number.NaN, true);
        reseal(bytes);
        counts.nan++;
      } else {
        for (let i = HEADER; i + 4 <= bytes.length; i += 4) {
          view.setFloat32(i, view.getFloat32(i, true) * 1e6, true);
        }
        reseal(bytes);
        counts.scaled++;
      }
      return send.call(this, bytes);
    };
  }, mode);
}

export function faultCounts(page: Page): Promise<FaultCounts> {
  return page.evaluate(
    () => (window as unknown as { __meshgradFaults: FaultCounts }).__meshgradFaults,
  );
}
