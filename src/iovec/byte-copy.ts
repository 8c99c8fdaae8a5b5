// Copies between two byte arrays without allocating. TypedArray set(src.subarray(...)) creates a
// view object per copy (~104 bytes, a scavenge every few thousand I/Os on the data path); Node 24's
// Buffer.prototype.copy works on any Uint8Array and ends in a V8 fast call to memmove, with no
// view (measured: 0 bytes per 4 KiB copy, and no slower than set). A koffi memcpy was slower.
import { Buffer } from 'node:buffer';

const bufferCopy = Buffer.prototype.copy;

/**
 * Copies src[srcOffset, srcOffset + len) to dst[dstOffset..]. Throws RangeError when either range
 * is outside its array (Buffer.copy would silently copy less).
 */
export function copyBytes(src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number, len: number): void {
  if (!(srcOffset >= 0 && dstOffset >= 0 && len >= 0 && srcOffset + len <= src.length && dstOffset + len <= dst.length)) {
    throw new RangeError(`copyBytes: [${srcOffset}, +${len}) of ${src.length} into [${dstOffset}, +${len}) of ${dst.length}`);
  }
  bufferCopy.call(src, dst, dstOffset, srcOffset, srcOffset + len);
}
