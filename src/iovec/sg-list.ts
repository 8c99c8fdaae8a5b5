// A scatter-gather list over mapped memory: the data buffer of one request, reused across requests.
// Entries reference a region's Uint8Array plus an offset and length, so nothing is allocated per I/O.
import { copyBytes } from './byte-copy.ts';

const EMPTY = new Uint8Array(0);
/** Below this, copy byte by byte: cheaper than the call into memmove for headers and status bytes. */
const SMALL_COPY = 128;

export class SgList {
  readonly capacity: number;
  count = 0;
  /** Total bytes over all entries. */
  length = 0;
  readonly bufs: Uint8Array[];
  readonly offsets: Float64Array;
  readonly lengths: Uint32Array;
  /** Host address of each entry's first byte (for syscalls such as io_uring); 0 when unknown. */
  readonly addrs: Float64Array;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.bufs = new Array<Uint8Array>(capacity).fill(EMPTY);
    this.offsets = new Float64Array(capacity);
    this.lengths = new Uint32Array(capacity);
    this.addrs = new Float64Array(capacity);
  }

  reset(): void {
    for (let i = 0; i < this.count; i++) this.bufs[i] = EMPTY;
    this.count = 0;
    this.length = 0;
  }

  /** Appends buf[offset, offset+len); returns false when the list is full. Bounds are the caller's check. */
  push(buf: Uint8Array, offset: number, len: number, hostAddr = 0): boolean {
    if (this.count >= this.capacity) return false;
    const i = this.count++;
    this.bufs[i] = buf;
    this.offsets[i] = offset;
    this.lengths[i] = len;
    this.addrs[i] = hostAddr;
    this.length += len;
    return true;
  }

  /** Copies up to len bytes starting at byte `from` of the list into dst[dstOffset..]; returns bytes copied. */
  copyOut(from: number, dst: Uint8Array, dstOffset: number, len: number): number {
    let done = 0;
    let skip = from;
    for (let i = 0; i < this.count && done < len; i++) {
      const l = this.lengths[i];
      if (skip >= l) {
        skip -= l;
        continue;
      }
      const n = Math.min(l - skip, len - done);
      const o = this.offsets[i] + skip;
      const b = this.bufs[i];
      if (n <= SMALL_COPY) {
        const d = dstOffset + done;
        for (let k = 0; k < n; k++) dst[d + k] = b[o + k];
      } else copyBytes(b, o, dst, dstOffset + done, n);
      done += n;
      skip = 0;
    }
    return done;
  }

  /** Copies len bytes of src[srcOffset..] into the list starting at byte `to`; returns bytes copied. */
  copyIn(to: number, src: Uint8Array, srcOffset: number, len: number): number {
    let done = 0;
    let skip = to;
    for (let i = 0; i < this.count && done < len; i++) {
      const l = this.lengths[i];
      if (skip >= l) {
        skip -= l;
        continue;
      }
      const n = Math.min(l - skip, len - done);
      const o = this.offsets[i] + skip;
      const b = this.bufs[i];
      if (n <= SMALL_COPY) {
        const sOff = srcOffset + done;
        for (let k = 0; k < n; k++) b[o + k] = src[sOff + k];
      } else copyBytes(src, srcOffset + done, b, o, n);
      done += n;
      skip = 0;
    }
    return done;
  }

  /** Writes `value` into len bytes starting at byte `to`; returns bytes written. */
  fill(to: number, value: number, len: number): number {
    let done = 0;
    let skip = to;
    for (let i = 0; i < this.count && done < len; i++) {
      const l = this.lengths[i];
      if (skip >= l) {
        skip -= l;
        continue;
      }
      const n = Math.min(l - skip, len - done);
      const o = this.offsets[i] + skip;
      this.bufs[i].fill(value, o, o + n);
      done += n;
      skip = 0;
    }
    return done;
  }
}
