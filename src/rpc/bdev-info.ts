// bdev_get_bdevs' description of one bdev, field for field as SPDK v23.05 (rpc_dump_bdev_info).
import type { Bdev } from '../bdev/bdev.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';

export interface BdevInfo {
  name: string;
  aliases: string[];
  product_name: string;
  block_size: number;
  num_blocks: number;
  uuid: string;
  assigned_rate_limits: { rw_ios_per_sec: number; rw_mbytes_per_sec: number; r_mbytes_per_sec: number; w_mbytes_per_sec: number };
  claimed: boolean;
  claim_type?: string;
  zoned: boolean;
  supported_io_types: Record<string, boolean>;
  driver_specific: Record<string, unknown>;
}

export function bdevInfo(bdev: Bdev, registry: BdevRegistry): BdevInfo {
  const info: BdevInfo = {
    name: bdev.name,
    aliases: registry.aliasesOf(bdev),
    product_name: bdev.productName,
    block_size: bdev.blockSize,
    num_blocks: bdev.numBlocks,
    uuid: bdev.uuid,
    // No QoS yet: every limit is 0 (unlimited), as SPDK reports an unlimited bdev.
    assigned_rate_limits: { rw_ios_per_sec: 0, rw_mbytes_per_sec: 0, r_mbytes_per_sec: 0, w_mbytes_per_sec: 0 },
    claimed: bdev.claimedBy !== null,
    zoned: false,
    supported_io_types: {
      read: bdev.ioTypes.read,
      write: bdev.ioTypes.write,
      unmap: bdev.ioTypes.unmap,
      write_zeroes: bdev.ioTypes.write_zeroes,
      flush: bdev.ioTypes.flush,
      reset: bdev.ioTypes.reset,
      compare: false,
      compare_and_write: false,
      abort: false,
      nvme_admin: false,
      nvme_io: false,
    },
    driver_specific: bdev.driverSpecific(),
  };
  if (info.claimed) {
    // Insert claim_type right after claimed, where SPDK writes it.
    const { zoned, supported_io_types, driver_specific, ...head } = info;
    return { ...head, claim_type: 'exclusive_write', zoned, supported_io_types, driver_specific };
  }
  return info;
}
