// The null bdev (SPDK's bdev_null): a device of any size with no storage behind it. Reads complete
// without touching the buffer, writes and write-zeroes are discarded; flush and unmap are not
// supported (as SPDK reports). Useful to measure the target's own overhead.
import {
  BDEV_EINVAL,
  BDEV_EIO,
  BDEV_ENOTSUP,
  BDEV_OK,
  type Bdev,
  type BdevChannel,
  type BdevChannelSpec,
  type BdevIoTypes,
  type BdevIoWaiter,
} from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { blocksInRange, checkBdevName, checkBlockSize, checkNumBlocks, checkPhysicalBlockSize, normalizeUuid } from '../bdev-geometry.ts';
import type { SgList } from '../../iovec/sg-list.ts';

export const NULL_MODULE = 'null';
export const NULL_PRODUCT_NAME = 'Null disk';

export interface NullBdevOptions {
  name: string;
  numBlocks: number;
  blockSize: number;
  uuid?: string;
  /** 0 = same as blockSize. */
  physicalBlockSize?: number;
}

export interface NullChannelSpec extends BdevChannelSpec {
  module: 'null';
}

/** As SPDK v23.05 bdev_null_io_type_supported. */
const NULL_IO_TYPES: BdevIoTypes = { read: true, write: true, flush: false, unmap: false, write_zeroes: true, reset: true };

export class NullBdev implements Bdev {
  readonly name: string;
  readonly aliases: string[] = [];
  readonly uuid: string;
  readonly productName = NULL_PRODUCT_NAME;
  readonly moduleName = NULL_MODULE;
  readonly blockSize: number;
  numBlocks: number;
  readonly physicalBlockSize: number;
  readonly ioTypes: BdevIoTypes = { ...NULL_IO_TYPES };
  readonly writeCache = false;
  readonly unmapReadsZero = false;
  readonly optimalIoBoundary = 0;
  claimedBy: string | null = null;

  constructor(opts: NullBdevOptions) {
    checkBdevName(opts.name);
    checkBlockSize(opts.blockSize);
    checkNumBlocks(opts.numBlocks, opts.blockSize);
    this.name = opts.name;
    this.blockSize = opts.blockSize;
    this.numBlocks = opts.numBlocks;
    this.physicalBlockSize = checkPhysicalBlockSize(opts.physicalBlockSize ?? 0, opts.blockSize);
    this.uuid = normalizeUuid(opts.uuid);
  }

  /** bdev_null_resize: a new size in blocks (the registry tells the users). */
  resize(numBlocks: number): void {
    checkNumBlocks(numBlocks, this.blockSize);
    this.numBlocks = numBlocks;
  }

  channelSpec(): NullChannelSpec {
    return { module: NULL_MODULE, name: this.name, blockSize: this.blockSize, numBlocks: this.numBlocks };
  }

  driverSpecific(): Record<string, unknown> {
    return {};
  }

  destroy(): void {}
}

export class NullChannel implements BdevChannel {
  readonly name: string;
  readonly blockSize: number;
  numBlocks: number;
  #closed = false;

  constructor(spec: NullChannelSpec) {
    if (!Number.isInteger(spec.blockSize) || spec.blockSize <= 0 || !Number.isSafeInteger(spec.numBlocks) || spec.numBlocks <= 0) {
      throw new BdevError('BDEV_INVALID_SPEC', `null channel '${spec.name}': bad geometry ${spec.numBlocks} x ${spec.blockSize}`);
    }
    this.name = spec.name;
    this.blockSize = spec.blockSize;
    this.numBlocks = spec.numBlocks;
  }

  #status(offsetBlocks: number, numBlocks: number): number {
    if (this.#closed) return BDEV_EIO;
    return blocksInRange(offsetBlocks, numBlocks, this.numBlocks) ? BDEV_OK : BDEV_EINVAL;
  }

  #dataStatus(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number): number {
    const s = this.#status(offsetBlocks, numBlocks);
    if (s !== BDEV_OK) return s;
    return Number.isInteger(sgOffset) && sgOffset >= 0 && sgOffset + numBlocks * this.blockSize <= sg.length ? BDEV_OK : BDEV_EINVAL;
  }

  read(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    waiter.bdevIoDone(this.#dataStatus(offsetBlocks, numBlocks, sg, sgOffset));
  }

  write(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    waiter.bdevIoDone(this.#dataStatus(offsetBlocks, numBlocks, sg, sgOffset));
  }

  flush(_offsetBlocks: number, _numBlocks: number, waiter: BdevIoWaiter): void {
    waiter.bdevIoDone(this.#closed ? BDEV_EIO : BDEV_ENOTSUP);
  }

  unmap(_offsetBlocks: number, _numBlocks: number, waiter: BdevIoWaiter): void {
    waiter.bdevIoDone(this.#closed ? BDEV_EIO : BDEV_ENOTSUP);
  }

  writeZeroes(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    waiter.bdevIoDone(this.#status(offsetBlocks, numBlocks));
  }

  poll(): number {
    return 0;
  }

  /** Every I/O completes inside its call. */
  inflight(): number {
    return 0;
  }

  resize(numBlocks: number): void {
    if (Number.isSafeInteger(numBlocks) && numBlocks >= 0) this.numBlocks = numBlocks;
  }

  close(): void {
    this.#closed = true;
  }
}
