// The uring bdev (SPDK's bdev_uring, and bdev_aio under its own name): a regular file or a block
// device. Creation (main thread) opens the path once to learn its size, block size and O_DIRECT
// alignment and to probe hole punching; every reactor then opens its own fd and ring from
// channelSpec() (UringChannel). A file on tmpfs or ramfs is the exception: the bdev keeps its fd
// open and maps the file once (uring-file-map.ts); the channels duplicate the fd (an open of their
// own would break the lease) and copy through views of that mapping while the lease is held.
import type { Bdev, BdevChannelSpec, BdevIoTypes } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { checkBdevName, checkBlockSize, normalizeUuid } from '../bdev-geometry.ts';
import { componentLogger } from '../../log/logger.ts';
import { closeFd } from '../../sys/fd.ts';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from '../../sys/block-io-libc.ts';
import { blockDeviceAttr, blockFileInfo, fallocateSync, firstHole, openBlockFile, probeAlignedRead, type BlockFileInfo } from '../../sys/block-file.ts';
import { FileMapLease } from './uring-file-map.ts';

export const URING_MODULE = 'uring';
export const AIO_MODULE = 'aio';
export const URING_PRODUCT_NAME = 'URING bdev';
export const AIO_PRODUCT_NAME = 'AIO disk';
/** Block size of a regular file when none is given (files have no logical block size). */
export const URING_DEFAULT_FILE_BLOCK_SIZE = 512;

export type UringFlavor = typeof URING_MODULE | typeof AIO_MODULE;

export interface UringBdevOptions {
  name: string;
  /** Path of a regular file or a block device. */
  filename: string;
  /** Bytes; absent or 0: the device's logical block size (512 for a regular file). */
  blockSize?: number;
  readonly?: boolean;
  uuid?: string;
  /** Which SPDK module it stands for: bdev_uring_create (default) or bdev_aio_create. */
  flavor?: UringFlavor;
  /** aio's `fallocate`: unmap and write-zeroes through fallocate(2). Default: true for uring, false for aio (as SPDK). */
  fallocate?: boolean;
  /** Try O_DIRECT (default true); it is dropped, with a log line, when the file system or block size refuses it. */
  direct?: boolean;
  /** A fully allocated file on tmpfs or ramfs is mapped, guarded by a file lease (default true); false: read/write calls only. */
  mmap?: boolean;
  /** Pause between attempts to take the file lease again (ms; tests). */
  leaseRetryMs?: number;
}

/** channelSpec() of a uring bdev: structured-cloneable; each channel opens `filename` itself. */
export interface UringChannelSpec extends BdevChannelSpec {
  module: 'uring';
  filename: string;
  /** What `filename` must still be (device + inode, or block device number): a replaced path is refused. */
  identity: string;
  readonly: boolean;
  direct: boolean;
  /** O_DIRECT: required alignment of each segment's address and length. 1 when buffered. */
  memAlign: number;
  lenAlign: number;
  /** Unmap by punching holes (FALLOC_FL_PUNCH_HOLE). */
  unmap: boolean;
  /** Write-zeroes may try fallocate (ZERO_RANGE, then PUNCH_HOLE) before writing zeroes. */
  fallocate: boolean;
  /** The bdev's own fd, to be duplicated instead of opening `filename`; -1: open it. */
  sharedFd: number;
  /** The file may be mapped while this gate is open (file-map-gate.ts); null: never map it. */
  mapGate: SharedArrayBuffer | null;
  /** Address of the bdev's mapping of the file (process-wide; 0 when none) and its length from offset 0. */
  mapAddr: number;
  mapLength: number;
}

const log = componentLogger('bdev_uring');

interface DirectChoice {
  direct: boolean;
  memAlign: number;
  lenAlign: number;
  why: string;
}

/** Decides O_DIRECT and its alignment: statx's STATX_DIOALIGN when the kernel has it, else conservative guesses, then a real aligned read. */
function chooseDirect(filename: string, info: BlockFileInfo, blockSize: number, readonly: boolean): DirectChoice {
  let memAlign: number;
  let lenAlign: number;
  if (info.dioAlignKnown) {
    if (info.dioOffsetAlign === 0) return { direct: false, memAlign: 1, lenAlign: 1, why: 'the file system does not support O_DIRECT' };
    memAlign = info.dioMemAlign;
    lenAlign = info.dioOffsetAlign;
  } else if (info.kind === 'block') {
    const dma = blockDeviceAttr(info.rdev, 'queue/dma_alignment') ?? blockDeviceAttr(info.rdev, '../queue/dma_alignment');
    lenAlign = info.logicalBlockSize;
    memAlign = dma !== undefined && dma >= 0 ? Math.max(dma + 1, 1) : info.logicalBlockSize;
  } else {
    // Older kernels demand address and length aligned to the device's logical block size, unknown here.
    memAlign = lenAlign = blockSize;
  }
  if (blockSize % lenAlign !== 0) {
    return { direct: false, memAlign: 1, lenAlign: 1, why: `block size ${blockSize} is not a multiple of the O_DIRECT alignment ${lenAlign}` };
  }
  // tmpfs accepts O_DIRECT but still copies through its page cache: only the alignment limits
  // would remain (guest buffers that break them go through a bounce buffer).
  if (info.memoryFs) return { direct: false, memAlign: 1, lenAlign: 1, why: 'the file lives in memory (tmpfs, ramfs or hugetlbfs)' };
  let fd = -1;
  try {
    fd = openBlockFile(filename, { readonly, direct: true });
  } catch (e) {
    return { direct: false, memAlign: 1, lenAlign: 1, why: `open with O_DIRECT failed: ${(e as Error).message}` };
  }
  try {
    const r = probeAlignedRead(fd, blockSize);
    if (r < 0) return { direct: false, memAlign: 1, lenAlign: 1, why: `an aligned O_DIRECT read of ${blockSize} bytes failed (errno ${-r})` };
  } finally {
    closeFd(fd);
  }
  return { direct: true, memAlign, lenAlign, why: '' };
}

/** Can unmap punch holes? Files: try a punch past the end (changes nothing). Block devices: needs write-zeroes with unmap. */
function probeUnmap(fd: number, info: BlockFileInfo, blockSize: number): boolean {
  if (info.kind === 'file') return fallocateSync(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, info.size, blockSize) === 0;
  const wz = blockDeviceAttr(info.rdev, 'queue/write_zeroes_max_bytes') ?? blockDeviceAttr(info.rdev, '../queue/write_zeroes_max_bytes');
  return wz !== undefined && wz > 0;
}

export class UringBdev implements Bdev {
  readonly name: string;
  readonly aliases: string[] = [];
  readonly uuid: string;
  readonly productName: string;
  readonly moduleName: UringFlavor;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly ioTypes: BdevIoTypes;
  /** The page cache or the device may hold written data until a flush (fsync). */
  readonly writeCache = true;
  readonly unmapReadsZero: boolean;
  readonly optimalIoBoundary = 0;
  claimedBy: string | null = null;
  readonly filename: string;
  readonly readonly: boolean;
  /** block_size was given explicitly (SPDK's block_size_override). */
  readonly blockSizeOverride: boolean;
  readonly fallocate: boolean;
  readonly direct: boolean;
  readonly isBlockDevice: boolean;
  readonly physicalBlockSize: number;
  /** Mapping allowed (bdev option `mmap`); whether it happens depends on the file (see `mapped`). */
  readonly mmap: boolean;
  #spec: UringChannelSpec | null;
  readonly #fileMap: FileMapLease | null;
  /** Set when a memory-file-system file was not mapped at all because it was sparse. */
  #sparseReason = '';

  constructor(opts: UringBdevOptions) {
    checkBdevName(opts.name);
    const flavor = opts.flavor ?? URING_MODULE;
    if (flavor !== URING_MODULE && flavor !== AIO_MODULE) throw new BdevError('BDEV_INVALID_PARAM', `unknown file bdev flavor '${String(flavor)}'`);
    if (typeof opts.filename !== 'string' || opts.filename.length === 0 || opts.filename.includes('\0')) {
      throw new BdevError('BDEV_INVALID_PARAM', `filename must be a non-empty path (got ${JSON.stringify(opts.filename)})`);
    }
    const readonly = opts.readonly ?? false;
    const fallocate = opts.fallocate ?? flavor === URING_MODULE;
    const uuid = normalizeUuid(opts.uuid);
    const fd = openBlockFile(opts.filename, { readonly, direct: false });
    let info: BlockFileInfo;
    let unmap = false;
    let blockSize: number;
    let keepFd = false;
    try {
      info = blockFileInfo(fd);
      if (info.kind === 'other') throw new BdevError('BDEV_INVALID_PARAM', `'${opts.filename}' is neither a regular file nor a block device`);
      const detected = info.logicalBlockSize;
      if (opts.blockSize) {
        blockSize = opts.blockSize;
        checkBlockSize(blockSize);
        if ((blockSize & (blockSize - 1)) !== 0) throw new BdevError('BDEV_INVALID_PARAM', `block_size ${blockSize} is not a power of two`);
        if (blockSize < detected) {
          throw new BdevError('BDEV_INVALID_PARAM', `block_size ${blockSize} is smaller than the device's logical block size ${detected}`);
        }
      } else {
        blockSize = detected || URING_DEFAULT_FILE_BLOCK_SIZE;
      }
      if (info.size === 0) throw new BdevError('BDEV_INVALID_PARAM', `'${opts.filename}' is empty`);
      if (info.size % blockSize !== 0) {
        throw new BdevError('BDEV_INVALID_PARAM', `size of '${opts.filename}' (${info.size} bytes) is not a multiple of block size ${blockSize}`);
      }
      if (!Number.isSafeInteger(info.size)) throw new BdevError('BDEV_INVALID_PARAM', `'${opts.filename}' is too large (${info.size} bytes)`);
      unmap = !readonly && fallocate && probeUnmap(fd, info, blockSize);
      // A file with holes at creation is never mapped: its channels keep punching holes on
      // UNMAP (a mapped bdev writes zeroes instead, which would make a thin file thick).
      keepFd = info.kind === 'file' && info.mappableMemoryFs && opts.mmap !== false && firstHole(fd, 0) >= info.size;
    } finally {
      if (!keepFd) closeFd(fd);
    }
    const choice: DirectChoice =
      opts.direct === false ? { direct: false, memAlign: 1, lenAlign: 1, why: 'direct=false' } : chooseDirect(opts.filename, info, blockSize, readonly);
    if (!choice.direct && opts.direct !== false) {
      log.info({ bdev: opts.name, filename: opts.filename, reason: choice.why }, 'O_DIRECT not usable: buffered I/O through the page cache');
    }
    this.name = opts.name;
    this.uuid = uuid;
    this.moduleName = flavor;
    this.productName = flavor === AIO_MODULE ? AIO_PRODUCT_NAME : URING_PRODUCT_NAME;
    this.filename = opts.filename;
    this.readonly = readonly;
    this.blockSizeOverride = !!opts.blockSize;
    this.fallocate = fallocate;
    this.blockSize = blockSize;
    this.numBlocks = info.size / blockSize;
    this.direct = choice.direct;
    this.isBlockDevice = info.kind === 'block';
    this.physicalBlockSize = Math.max(info.physicalBlockSize, blockSize);
    this.unmapReadsZero = unmap;
    this.ioTypes = { read: true, write: !readonly, flush: true, unmap, write_zeroes: !readonly, reset: true };
    this.mmap = opts.mmap !== false;
    const length = this.numBlocks * blockSize;
    try {
      this.#fileMap = keepFd ? new FileMapLease({ name: this.name, fd, identity: info.identity, length, readonly, retryMs: opts.leaseRetryMs }) : null;
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    if (!keepFd && info.kind === 'file' && info.mappableMemoryFs && opts.mmap !== false) {
      this.#sparseReason = 'the file had holes when the bdev was created (a sparse file is never mapped; UNMAP keeps freeing its memory)';
      log.info({ bdev: this.name, reason: this.#sparseReason }, 'file not mapped: reads and writes go through system calls');
    }
    this.#spec = {
      module: 'uring',
      name: this.name,
      blockSize,
      numBlocks: this.numBlocks,
      filename: this.filename,
      identity: info.identity,
      readonly,
      direct: choice.direct,
      memAlign: choice.memAlign,
      lenAlign: choice.lenAlign,
      unmap,
      fallocate,
      sharedFd: keepFd ? fd : -1,
      mapGate: this.#fileMap?.gate.buffer ?? null,
      mapAddr: this.#fileMap !== null ? Number(this.#fileMap.addr) : 0,
      mapLength: length,
    };
  }

  /** The channels copy through a mapping of the file now (false: read/write calls). */
  get mapped(): boolean {
    return this.#fileMap?.mapped ?? false;
  }

  /** Why the file is not mapped now ('' when it is, or when the bdev never maps: see `mmap`). */
  get mapReason(): string {
    return this.#fileMap?.reason ?? this.#sparseReason;
  }

  channelSpec(): UringChannelSpec {
    if (!this.#spec) throw new BdevError('BDEV_NOT_FOUND', `${this.moduleName} bdev '${this.name}' was destroyed`);
    return { ...this.#spec };
  }

  /**
   * As SPDK's dump_info_json: {"uring": {filename}} or {"aio": {filename, block_size_override,
   * readonly, fallocate}}; a file on tmpfs or ramfs adds whether it is mapped now, and if not why.
   */
  driverSpecific(): Record<string, unknown> {
    const info: Record<string, unknown> =
      this.moduleName === AIO_MODULE
        ? { filename: this.filename, block_size_override: this.blockSizeOverride, readonly: this.readonly, fallocate: this.fallocate }
        : { filename: this.filename };
    if (this.#fileMap !== null || this.#sparseReason !== '') {
      info.mapped = this.mapped;
      if (!this.mapped) info.map_reason = this.mapReason;
    }
    return { [this.moduleName]: info };
  }

  /** Each channel owns its fd and ring and closes them itself; a mapped file's lease and fd are let go here. */
  destroy(): void {
    this.#spec = null;
    this.#fileMap?.destroy();
  }
}
