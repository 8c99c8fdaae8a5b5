// Big-endian field access for CDBs, parameter lists and response data (all SCSI fields are
// big-endian). Plain functions over Uint8Array: no DataView allocated per request.

export function be16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

export function be24(b: Uint8Array, o: number): number {
  return (b[o] << 16) | (b[o + 1] << 8) | b[o + 2];
}

export function be32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) >>> 0) + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
}

/**
 * A 64-bit field as a number. Values beyond 2^53 cannot be a valid LBA or count here (no device
 * is that large), so they come back as Infinity, which every range check rejects.
 */
export function be64(b: Uint8Array, o: number): number {
  const hi = be32(b, o);
  if (hi > 0x1fffff) return Infinity;
  return hi * 4294967296 + be32(b, o + 4);
}

export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export function put24(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 16) & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = v & 0xff;
}

export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** Writes a non-negative integer below 2^53 as a 64-bit field. */
export function put64(b: Uint8Array, o: number, v: number): void {
  put32(b, o, Math.floor(v / 4294967296));
  put32(b, o + 4, v >>> 0);
}

/**
 * CDB length implied by the operation code's group (SPC-4 4.2.5.1); 0 for groups whose length
 * is not fixed (variable length 0x7F, reserved and vendor-specific groups).
 */
export function cdbLengthOf(opcode: number): number {
  switch (opcode >> 5) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 0;
  }
}
