// Errors about the guest memory table: a region that cannot be used as given, or a mapping failure.

export type GuestMemoryErrorCode =
  | 'REGION_BAD_FIELD'
  | 'REGION_EMPTY'
  | 'REGION_OVERFLOW'
  | 'REGION_OVERLAP'
  | 'REGION_SIZE_MISMATCH'
  | 'REGION_BEYOND_FILE'
  | 'MAP_FAILED';

export class GuestMemoryError extends Error {
  readonly code: GuestMemoryErrorCode;
  constructor(code: GuestMemoryErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'GuestMemoryError';
    this.code = code;
  }
}
