// The malloc bdev: a RAM disk. Its data lives in a memfd, not in this thread's heap, so every
// reactor thread maps the same pages itself (MallocChannel) from the fd in channelSpec().
// The memfd is on huge pages when the pool has room (as SPDK's malloc, whose memory is all huge
// pages): with 4 KiB pages a random 4 KiB I/O costs the reactor a TLB miss, which under nested
// paging (a VM host) made the copy the larger part of the I/O (bdevperf scsi QD32 0.28-0.44M IOPS
// on 4 KiB pages, 0.59-0.67M on huge pages). Otherwise it is a sparse memfd on ordinary pages
// (memory is used once written; unwritten blocks read back as zeroes).
import { totalmem } from 'node:os';
import type { Bdev, BdevChannelSpec, BdevIoTypes } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { checkBdevName, checkBlockSize, checkNumBlocks, checkPhysicalBlockSize, normalizeUuid } from '../bdev-geometry.ts';
import { memfdCreate, mmapFd, munmap } from '../../sys/memory.ts';
import { closeFd } from '../../sys/fd.ts';

export const MALLOC_MODULE = 'malloc';
export const MALLOC_PRODUCT_NAME = 'Malloc disk';
/** Prefix of the memfd's name; a channel checks it to be sure an fd number still means this disk. */
export const MALLOC_MEMFD_PREFIX = 'vhostd-malloc-';

export interface MallocBdevOptions {
  name: string;
  numBlocks: number;
  blockSize: number;
  /** Random when absent. */
  uuid?: string;
  /** 0 = same as blockSize. */
  physicalBlockSize?: number;
  optimalIoBoundary?: number;
}

/** channelSpec() of a malloc bdev: structured-cloneable, opened by openBdevChannel(). */
export interface MallocChannelSpec extends BdevChannelSpec {
  module: 'malloc';
  fd: number;
  uuid: string;
}

/** The default huge page size on x86-64; a pool of another size fails the first step and falls back. */
const HUGE_PAGE = 2 * 1024 * 1024;

/** A memfd of at least `bytes` bytes, on huge pages when they can all be reserved now. */
function createBacking(name: string, bytes: number): { fd: number; hugePages: boolean } {
  const rounded = Math.ceil(bytes / HUGE_PAGE) * HUGE_PAGE;
  let fd = -1;
  try {
    fd = memfdCreate(name, rounded, true);
    // A shared hugetlb mapping reserves the file's pages at mmap, and the reservation stays with
    // the file: a short pool fails here, not as SIGBUS on a reactor's first touch.
    munmap(mmapFd(fd, rounded), rounded);
    return { fd, hugePages: true };
  } catch {
    if (fd >= 0) closeFd(fd);
  }
  return { fd: memfdCreate(name, bytes), hugePages: false };
}

/** As SPDK reports for malloc (v23.05 bdev_malloc_io_type_supported). */
const MALLOC_IO_TYPES: BdevIoTypes = { read: true, write: true, flush: true, unmap: true, write_zeroes: true, reset: true };

export class MallocBdev implements Bdev {
  readonly name: string;
  readonly aliases: string[] = [];
  readonly uuid: string;
  readonly productName = MALLOC_PRODUCT_NAME;
  readonly moduleName = MALLOC_MODULE;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly physicalBlockSize: number;
  readonly ioTypes: BdevIoTypes = { ...MALLOC_IO_TYPES };
  // RAM holds no volatile cache to flush (SPDK sets write_cache; a no-op flush gains nothing).
  readonly writeCache = false;
  readonly unmapReadsZero = true;
  readonly optimalIoBoundary: number;
  claimedBy: string | null = null;
  /** The data is on huge pages (else on ordinary, sparse memfd pages). */
  readonly hugePages: boolean;
  #fd: number;

  constructor(opts: MallocBdevOptions) {
    checkBdevName(opts.name);
    checkBlockSize(opts.blockSize);
    checkNumBlocks(opts.numBlocks, opts.blockSize);
    const boundary = opts.optimalIoBoundary ?? 0;
    if (!Number.isInteger(boundary) || boundary < 0 || boundary > 0xffffffff) {
      throw new BdevError('BDEV_INVALID_PARAM', `optimal_io_boundary ${boundary} is not a 32-bit unsigned integer`);
    }
    const bytes = opts.numBlocks * opts.blockSize;
    // SPDK allocates (and so fails) up front; a sparse memfd would fail later, on a guest write.
    if (bytes > totalmem()) {
      throw new BdevError('BDEV_NO_MEMORY', `malloc bdev '${opts.name}' of ${bytes} bytes exceeds the host's ${totalmem()} bytes of RAM`);
    }
    this.name = opts.name;
    this.blockSize = opts.blockSize;
    this.numBlocks = opts.numBlocks;
    this.physicalBlockSize = checkPhysicalBlockSize(opts.physicalBlockSize ?? 0, opts.blockSize);
    this.optimalIoBoundary = boundary;
    this.uuid = normalizeUuid(opts.uuid);
    const backing = createBacking(MALLOC_MEMFD_PREFIX + this.uuid, bytes);
    this.#fd = backing.fd;
    this.hugePages = backing.hugePages;
  }

  /** The memfd holding the data (-1 once destroyed). */
  get fd(): number {
    return this.#fd;
  }

  channelSpec(): MallocChannelSpec {
    if (this.#fd < 0) throw new BdevError('BDEV_NOT_FOUND', `malloc bdev '${this.name}' was destroyed`);
    return { module: MALLOC_MODULE, name: this.name, blockSize: this.blockSize, numBlocks: this.numBlocks, fd: this.#fd, uuid: this.uuid };
  }

  driverSpecific(): Record<string, unknown> {
    return {};
  }

  /** Closes the memfd. Open channels keep their own mappings, which outlive the fd safely. */
  destroy(): void {
    closeFd(this.#fd);
    this.#fd = -1;
  }
}
