// Typed errors of the blobstore. `code` is the stable identifier callers (lvol, RPC, tests)
// switch on; the message says what was wrong and where.

export type BlobErrorCode =
  /** No free cluster left for an allocation. */
  | 'NO_SPACE'
  /** No free metadata page left (the metadata region is full). */
  | 'NO_MD_SPACE'
  | 'BLOB_NOT_FOUND'
  /** Data or size change on a read-only blob (a snapshot, or set read-only). */
  | 'BLOB_READ_ONLY'
  /** A clone was asked of a blob that is not read-only. */
  | 'BLOB_NOT_READ_ONLY'
  /** Delete of a blob that more than one clone depends on. */
  | 'HAS_CLONES'
  /** Delete or unload while handles are open. */
  | 'BLOB_IN_USE'
  /** Use of a handle after close. */
  | 'BLOB_CLOSED'
  /** Decouple of a blob that has no parent. */
  | 'NO_PARENT'
  /** Shrink asked to keep allocated data that lies beyond the new size. */
  | 'WOULD_DROP_DATA'
  | 'XATTR_NOT_FOUND'
  | 'XATTR_TOO_LARGE'
  | 'INVALID_ARGUMENT'
  /** I/O outside the blob or the device, or not aligned to the I/O unit. */
  | 'OUT_OF_RANGE'
  /** Missing or malformed super block (wrong signature, version, layout). */
  | 'BAD_SUPER'
  /** A metadata page, mask or super block failed its crc32c. */
  | 'BAD_CHECKSUM'
  /** Structurally invalid metadata (unknown descriptor, bad lengths, dangling parent, cycle). */
  | 'BAD_METADATA'
  /** Metadata claims the same cluster or page twice. */
  | 'METADATA_CONFLICT'
  | 'BS_TYPE_MISMATCH'
  | 'DEVICE_TOO_SMALL'
  /** Grow past what the cluster mask region reserved at format can describe. */
  | 'CANNOT_GROW'
  /** Operation on a blobstore after unload. */
  | 'UNLOADED';

export class BlobError extends Error {
  readonly code: BlobErrorCode;
  constructor(code: BlobErrorCode, message: string) {
    super(message);
    this.name = 'BlobError';
    this.code = code;
  }
}
