// One request of an NBD channel, reused for the channel's lifetime. A bdev I/O longer than the
// server's payload limit is sent as consecutive parts from the same slot; the cookie on the wire
// carries the slot index and a generation, so a reply can only complete the request it was for.
import type { BdevIoWaiter } from '../bdev.ts';
import type { SgList } from '../../iovec/sg-list.ts';

export const SLOT_FREE = 0;
/** Waiting to be written into the send buffer (first part, next part, or resent after a reconnect). */
export const SLOT_QUEUED = 1;
/** Its current part is on the wire (or in the send buffer): a reply is owed. */
export const SLOT_SENT = 2;

export const OP_READ = 1;
export const OP_WRITE = 2;
export const OP_FLUSH = 3;
export const OP_TRIM = 4;
export const OP_WRITE_ZEROES = 5;
/** Write-zeroes on a server without NBD_CMD_WRITE_ZEROES: written as zero-filled writes. */
export const OP_ZERO_WRITE = 6;

export class NbdSlot {
  readonly index: number;
  /** Bumped at every reuse and resend: the cookie's high word. */
  gen = 0;
  state = SLOT_FREE;
  op = 0;
  waiter: BdevIoWaiter | null = null;
  sg: SgList | null = null;
  sgOffset = 0;
  /** Byte offset on the export and byte length of the whole I/O. */
  byteOffset = 0;
  byteLength = 0;
  /** Bytes of the I/O before the current part, and the current part's length. */
  partOffset = 0;
  partLength = 0;
  /** First error of the current part (a negative bdev status), or 0. */
  status = 0;
  /** Read bytes of the current part delivered by structured chunks. */
  covered = 0;

  constructor(index: number) {
    this.index = index;
  }
}
