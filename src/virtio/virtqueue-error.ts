// The one error a virtqueue reports: a guest (or a memory-table change) broke the ring. The code is
// the stable identifier; the message names the queue-relative index and the offending values.

export type VirtqueueErrorCode =
  | 'BAD_QUEUE_SIZE'
  | 'RING_MISALIGNED'
  | 'RING_NOT_MAPPED'
  | 'BAD_LAST_AVAIL_IDX'
  | 'AVAIL_IDX_JUMP'
  | 'HEAD_OUT_OF_RANGE'
  | 'NEXT_OUT_OF_RANGE'
  | 'DESC_LOOP'
  | 'INDIRECT_BAD_LENGTH'
  | 'INDIRECT_NESTED'
  | 'INDIRECT_WITH_NEXT'
  | 'INDIRECT_NOT_NEGOTIATED'
  | 'ADDRESS_NOT_MAPPED'
  | 'READABLE_AFTER_WRITABLE'
  | 'CHAIN_TOO_LONG'
  | 'TOO_MANY_SEGMENTS'
  | 'BAD_INFLIGHT_REGION';

export class VirtqueueError extends Error {
  readonly code: VirtqueueErrorCode;
  constructor(code: VirtqueueErrorCode, message: string) {
    super(message);
    this.name = 'VirtqueueError';
    this.code = code;
  }
}
