// On-disk form of the three bitmaps (used metadata pages, used clusters, used blob ids). Written
// only by a clean unload, read only when the super block says clean: a dirty load rebuilds them.
import { BlobError } from './blob-error.ts';
import { Bitmap } from './bitmap.ts';
import { crc32c } from './crc32c.ts';
import { BS_MASK_HEADER_SIZE, BS_PAGE_SIZE } from './blobstore-layout.ts';
import { hex } from './super-block.ts';

export const MASK_TYPE_OFFSET = 0; // u8
export const MASK_LENGTH_OFFSET = 4; // u32 bits
export const MASK_CRC_OFFSET = 8; // u32 crc32c of header bytes [0, 8) then the mask bytes

function maskCrc(region: Uint8Array, maskBytes: number): number {
  const covered = new Uint8Array(8 + maskBytes);
  covered.set(region.subarray(0, 8));
  covered.set(region.subarray(BS_MASK_HEADER_SIZE, BS_MASK_HEADER_SIZE + maskBytes), 8);
  return crc32c(covered);
}

export function encodeMaskRegion(type: number, bitmap: Bitmap, lenPages: number): Uint8Array {
  const region = new Uint8Array(lenPages * BS_PAGE_SIZE);
  const v = new DataView(region.buffer);
  region[MASK_TYPE_OFFSET] = type;
  v.setUint32(MASK_LENGTH_OFFSET, bitmap.length, true);
  region.set(bitmap.bits, BS_MASK_HEADER_SIZE);
  v.setUint32(MASK_CRC_OFFSET, maskCrc(region, bitmap.bits.length), true);
  return region;
}

export function decodeMaskRegion(region: Uint8Array, type: number, expectedBits: number, what: string): Bitmap {
  const v = new DataView(region.buffer, region.byteOffset, region.length);
  if (region[MASK_TYPE_OFFSET] !== type) {
    throw new BlobError('BAD_METADATA', `${what} mask has type ${region[MASK_TYPE_OFFSET]}, expected ${type}`);
  }
  const bits = v.getUint32(MASK_LENGTH_OFFSET, true);
  if (bits !== expectedBits) throw new BlobError('BAD_METADATA', `${what} mask holds ${bits} bits, layout needs ${expectedBits}`);
  const bytes = Math.ceil(bits / 8);
  const stored = v.getUint32(MASK_CRC_OFFSET, true);
  const actual = maskCrc(region, bytes);
  if (stored !== actual) throw new BlobError('BAD_CHECKSUM', `${what} mask crc32c is ${hex(stored)}, contents give ${hex(actual)}`);
  return new Bitmap(bits, region.subarray(BS_MASK_HEADER_SIZE, BS_MASK_HEADER_SIZE + bytes));
}
