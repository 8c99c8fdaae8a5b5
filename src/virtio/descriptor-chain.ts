// One request's buffers as popped from a virtqueue: the head (its id for the used ring) and the
// guest memory it names, split into device-readable and device-writable segment lists.
// Preallocated per request slot and reused: pop() resets it before filling it.
import { SgList } from '../iovec/sg-list.ts';

export class DescriptorChain {
  /** Head descriptor index (the id to complete with); -1 when empty. */
  head = -1;
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
    this.out.reset();
    this.in.reset();
  }
}
