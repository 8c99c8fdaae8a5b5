// The static description of a LUN: a plain, structured-cloneable object (it is posted to the
// reactor threads, which build a ScsiLun from it and a BdevChannel).
import type { Bdev } from '../bdev/bdev.ts';
import { ScsiConfigError } from './scsi-errors.ts';

export interface ScsiLunInfo {
  bdevName: string;
  /** The bdev's UUID (8-4-4-4-12 hex): the source of the LUN's serial number and NAA name. */
  uuid: string;
  /** Bdev product name; INQUIRY PRODUCT IDENTIFICATION (truncated/padded to 16). */
  productName: string;
  readOnly: boolean;
  /** Volatile write cache present: WCE default 1 and changeable. */
  writeCache: boolean;
  unmapSupported: boolean;
  /** Unmapped blocks read as zeroes (LBPRZ). */
  unmapReadsZero: boolean;
  /** Optimal I/O boundary in blocks (VPD B0 OPTIMAL TRANSFER LENGTH); 0 = none. */
  optimalIoBoundary: number;
  /** Largest READ/WRITE in blocks (VPD B0 MAXIMUM TRANSFER LENGTH); 0 or absent = no limit. */
  maxTransferBlocks?: number;
  /** Logical blocks per physical block exponent (READ CAPACITY(16)); absent = 0. */
  physicalBlockExponent?: number;
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** Throws ScsiConfigError naming the first bad field. */
export function validateScsiLunInfo(info: ScsiLunInfo): void {
  const bad = (field: string, why: string): never => {
    throw new ScsiConfigError('SCSI_BAD_LUN_INFO', `LUN info field ${field} ${why}`);
  };
  if (typeof info !== 'object' || info === null) bad('(object)', 'is not an object');
  if (typeof info.bdevName !== 'string' || info.bdevName.length === 0) bad('bdevName', 'must be a non-empty string');
  if (typeof info.uuid !== 'string' || !UUID_RE.test(info.uuid)) bad('uuid', `must be a UUID string, got ${JSON.stringify(info.uuid)}`);
  if (typeof info.productName !== 'string') bad('productName', 'must be a string');
  for (const f of ['readOnly', 'writeCache', 'unmapSupported', 'unmapReadsZero'] as const) {
    if (typeof info[f] !== 'boolean') bad(f, 'must be a boolean');
  }
  if (!isU32(info.optimalIoBoundary)) bad('optimalIoBoundary', 'must be an integer 0..2^32-1');
  if (info.maxTransferBlocks !== undefined && !isU32(info.maxTransferBlocks)) bad('maxTransferBlocks', 'must be an integer 0..2^32-1');
  const pbe = info.physicalBlockExponent;
  if (pbe !== undefined && (!Number.isInteger(pbe) || pbe < 0 || pbe > 15)) bad('physicalBlockExponent', 'must be an integer 0..15');
}

/** The LUN description of a bdev (control plane). */
export function scsiLunInfoFromBdev(bdev: Bdev, readOnly = false): ScsiLunInfo {
  const info: ScsiLunInfo = {
    bdevName: bdev.name,
    uuid: bdev.uuid,
    productName: bdev.productName,
    readOnly,
    writeCache: bdev.writeCache,
    unmapSupported: bdev.ioTypes.unmap,
    unmapReadsZero: bdev.ioTypes.unmap && bdev.unmapReadsZero,
    optimalIoBoundary: bdev.optimalIoBoundary,
  };
  validateScsiLunInfo(info);
  return info;
}
