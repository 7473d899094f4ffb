let table: Uint32Array | null = null;

/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial) of `bytes`. Pass the CRC of earlier bytes as
 * `previous` to continue it: `crc32(b, crc32(a))` equals the CRC of `a` followed by `b`.
 * Detects every single-byte corruption and every burst of up to 32 bits.
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  const t = table;
  let crc = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    crc = (t[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}
