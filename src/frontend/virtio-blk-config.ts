// The virtio-blk device config space (struct virtio_blk_config), parsed from what GET_CONFIG
// returned. QEMU's vhost-user-blk reads 36 bytes (up to num_queues), 48 with DISCARD, 57 with
// WRITE_ZEROES; newer layouts add secure erase (72) and zoned (96) fields. Only what the bytes
// cover is parsed; the rest is null.
import { VirtioBlkError } from './virtio-blk-error.ts';

// Offsets and sizes from the spec's struct layout.
export const VIRTIO_BLK_CONFIG_BASE_SIZE = 36;
export const VIRTIO_BLK_CONFIG_DISCARD_END = 48;
export const VIRTIO_BLK_CONFIG_WRITE_ZEROES_END = 57;
export const VIRTIO_BLK_CONFIG_SECURE_ERASE_END = 72;
export const VIRTIO_BLK_CONFIG_ZONED_END = 96;
/** What QEMU's vhost-user-blk asks for (DISCARD and WRITE_ZEROES on by default). */
export const QEMU_BLK_CONFIG_SIZE = 57;

export interface BlkGeometry {
  cylinders: number;
  heads: number;
  sectors: number;
}

export interface BlkTopology {
  physicalBlockExp: number;
  alignmentOffset: number;
  minIoSize: number;
  optIoSize: number;
}

export interface BlkDiscardLimits {
  maxSectors: number;
  maxSeg: number;
  sectorAlignment: number;
}

export interface BlkWriteZeroesLimits {
  maxSectors: number;
  maxSeg: number;
  mayUnmap: number;
}

export interface BlkZoned {
  zoneSectors: number;
  maxOpenZones: number;
  maxActiveZones: number;
  maxAppendSectors: number;
  writeGranularity: number;
  model: number;
}

export interface BlkConfig {
  /** Bytes the config had. */
  length: number;
  /** In 512-byte sectors. A number for convenience (exact below 2^53); capacityBig is always exact. */
  capacity: number;
  capacityBig: bigint;
  sizeMax: number;
  segMax: number;
  geometry: BlkGeometry;
  blkSize: number;
  topology: BlkTopology;
  /** The `wce` byte: 1 writeback, 0 writethrough. */
  writeback: number;
  numQueues: number;
  discard: BlkDiscardLimits | null;
  writeZeroes: BlkWriteZeroesLimits | null;
  secureErase: BlkDiscardLimits | null;
  zoned: BlkZoned | null;
}

export function parseBlkConfig(bytes: Uint8Array): BlkConfig {
  if (bytes.length < VIRTIO_BLK_CONFIG_BASE_SIZE) {
    throw new VirtioBlkError('BAD_CONFIG', `virtio-blk config of ${bytes.length} bytes is shorter than the ${VIRTIO_BLK_CONFIG_BASE_SIZE} bytes up to num_queues`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (o: number): number => v.getUint32(o, true);
  const capacity = v.getBigUint64(0, true);
  return {
    length: bytes.length,
    capacity: Number(capacity),
    capacityBig: capacity,
    sizeMax: u32(8),
    segMax: u32(12),
    geometry: { cylinders: v.getUint16(16, true), heads: v.getUint8(18), sectors: v.getUint8(19) },
    blkSize: u32(20),
    topology: { physicalBlockExp: v.getUint8(24), alignmentOffset: v.getUint8(25), minIoSize: v.getUint16(26, true), optIoSize: u32(28) },
    writeback: v.getUint8(32),
    numQueues: v.getUint16(34, true),
    discard: bytes.length >= VIRTIO_BLK_CONFIG_DISCARD_END ? { maxSectors: u32(36), maxSeg: u32(40), sectorAlignment: u32(44) } : null,
    writeZeroes: bytes.length >= VIRTIO_BLK_CONFIG_WRITE_ZEROES_END ? { maxSectors: u32(48), maxSeg: u32(52), mayUnmap: v.getUint8(56) } : null,
    secureErase: bytes.length >= VIRTIO_BLK_CONFIG_SECURE_ERASE_END ? { maxSectors: u32(60), maxSeg: u32(64), sectorAlignment: u32(68) } : null,
    zoned: bytes.length >= VIRTIO_BLK_CONFIG_ZONED_END
      ? { zoneSectors: u32(72), maxOpenZones: u32(76), maxActiveZones: u32(80), maxAppendSectors: u32(84), writeGranularity: u32(88), model: v.getUint8(92) }
      : null,
  };
}
