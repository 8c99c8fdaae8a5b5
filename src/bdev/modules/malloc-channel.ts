// Per-thread I/O handle of a malloc bdev: maps the bdev's memfd in the calling thread and copies
// between the request's SgList and the mapping. Every I/O completes synchronously; nothing is
// allocated per I/O.
import { readlinkSync } from 'node:fs';
import { BDEV_EINVAL, BDEV_EIO, BDEV_OK, type BdevChannel, type BdevIoWaiter } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { blocksInRange } from '../bdev-geometry.ts';
import type { SgList } from '../../iovec/sg-list.ts';
import { mmapFd, munmap, viewOf } from '../../sys/memory.ts';
import { fdSize } from '../../sys/fd.ts';
import { MALLOC_MEMFD_PREFIX, type MallocChannelSpec } from './malloc.ts';

const EMPTY = new Uint8Array(0);

export class MallocChannel implements BdevChannel {
  readonly name: string;
  readonly blockSize: number;
  numBlocks: number;
  #mem: Uint8Array;
  #addr: bigint;
  #mapLength: number;
  #mappedBlocks: number;

  constructor(spec: MallocChannelSpec) {
    const { fd, blockSize, numBlocks, name, uuid } = spec;
    if (!Number.isInteger(fd) || fd < 0) throw new BdevError('BDEV_INVALID_SPEC', `malloc channel '${name}': bad fd ${fd}`);
    if (!Number.isInteger(blockSize) || blockSize <= 0 || !Number.isSafeInteger(numBlocks) || numBlocks <= 0) {
      throw new BdevError('BDEV_INVALID_SPEC', `malloc channel '${name}': bad geometry ${numBlocks} x ${blockSize}`);
    }
    // fd numbers are reused once closed: make sure this one is still the bdev's memfd.
    let target: string | undefined;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      target = undefined; // no /proc: rely on the size check below
    }
    if (target !== undefined && !target.startsWith(`/memfd:${MALLOC_MEMFD_PREFIX}${uuid}`)) {
      throw new BdevError('BDEV_INVALID_SPEC', `malloc channel '${name}': fd ${fd} is ${target}, not the bdev's memfd`);
    }
    const length = numBlocks * blockSize;
    // Mapping past the end of the file would SIGBUS on access.
    const size = fdSize(fd);
    if (size < length) throw new BdevError('BDEV_INVALID_SPEC', `malloc channel '${name}': memfd holds ${size} bytes, need ${length}`);
    this.name = name;
    this.blockSize = blockSize;
    this.numBlocks = numBlocks;
    this.#mappedBlocks = numBlocks;
    // The whole file: a huge-page memfd is rounded up to whole pages, and a hugetlb mapping can
    // only be unmapped whole pages at a time.
    this.#mapLength = size;
    this.#addr = mmapFd(fd, size);
    this.#mem = new Uint8Array(viewOf(this.#addr, length));
  }

  /** Valid range, and the SgList holds the bytes from sgOffset on. */
  #valid(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number): boolean {
    return (
      blocksInRange(offsetBlocks, numBlocks, this.numBlocks) &&
      Number.isInteger(sgOffset) &&
      sgOffset >= 0 &&
      sgOffset + numBlocks * this.blockSize <= sg.length
    );
  }

  read(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    if (this.#mem === EMPTY) return waiter.bdevIoDone(BDEV_EIO);
    if (!this.#valid(offsetBlocks, numBlocks, sg, sgOffset)) return waiter.bdevIoDone(BDEV_EINVAL);
    const len = numBlocks * this.blockSize;
    sg.copyIn(sgOffset, this.#mem, offsetBlocks * this.blockSize, len);
    waiter.bdevIoDone(BDEV_OK);
  }

  write(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    if (this.#mem === EMPTY) return waiter.bdevIoDone(BDEV_EIO);
    if (!this.#valid(offsetBlocks, numBlocks, sg, sgOffset)) return waiter.bdevIoDone(BDEV_EINVAL);
    const len = numBlocks * this.blockSize;
    sg.copyOut(sgOffset, this.#mem, offsetBlocks * this.blockSize, len);
    waiter.bdevIoDone(BDEV_OK);
  }

  flush(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    if (this.#mem === EMPTY) return waiter.bdevIoDone(BDEV_EIO);
    waiter.bdevIoDone(blocksInRange(offsetBlocks, numBlocks, this.numBlocks) ? BDEV_OK : BDEV_EINVAL);
  }

  unmap(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    this.writeZeroes(offsetBlocks, numBlocks, waiter);
  }

  writeZeroes(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    if (this.#mem === EMPTY) return waiter.bdevIoDone(BDEV_EIO);
    if (!blocksInRange(offsetBlocks, numBlocks, this.numBlocks)) return waiter.bdevIoDone(BDEV_EINVAL);
    const start = offsetBlocks * this.blockSize;
    this.#mem.fill(0, start, start + numBlocks * this.blockSize);
    waiter.bdevIoDone(BDEV_OK);
  }

  poll(): number {
    return 0;
  }

  /** A RAM disk cannot grow past its mapping; a smaller size is honoured. */
  resize(numBlocks: number): void {
    if (!Number.isSafeInteger(numBlocks) || numBlocks < 0) return;
    this.numBlocks = Math.min(numBlocks, this.#mappedBlocks);
  }

  /** Unmaps; later I/O completes with BDEV_EIO. */
  close(): void {
    if (this.#mem === EMPTY) return;
    this.#mem = EMPTY;
    this.numBlocks = 0;
    munmap(this.#addr, this.#mapLength);
  }
}
