let tables: Uint32Array[] | null = null;

/**
 * Lookup tables for slicing-by-8: table 0 is the classic byte-at-a-time table, table j gives
 * the CRC contribution of a byte followed by j zero bytes. State messages are checksummed on
 * every send and receive, so this runs at data-channel speed; eight bytes per step is several
 * times faster than one.
 */
function crcTables(): Uint32Array[] {
  if (tables) return tables;
  const t: Uint32Array[] = [];
  for (let j = 0; j < 8; j++) t.push(new Uint32Array(256));
  const t0 = t[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t0[n]!;
    for (let j = 1; j < 8; j++) {
      c = t0[c & 0xff]! ^ (c >>> 8);
      t[j]![n] = c >>> 0;
    }
  }
  tables = t;
  return t;
}

/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial) of `bytes`. Pass the CRC of earlier bytes as
 * `previous` to continue it: `crc32(b, crc32(a))` equals the CRC of `a` followed by `b`.
 * Detects every single-byte corruption and every burst of up to 32 bits.
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = crcTables() as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let crc = (previous ^ 0xffffffff) >>> 0;
  const n = bytes.length;
  let i = 0;
  for (const end = n - (n % 8); i < end; i += 8) {
    const lo =
      (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>>
      0;
    crc =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[bytes[i + 4]!]! ^
      t2[bytes[i + 5]!]! ^
      t1[bytes[i + 6]!]! ^
      t0[bytes[i + 7]!]!;
  }
  for (; i < n; i++) crc = t0[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
