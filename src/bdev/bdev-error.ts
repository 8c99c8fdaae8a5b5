// Typed errors of the block-device layer (control plane). `code` is the stable identifier
// callers (the RPC layer, tests) switch on; the message says what was wrong.

export type BdevErrorCode =
  | 'BDEV_NOT_FOUND'
  | 'BDEV_EXISTS'
  | 'BDEV_CLAIMED'
  | 'BDEV_NOT_CLAIMED'
  | 'BDEV_WRONG_MODULE'
  | 'BDEV_INVALID_PARAM'
  | 'BDEV_NOT_SUPPORTED'
  | 'BDEV_NO_MEMORY'
  | 'BDEV_INVALID_SPEC'
  | 'BDEV_UNKNOWN_MODULE';

export class BdevError extends Error {
  readonly code: BdevErrorCode;
  constructor(code: BdevErrorCode, message: string) {
    super(message);
    this.name = 'BdevError';
    this.code = code;
  }
}
