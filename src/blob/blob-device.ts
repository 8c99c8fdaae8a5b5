// The block device a blobstore runs on. Asynchronous and byte-addressed (offsets and lengths are
// multiples of blockSize): the metadata path runs on the control-plane thread, and the lead adapts
// this onto a BdevChannel. A completed write is not assumed durable until a later flush completes.
import { BlobError } from './blob-error.ts';

export interface BlobDevice {
  readonly blockSize: number;
  readonly numBlocks: number;
  /** Reads len bytes at offsetBytes into dst[0, len). */
  read(offsetBytes: number, len: number, dst: Uint8Array): Promise<void>;
  /** Writes all of src at offsetBytes. */
  write(offsetBytes: number, src: Uint8Array): Promise<void>;
  /** Makes every completed write durable. */
  flush(): Promise<void>;
  /** Deallocates a range; later reads of it return zeroes on the devices we use (LBPRZ). */
  unmap(offsetBytes: number, len: number): Promise<void>;
}

/** Throws OUT_OF_RANGE unless [offsetBytes, offsetBytes+len) is block-aligned and inside dev. */
export function checkDeviceRange(dev: BlobDevice, offsetBytes: number, len: number): void {
  const bs = dev.blockSize;
  if (
    !Number.isSafeInteger(offsetBytes) || !Number.isSafeInteger(len) || offsetBytes < 0 || len < 0 ||
    offsetBytes % bs !== 0 || len % bs !== 0 || offsetBytes + len > dev.numBlocks * bs
  ) {
    throw new BlobError(
      'OUT_OF_RANGE',
      `device access [${offsetBytes}, +${len}) is not ${bs}-byte aligned or exceeds ${dev.numBlocks * bs} bytes`,
    );
  }
}
