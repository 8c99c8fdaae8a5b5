// virtio-blk wire structs (virtio spec, device-types/blk), little-endian, encoded in place with
// byte stores so the request path allocates nothing.
import { putU32, putU64 } from './virtio-scsi-wire.ts';

// Request types.
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_GET_LIFETIME = 10;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_SECURE_ERASE = 14;

// Status byte.
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

// Feature bits.
export const VIRTIO_BLK_F_SIZE_MAX = 1;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_GEOMETRY = 4;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;
export const VIRTIO_BLK_F_TOPOLOGY = 10;
export const VIRTIO_BLK_F_CONFIG_WCE = 11;
export const VIRTIO_BLK_F_MQ = 12;
export const VIRTIO_BLK_F_DISCARD = 13;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;
export const VIRTIO_BLK_F_LIFETIME = 15;
export const VIRTIO_BLK_F_SECURE_ERASE = 16;

/** Sectors are always 512 bytes, whatever blk_size says. */
export const VIRTIO_BLK_SECTOR_SIZE = 512;
/** GET_ID answers a serial of this many bytes (NUL-padded, not necessarily NUL-terminated). */
export const VIRTIO_BLK_ID_BYTES = 20;
/** Request header: u32 type, u32 reserved (ioprio), u64 sector. */
export const VIRTIO_BLK_OUTHDR_SIZE = 16;
export const VIRTIO_BLK_STATUS_SIZE = 1;
/** Discard / write-zeroes / secure-erase segment: u64 sector, u32 num_sectors, u32 flags. */
export const VIRTIO_BLK_DISCARD_SEGMENT_SIZE = 16;
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;

/** virtio_blk_outhdr. reserved is the spec's reserved (legacy ioprio) field: 0 unless a test lies. */
export function putBlkOutHdr(b: Uint8Array, off: number, type: number, sector: number, reserved = 0): void {
  putU32(b, off, type >>> 0);
  putU32(b, off + 4, reserved >>> 0);
  putU64(b, off + 8, sector);
}

export interface BlkSegment {
  sector: number;
  numSectors: number;
  /** Bit 0: unmap (write-zeroes only); other bits are reserved and a device must reject them. */
  flags?: number;
}

/** virtio_blk_discard_write_zeroes. */
export function putBlkSegment(b: Uint8Array, off: number, sector: number, numSectors: number, flags: number): void {
  putU64(b, off, sector);
  putU32(b, off + 8, numSectors >>> 0);
  putU32(b, off + 12, flags >>> 0);
}

/** Writes segments back to back; returns the bytes written. */
export function putBlkSegments(b: Uint8Array, off: number, segments: readonly BlkSegment[], flagsOverride = -1): number {
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    putBlkSegment(b, off + VIRTIO_BLK_DISCARD_SEGMENT_SIZE * i, s.sector, s.numSectors, flagsOverride >= 0 ? flagsOverride : (s.flags ?? 0));
  }
  return VIRTIO_BLK_DISCARD_SEGMENT_SIZE * segments.length;
}

/** The serial from a GET_ID reply: bytes up to the first NUL, as latin1. */
export function decodeBlkId(b: Uint8Array): string {
  let n = 0;
  while (n < b.length && n < VIRTIO_BLK_ID_BYTES && b[n] !== 0) n++;
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(b[i]);
  return s;
}
