// Inflight I/O tracking for one split virtqueue (vhost-user INFLIGHT_SHMFD): a record in memory the
// front-end keeps across a back-end crash, so a restarted back-end can complete exactly the
// requests the crashed one had taken from the avail ring and not yet put in the used ring.
//
// Layout (the back-end's choice; QEMU only keeps the fd and zeroes it on a device reset; this is
// libvhost-user's, so a region written by one can be read by the other):
//   header, 16 bytes: features u64, version u16 (0 = not initialised), desc_num u16,
//                     last_batch_head u16 (unused here), used_idx u16 (used.idx the flags match)
//   desc[desc_num], 16 bytes each: inflight u8, padding 5, next u16 (unused), counter u64
// A head is marked (counter, inflight = 1) when it is popped. After used.idx is published the
// heads of the used elements published are cleared and used_idx set. A crash between the two
// leaves used_idx behind used.idx: recovery clears the heads of the used ring entries in between
// (they are in guest memory, which the driver never writes), instead of keeping a batch list.
import { VirtqueueError } from './virtqueue-error.ts';

const HEADER_BYTES = 16;
const DESC_BYTES = 16;
/** Each queue's record starts on a cache line of its own. */
const QUEUE_ALIGN = 64;
const VERSION = 1;
/** u16 indexes of the header fields. */
const H_VERSION = 4;
const H_DESC_NUM = 5;
const H_USED_IDX = 7;

/** Bytes of one queue's record for a queue of `queueSize` entries. */
export function inflightQueueBytes(queueSize: number): number {
  return Math.ceil((HEADER_BYTES + DESC_BYTES * queueSize) / QUEUE_ALIGN) * QUEUE_ALIGN;
}

/** What recovery found: heads to serve again (oldest first) and where the avail ring resumes. */
export interface InflightRecovery {
  resubmit: Uint16Array;
  lastAvailIdx: number;
}

export class SplitInflightLog {
  readonly size: number;
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  /** recover() found a record of another ring and started over. */
  discarded = false;
  /** recover() read a record of this ring (a restart, or a start after a stop): not a fresh one. */
  resumed = false;
  /** Order in which heads were popped; the next value to store. */
  private counter = 1;

  /** `bytes`: this queue's record (inflightQueueBytes(size) bytes, 8-byte aligned). */
  constructor(bytes: Uint8Array, size: number) {
    if (bytes.byteLength < inflightQueueBytes(size) || bytes.byteOffset % 8 !== 0) {
      throw new VirtqueueError('BAD_INFLIGHT_REGION', `inflight record of ${bytes.byteLength} bytes at offset ${bytes.byteOffset} does not hold a queue of ${size}`);
    }
    this.size = size;
    this.u8 = bytes;
    this.u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 1);
    this.u32 = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  }

  /**
   * Reads the record against the used ring as the guest sees it: `usedIdx`, and the ring's words
   * `used32` (element i's id at used32[1 + 2 * (i & mask)]). A fresh record (version 0), or one
   * that cannot belong to this ring (`discarded` then), is initialised: nothing to resubmit and the
   * ring resumes at `freshLastAvailIdx` (SET_VRING_BASE).
   */
  recover(usedIdx: number, used32: Uint32Array, mask: number, freshLastAvailIdx: number): InflightRecovery {
    const u16 = this.u16;
    // Published before the crash, not yet cleared.
    const behind = (usedIdx - u16[H_USED_IDX]) & 0xffff;
    if (u16[H_VERSION] !== VERSION || u16[H_DESC_NUM] !== this.size || behind > this.size) {
      // Version 0: a fresh region. Otherwise a record that cannot belong to this ring (another queue
      // size, or a used ring that moved on without it: a front-end that kept the region over a
      // device reset, or a guest that wrote used.idx itself): start over from SET_VRING_BASE.
      this.discarded = u16[H_VERSION] !== 0;
      this.u8.fill(0, 0, HEADER_BYTES + DESC_BYTES * this.size);
      u16[H_DESC_NUM] = this.size;
      u16[H_USED_IDX] = usedIdx;
      u16[H_VERSION] = VERSION;
      return { resubmit: new Uint16Array(0), lastAvailIdx: freshLastAvailIdx };
    }
    this.resumed = true;
    this.published(u16[H_USED_IDX], usedIdx, used32, mask);
    const heads: number[] = [];
    let maxCounter = 0;
    for (let h = 0; h < this.size; h++) {
      if (this.u8[HEADER_BYTES + DESC_BYTES * h] === 0) continue;
      heads.push(h);
      maxCounter = Math.max(maxCounter, this.counterOf(h));
    }
    heads.sort((a, b) => this.counterOf(a) - this.counterOf(b));
    this.counter = maxCounter + 1;
    // Every head popped before the crash is either in the used ring or still marked.
    return { resubmit: Uint16Array.from(heads), lastAvailIdx: (usedIdx + heads.length) & 0xffff };
  }

  /** A head was taken from the avail ring. */
  popped(head: number): void {
    const w = (HEADER_BYTES + DESC_BYTES * head + 8) >>> 2;
    const c = this.counter++;
    this.u32[w] = c >>> 0;
    this.u32[w + 1] = Math.floor(c / 0x100000000);
    this.u8[HEADER_BYTES + DESC_BYTES * head] = 1;
  }

  /** used.idx moved from `from` to `to` (published): clears the heads of those elements. */
  published(from: number, to: number, used32: Uint32Array, mask: number): void {
    for (let i = from; i !== to; i = (i + 1) & 0xffff) {
      const id = used32[1 + ((i & mask) << 1)];
      if (id < this.size) this.u8[HEADER_BYTES + DESC_BYTES * id] = 0;
    }
    this.u16[H_USED_IDX] = to;
  }

  /** Heads marked in flight (for tests and stats). */
  inflightHeads(): number[] {
    const out: number[] = [];
    for (let h = 0; h < this.size; h++) if (this.u8[HEADER_BYTES + DESC_BYTES * h] !== 0) out.push(h);
    return out;
  }

  private counterOf(head: number): number {
    const w = (HEADER_BYTES + DESC_BYTES * head + 8) >>> 2;
    return this.u32[w] + this.u32[w + 1] * 0x100000000;
  }
}
