// virtio-scsi's 8-byte LUN field: {1, target, 0x40 | lun >> 8, lun & 0xff, 0, 0, 0, 0}.

/** Target number from the LUN field, or -1 when the field is not a single-level target address. */
export function lunFieldTarget(b: Uint8Array, off: number): number {
  return b[off] === 1 ? b[off + 1] : -1;
}

/** LUN number (flat or peripheral addressing), or -1 for an address form we do not serve. */
export function lunFieldLun(b: Uint8Array, off: number): number {
  // Byte 2 is read once: b may be guest memory that changes under us.
  const b2 = b[off + 2];
  const method = b2 >> 6;
  if (method !== 0 && method !== 1) return -1;
  if (b[off + 4] !== 0 || b[off + 5] !== 0 || b[off + 6] !== 0 || b[off + 7] !== 0) return -1;
  return ((b2 & 0x3f) << 8) | b[off + 3];
}

export function writeLunField(b: Uint8Array, off: number, target: number, lun: number): void {
  b[off] = 1;
  b[off + 1] = target;
  b[off + 2] = 0x40 | (lun >> 8);
  b[off + 3] = lun & 0xff;
  b[off + 4] = b[off + 5] = b[off + 6] = b[off + 7] = 0;
}
