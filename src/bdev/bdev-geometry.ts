// Validation of the parameters every bdev module shares: block size, block count, UUID.
// The rules follow SPDK v23.05 (block sizes are multiples of 512), with an upper bound of
// 64 KiB because SCSI/virtio-blk initiators do not handle larger logical blocks.
import { BdevError } from './bdev-error.ts';

export const BDEV_MIN_BLOCK_SIZE = 512;
export const BDEV_MAX_BLOCK_SIZE = 65536;
export const BDEV_MAX_NAME_LENGTH = 255;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

export function checkBdevName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new BdevError('BDEV_INVALID_PARAM', 'bdev name must not be an empty string');
  }
  if (name.length > BDEV_MAX_NAME_LENGTH) {
    throw new BdevError('BDEV_INVALID_PARAM', `bdev name is ${name.length} characters long (max ${BDEV_MAX_NAME_LENGTH})`);
  }
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new BdevError('BDEV_INVALID_PARAM', 'bdev name must not contain control characters');
  }
}

export function checkBlockSize(blockSize: number, what = 'block_size'): void {
  if (!Number.isInteger(blockSize) || blockSize < BDEV_MIN_BLOCK_SIZE || blockSize > BDEV_MAX_BLOCK_SIZE || blockSize % 512 !== 0) {
    throw new BdevError(
      'BDEV_INVALID_PARAM',
      `${what} ${blockSize} is not a multiple of 512 between ${BDEV_MIN_BLOCK_SIZE} and ${BDEV_MAX_BLOCK_SIZE}`,
    );
  }
}

/** A physical block size of 0 means "same as the logical block size" (SPDK). */
export function checkPhysicalBlockSize(physicalBlockSize: number, blockSize: number): number {
  if (physicalBlockSize === 0) return blockSize;
  checkBlockSize(physicalBlockSize, 'physical_block_size');
  if (physicalBlockSize < blockSize || physicalBlockSize % blockSize !== 0) {
    throw new BdevError('BDEV_INVALID_PARAM', `physical_block_size ${physicalBlockSize} is not a multiple of block_size ${blockSize}`);
  }
  return physicalBlockSize;
}

export function checkNumBlocks(numBlocks: number, blockSize: number): void {
  if (!Number.isSafeInteger(numBlocks) || numBlocks <= 0) {
    throw new BdevError('BDEV_INVALID_PARAM', `num_blocks must be a positive integer (got ${numBlocks})`);
  }
  if (!Number.isSafeInteger(numBlocks * blockSize)) {
    throw new BdevError('BDEV_INVALID_PARAM', `num_blocks ${numBlocks} x block_size ${blockSize} is too large`);
  }
}

/** Returns the UUID in SPDK's lower-case form; a random one when none (or the null UUID) is given, as SPDK. */
export function normalizeUuid(uuid: string | undefined): string {
  if (uuid === undefined) return crypto.randomUUID();
  if (!isUuid(uuid)) throw new BdevError('BDEV_INVALID_PARAM', `uuid '${uuid}' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
  if (/^[0-]+$/.test(uuid)) return crypto.randomUUID();
  return uuid.toLowerCase();
}

/** Bounds check shared by channels: integers, no overflow, within the device. */
export function blocksInRange(offsetBlocks: number, numBlocks: number, deviceBlocks: number): boolean {
  return (
    Number.isInteger(offsetBlocks) &&
    Number.isInteger(numBlocks) &&
    offsetBlocks >= 0 &&
    numBlocks >= 0 &&
    offsetBlocks <= deviceBlocks &&
    numBlocks <= deviceBlocks - offsetBlocks
  );
}
