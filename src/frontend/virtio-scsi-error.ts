// The typed error of the virtio-scsi driver (its queues, slots and promise API).

export type VirtioScsiErrorCode = 'BAD_ARGUMENT' | 'NO_FREE_SLOT' | 'QUEUE_FULL' | 'TIMEOUT' | 'QUEUE_BROKEN' | 'CLOSED';

export class VirtioScsiError extends Error {
  readonly code: VirtioScsiErrorCode;
  constructor(code: VirtioScsiErrorCode, message: string) {
    super(message);
    this.name = 'VirtioScsiError';
    this.code = code;
  }
}
