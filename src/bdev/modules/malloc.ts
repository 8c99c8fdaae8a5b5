// The malloc bdev: a RAM disk. Its data lives in a memfd, not in this thread's heap, so every
// reactor thread maps the same pages itself (MallocChannel) from the fd in channelSpec().
// A memfd is sparse: pages cost memory only once written, and read back as zeroes before that.
// Or, when huge pages are free (as SPDK, whose malloc bdevs always live in huge pages), the memfd
// is on 2 MiB pages allocated up front: 4 KiB random I/O over a RAM disk of 4 KiB pages spends most
// of its copy in TLB misses.
import { totalmem } from 'node:os';
import type { Bdev, BdevChannelSpec, BdevIoTypes } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { checkBdevName, checkBlockSize, checkNumBlocks, checkPhysicalBlockSize, normalizeUuid } from '../bdev-geometry.ts';
import { memfdCreate } from '../../sys/memory.ts';
import { closeFd } from '../../sys/fd.ts';
import { fallocateSync } from '../../sys/block-file.ts';
import { errnoName, SysError } from '../../sys/errno.ts';
import { componentLogger } from '../../log/logger.ts';

const log = componentLogger('bdev_malloc');
const HUGE_PAGE = 2 * 1024 * 1024;

/** on: huge pages or fail; auto: huge pages when enough are free, else 4 KiB pages; off: 4 KiB pages. */
export type MallocHugepages = 'on' | 'auto' | 'off';
export const MALLOC_HUGEPAGES_MODES: readonly MallocHugepages[] = ['on', 'auto', 'off'];

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
  /** Default off (tests, libraries); the daemon passes its --malloc-hugepages. */
  hugepages?: MallocHugepages;
}

/** channelSpec() of a malloc bdev: structured-cloneable, opened by openBdevChannel(). */
export interface MallocChannelSpec extends BdevChannelSpec {
  module: 'malloc';
  fd: number;
  uuid: string;
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
  /** True when the data is on 2 MiB huge pages. */
  readonly hugepages: boolean;
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
    const mode = opts.hugepages ?? 'off';
    const huge = mode === 'off' ? -1 : hugeMemfd(MALLOC_MEMFD_PREFIX + this.uuid, bytes);
    if (huge < 0 && mode === 'on') {
      throw new BdevError(
        'BDEV_NO_MEMORY',
        `malloc bdev '${opts.name}': cannot have ${Math.ceil(bytes / HUGE_PAGE)} 2 MiB huge pages (${errnoName(-huge)}; free ones: HugePages_Free in /proc/meminfo)`,
      );
    }
    if (huge >= 0) log.info({ bdev: opts.name, bytes }, 'RAM disk on 2 MiB huge pages');
    else if (mode === 'auto') log.info({ bdev: opts.name, bytes, errno: errnoName(-huge) }, 'not enough free 2 MiB huge pages: RAM disk on 4 KiB pages');
    this.hugepages = huge >= 0;
    this.#fd = huge >= 0 ? huge : memfdCreate(MALLOC_MEMFD_PREFIX + this.uuid, bytes);
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

/**
 * A memfd of bytes rounded up to 2 MiB on huge pages, all allocated now (fallocate): a huge page
 * that cannot be had later would be a SIGBUS on a guest's write, not an error. -errno on failure.
 */
function hugeMemfd(name: string, bytes: number): number {
  let fd: number;
  const size = Math.ceil(bytes / HUGE_PAGE) * HUGE_PAGE;
  try {
    fd = memfdCreate(name, size, true);
  } catch (e) {
    if (e instanceof SysError) return -e.errno;
    throw e;
  }
  const r = fallocateSync(fd, 0, 0, size);
  if (r < 0) {
    closeFd(fd);
    return r;
  }
  return fd;
}
