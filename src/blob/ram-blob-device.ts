// A BlobDevice in memory, for tests and the crash harness. Unmapped ranges read back as zeroes.
import { BlobError } from './blob-error.ts';
import { checkDeviceRange, type BlobDevice } from './blob-device.ts';

export class RamBlobDevice implements BlobDevice {
  readonly blockSize: number;
  readonly numBlocks: number;
  /** The device contents; tests corrupt or copy it directly. */
  readonly bytes: Uint8Array;
  reads = 0;
  writes = 0;
  flushes = 0;
  unmaps = 0;

  constructor(blockSize: number, numBlocks: number, contents?: Uint8Array) {
    if (!Number.isInteger(blockSize) || blockSize < 512 || (blockSize & (blockSize - 1)) !== 0) {
      throw new BlobError('INVALID_ARGUMENT', `block size ${blockSize} is not a power of two >= 512`);
    }
    if (!Number.isSafeInteger(numBlocks) || numBlocks <= 0) {
      throw new BlobError('INVALID_ARGUMENT', `block count ${numBlocks} is not a positive integer`);
    }
    this.blockSize = blockSize;
    this.numBlocks = numBlocks;
    if (contents && contents.length !== blockSize * numBlocks) {
      throw new BlobError('INVALID_ARGUMENT', `contents are ${contents.length} bytes, device is ${blockSize * numBlocks}`);
    }
    this.bytes = contents ? contents.slice() : new Uint8Array(blockSize * numBlocks);
  }

  async read(offsetBytes: number, len: number, dst: Uint8Array): Promise<void> {
    checkDeviceRange(this, offsetBytes, len);
    if (dst.length < len) throw new BlobError('OUT_OF_RANGE', `read of ${len} bytes into a ${dst.length}-byte buffer`);
    this.reads++;
    dst.set(this.bytes.subarray(offsetBytes, offsetBytes + len));
  }

  async write(offsetBytes: number, src: Uint8Array): Promise<void> {
    checkDeviceRange(this, offsetBytes, src.length);
    this.writes++;
    this.bytes.set(src, offsetBytes);
  }

  async flush(): Promise<void> {
    this.flushes++;
  }

  async unmap(offsetBytes: number, len: number): Promise<void> {
    checkDeviceRange(this, offsetBytes, len);
    this.unmaps++;
    this.bytes.fill(0, offsetBytes, offsetBytes + len);
  }
}
