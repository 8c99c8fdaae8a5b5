// Copies between two byte arrays without allocating. TypedArray set(src.subarray(...)) creates a
// view object per copy (~104 bytes, a scavenge every few thousand I/Os on the data path); Node 24's
// Buffer.prototype.copy works on any Uint8Array and ends in a V8 fast call to memmove, with no
// view (measured: 0 bytes per 4 KiB copy, and no slower than set). A koffi memcpy was slower.
import { Buffer } from 'node:buffer';

const bufferCopy = Buffer.prototype.copy;

/**
 * Buffer.prototype.copy (Node 24) takes its offsets modulo 2^32 (the source's always, the
 * target's once the call is optimized: a fast API call with 32-bit arguments): a copy past 4 GiB
 * of a larger array (a mapped file, a guest RAM region of a VM with more than 7 GiB) would touch
 * bytes 4 GiB lower. Such copies go between windows of the arrays that start at multiples of
 * 2 GiB and are under 4 GiB long (every piece of up to 2 GiB fits in one); windows are made once
 * per array and kept, so the copy still allocates nothing.
 */
const WINDOW_STEP = 2 ** 31;
const WINDOW_LENGTH = 2 ** 32 - 1;
const SAFE_END = 2 ** 32 - 1;
const windows = new WeakMap<Uint8Array, Uint8Array[]>();

function windowOf(src: Uint8Array, k: number): Uint8Array {
  let list = windows.get(src);
  if (list === undefined) {
    list = [];
    windows.set(src, list);
  }
  let w = list[k];
  if (w === undefined) {
    const start = k * WINDOW_STEP;
    w = new Uint8Array(src.buffer, src.byteOffset + start, Math.min(WINDOW_LENGTH, src.length - start));
    list[k] = w;
  }
  return w;
}

function copyThroughWindows(src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number, len: number): void {
  let done = 0;
  while (done < len) {
    const s = srcOffset + done;
    const d = dstOffset + done;
    const ks = Math.floor(s / WINDOW_STEP);
    const kd = Math.floor(d / WINDOW_STEP);
    const from = s - ks * WINDOW_STEP;
    const to = d - kd * WINDOW_STEP;
    const n = Math.min(len - done, WINDOW_STEP);
    bufferCopy.call(windowOf(src, ks), windowOf(dst, kd), to, from, from + n);
    done += n;
  }
}

/**
 * Copies src[srcOffset, srcOffset + len) to dst[dstOffset..]. Throws RangeError when either range
 * is outside its array (Buffer.copy would silently copy less).
 */
export function copyBytes(src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number, len: number): void {
  if (!(srcOffset >= 0 && dstOffset >= 0 && len >= 0 && srcOffset + len <= src.length && dstOffset + len <= dst.length)) {
    throw new RangeError(`copyBytes: [${srcOffset}, +${len}) of ${src.length} into [${dstOffset}, +${len}) of ${dst.length}`);
  }
  if (srcOffset + len <= SAFE_END && dstOffset + len <= SAFE_END) bufferCopy.call(src, dst, dstOffset, srcOffset, srcOffset + len);
  else copyThroughWindows(src, srcOffset, dst, dstOffset, len);
}
