// The typed error of the virtio-blk driver (its queues, slots, promise API and config parsing).

export type VirtioBlkErrorCode = 'BAD_ARGUMENT' | 'NO_FREE_SLOT' | 'QUEUE_FULL' | 'TIMEOUT' | 'QUEUE_BROKEN' | 'CLOSED' | 'BAD_CONFIG';

export class VirtioBlkError extends Error {
  readonly code: VirtioBlkErrorCode;
  constructor(code: VirtioBlkErrorCode, message: string) {
    super(message);
    this.name = 'VirtioBlkError';
    this.code = code;
  }
}
