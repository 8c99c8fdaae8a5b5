// Typed errors of the logical-volume layer. `code` is stable (the RPC layer maps it to an errno);
// the message names the lvol store or lvol and says what was wrong.

export type LvolErrorCode =
  | 'LVOL_STORE_NOT_FOUND'
  | 'LVOL_STORE_EXISTS'
  | 'LVOL_NOT_FOUND'
  /** Name already used by another lvol of the same store. */
  | 'LVOL_NAME_TAKEN'
  | 'LVOL_INVALID_PARAM'
  /** Not enough free clusters. */
  | 'LVOL_NO_SPACE'
  /** A snapshot with more than one clone cannot be deleted. */
  | 'LVOL_HAS_CLONES'
  /** Claimed by a vhost controller (or another module). */
  | 'LVOL_IN_USE'
  | 'LVOL_READ_ONLY'
  | 'LVOL_NOT_READ_ONLY'
  | 'LVOL_NO_PARENT'
  /** Shrink would drop allocated data. */
  | 'LVOL_WOULD_DROP_DATA'
  | 'LVOL_NOT_SUPPORTED'
  | 'LVOL_IO_ERROR'
  /** I/O on the lvol did not drain in time for a snapshot, resize or delete. */
  | 'LVOL_BUSY';

export class LvolError extends Error {
  readonly code: LvolErrorCode;
  constructor(code: LvolErrorCode, message: string) {
    super(message);
    this.name = 'LvolError';
    this.code = code;
  }
}
