// CRC-32C (Castagnoli), the checksum of every metadata page, mask and the super block.
// Table-driven, reflected polynomial; crc32c("123456789") = 0xe3069283.

const CRC32C_POLY_REFLECTED = 0x82f63b78;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY_REFLECTED : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** crc32c of data[start, end). */
export function crc32c(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** One step of a streamed crc32c: start from 0xffffffff, end with (crc ^ 0xffffffff) >>> 0. */
export function crc32cUpdate(crc: number, data: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) crc = TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return crc;
}
