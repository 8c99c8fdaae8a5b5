// The virtio-blk config space (struct virtio_blk_config), as GET_CONFIG returns it.
import {
  BLK_MAX_DISCARD_SECTORS,
  BLK_MAX_DISCARD_SEG,
  BLK_SEG_MAX,
  BLK_SIZE_MAX,
  VIRTIO_BLK_SECTOR_SIZE,
} from '../devices/virtio-blk/virtio-blk-constants.ts';

/** Bytes through write_zeroes_may_unmap (56) plus padding: 60. QEMU asks for 57 (36 without discard fields). */
export const BLK_CONFIG_SIZE = 60;
export const BLK_CONFIG_WRITEBACK_OFFSET = 32;

export interface BlkGeometry {
  blockSize: number;
  numBlocks: number;
  /** log2(physical block / logical block). */
  physicalBlockExponent: number;
  optimalIoBlocks: number;
  writeback: boolean;
  numQueues: number;
  discard: boolean;
}

export function blkConfigSpace(g: BlkGeometry): Uint8Array {
  const b = new Uint8Array(BLK_CONFIG_SIZE);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(g.numBlocks) * BigInt(g.blockSize / VIRTIO_BLK_SECTOR_SIZE), true); // capacity (512-byte sectors)
  v.setUint32(8, BLK_SIZE_MAX, true);
  v.setUint32(12, BLK_SEG_MAX, true);
  // geometry (16..19) stays 0: no CHS for a virtual disk
  v.setUint32(20, g.blockSize, true);
  b[24] = g.physicalBlockExponent;
  b[25] = 0; // alignment_offset
  v.setUint16(26, 1, true); // min_io_size (logical blocks)
  v.setUint32(28, g.optimalIoBlocks, true); // opt_io_size (logical blocks)
  b[BLK_CONFIG_WRITEBACK_OFFSET] = g.writeback ? 1 : 0;
  v.setUint16(34, g.numQueues, true);
  const sectorsPerBlock = g.blockSize / VIRTIO_BLK_SECTOR_SIZE;
  // Limits must be whole blocks.
  const maxSectors = BLK_MAX_DISCARD_SECTORS - (BLK_MAX_DISCARD_SECTORS % sectorsPerBlock);
  if (g.discard) {
    v.setUint32(36, maxSectors, true);
    v.setUint32(40, BLK_MAX_DISCARD_SEG, true);
    v.setUint32(44, sectorsPerBlock, true);
  }
  v.setUint32(48, maxSectors, true);
  v.setUint32(52, BLK_MAX_DISCARD_SEG, true);
  b[56] = g.discard ? 1 : 0; // write_zeroes_may_unmap
  return b;
}
