// One command slot of an NVMe/TCP I/O queue, reused for the channel's lifetime; its index is the
// command identifier on the wire. A bdev I/O longer than the controller's transfer limit is sent
// as consecutive parts from the same slot.
import type { BdevIoWaiter } from '../bdev.ts';
import type { SgList } from '../../iovec/sg-list.ts';

export const SLOT_FREE = 0;
/** Waiting to go out as a command capsule (new, next part, or resent after a reconnect). */
export const SLOT_QUEUED = 1;
/** Its command is on the wire: a completion is owed. */
export const SLOT_SENT = 2;

export const OP_READ = 1;
export const OP_WRITE = 2;
export const OP_FLUSH = 3;
export const OP_UNMAP = 4;
export const OP_WRITE_ZEROES = 5;

export class NvmeSlot {
  readonly index: number;
  state = SLOT_FREE;
  op = 0;
  waiter: BdevIoWaiter | null = null;
  sg: SgList | null = null;
  sgOffset = 0;
  /** Of the whole I/O, in blocks. */
  lba = 0;
  blocks = 0;
  /** Blocks before the current part, and the current part's blocks. */
  partLba = 0;
  partBlocks = 0;
  /** Bytes of data the current command moves (0 for flush, unmap, write zeroes). */
  dataBytes = 0;
  /** Read bytes received by C2HData for the current command. */
  received = 0;
  /** Outstanding R2T: transfer tag, next offset, bytes left to send (0 = none). */
  ttag = 0;
  r2tOffset = 0;
  r2tLeft = 0;
  /** Resends after a retryable completion status. */
  retries = 0;

  constructor(index: number) {
    this.index = index;
  }
}
