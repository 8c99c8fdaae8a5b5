// One request's buffers as popped from a virtqueue: where it sits in the ring, the id to complete
// it with, and the guest memory it names, split into device-readable and device-writable segments.
// Preallocated per request slot and reused: pop() resets it before filling it.
import { SgList } from '../iovec/sg-list.ts';

export class DescriptorChain {
  /** Head descriptor index (split: in the descriptor table; packed: the ring slot of its first descriptor); -1 when empty. */
  head = -1;
  /** The id the used ring reports (split: = head; packed: the buffer id of the chain's last descriptor); -1 when empty. */
  id = -1;
  /** Descriptors the chain occupies in the ring (an indirect table counts as 1); packed used positions advance by it. */
  descCount = 0;
  /** Device-readable segments (driver -> device), in chain order. */
  readonly out: SgList;
  /** Device-writable segments (device -> driver), in chain order. */
  readonly in: SgList;

  /** maxSegments bounds each of `out` and `in`; a longer chain is refused with TOO_MANY_SEGMENTS. */
  constructor(maxSegments: number) {
    if (!Number.isInteger(maxSegments) || maxSegments <= 0) throw new RangeError(`maxSegments ${maxSegments} must be a positive integer`);
    this.out = new SgList(maxSegments);
    this.in = new SgList(maxSegments);
  }

  reset(): void {
    this.head = -1;
    this.id = -1;
    this.descCount = 0;
    this.out.reset();
    this.in.reset();
  }
}
