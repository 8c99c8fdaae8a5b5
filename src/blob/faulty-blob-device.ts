// Power-loss simulation for the crash harness: applies the first `writeLimit` writes (unmaps count
// as writes) and silently drops every later one, so the inner device ends up holding exactly a
// prefix of the write stream, as after a crash. Optionally the first dropped write is torn: only
// its first `tearBlocks` blocks reach the device. Reads and flushes pass through.
import { BlobError } from './blob-error.ts';
import { checkDeviceRange, type BlobDevice } from './blob-device.ts';

export interface FaultOptions {
  /** Writes applied before the "crash"; Infinity never crashes (counting runs). */
  writeLimit: number;
  /** Blocks of the first dropped write that still land; 0 drops it whole. */
  tearBlocks?: number;
}

export class FaultyBlobDevice implements BlobDevice {
  readonly inner: BlobDevice;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly writeLimit: number;
  readonly tearBlocks: number;
  /** Writes and unmaps issued so far (applied or not). */
  writesIssued = 0;
  /** True once a write has been dropped. */
  crashed = false;

  constructor(inner: BlobDevice, opts: FaultOptions) {
    if (!(opts.writeLimit >= 0)) throw new BlobError('INVALID_ARGUMENT', `write limit ${opts.writeLimit} is negative`);
    this.inner = inner;
    this.blockSize = inner.blockSize;
    this.numBlocks = inner.numBlocks;
    this.writeLimit = opts.writeLimit;
    this.tearBlocks = opts.tearBlocks ?? 0;
  }

  read(offsetBytes: number, len: number, dst: Uint8Array): Promise<void> {
    return this.inner.read(offsetBytes, len, dst);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  async write(offsetBytes: number, src: Uint8Array): Promise<void> {
    checkDeviceRange(this, offsetBytes, src.length);
    const n = ++this.writesIssued;
    if (n <= this.writeLimit) return this.inner.write(offsetBytes, src);
    if (n === this.writeLimit + 1) {
      this.crashed = true;
      const keep = Math.min(this.tearBlocks, src.length / this.blockSize - 1) * this.blockSize;
      if (keep > 0) await this.inner.write(offsetBytes, src.subarray(0, keep));
    }
  }

  async unmap(offsetBytes: number, len: number): Promise<void> {
    checkDeviceRange(this, offsetBytes, len);
    const n = ++this.writesIssued;
    if (n <= this.writeLimit) return this.inner.unmap(offsetBytes, len);
    this.crashed = true;
  }
}
