// Opening and inspecting the backing store of a file-backed bdev: a regular file or a block
// device. Size (fstat / BLKGETSIZE64), logical and physical block size (BLKSSZGET / BLKPBSZGET),
// O_DIRECT alignment (statx STATX_DIOALIGN), identity (device + inode), whether the file system
// lives in memory (fstatfs), and small synchronous
// probes run once at creation (control plane only).
import { readFileSync } from 'node:fs';
import { EPERM, lastErrno, SysError } from './errno.ts';
import { mmapAnonymous, munmap } from './memory.ts';
import { releaseLeaseOn } from './file-lease.ts';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  BLKGETSIZE64,
  BLKPBSZGET,
  BLKSSZGET,
  blockLibc,
  HUGETLBFS_MAGIC,
  O_CLOEXEC,
  O_DIRECT,
  O_NOATIME,
  O_RDONLY,
  O_RDWR,
  RAMFS_MAGIC,
  S_IFBLK,
  S_IFMT,
  S_IFREG,
  SEEK_HOLE,
  STATX_BTIME,
  STATX_DIOALIGN,
  STATX_INO,
  STATX_MODE,
  STATX_SIZE,
  STATX_SIZE_BYTES,
  STATX_TYPE,
  STATFS_BYTES,
  STX_BTIME_NSEC,
  STX_BTIME_SEC,
  STX_DEV_MAJOR,
  STX_DEV_MINOR,
  STX_DIO_MEM_ALIGN,
  STX_DIO_OFFSET_ALIGN,
  STX_INO,
  STX_MASK,
  STX_MODE,
  STX_RDEV_MAJOR,
  STX_RDEV_MINOR,
  STX_SIZE,
  TMPFS_MAGIC,
} from './block-io-libc.ts';

export type BlockFileKind = 'file' | 'block' | 'other';

export interface BlockFileInfo {
  kind: BlockFileKind;
  /** Bytes. */
  size: number;
  /** Block devices: BLKSSZGET / BLKPBSZGET. Regular files: 0. */
  logicalBlockSize: number;
  physicalBlockSize: number;
  /**
   * Identity, to make sure a path still names the same thing: "dev:ino:birth time" for files (the
   * birth time tells a reused inode number apart, where the file system records it), "b major:minor"
   * for block devices.
   */
  identity: string;
  /** Block devices: "major:minor" (for /sys/dev/block). */
  rdev: string;
  /** O_DIRECT alignment from statx (memory address, file offset/length); 0 when the kernel did not say. */
  dioMemAlign: number;
  dioOffsetAlign: number;
  /** True when statx reported STATX_DIOALIGN (then 0/0 means "no O_DIRECT on this file"). */
  dioAlignKnown: boolean;
  /**
   * The file system keeps its data in memory (tmpfs, ramfs, hugetlbfs): there even an O_DIRECT
   * read or write is a memory copy that never waits for a device.
   */
  memoryFs: boolean;
  /**
   * tmpfs or ramfs: a memory file system whose files map in ordinary pages, so reading and writing
   * a mapping of them is what read and write would copy (hugetlbfs is left out: huge-page-sized
   * mappings only).
   */
  mappableMemoryFs: boolean;
}

/** Opens path read/write (or read-only), with O_DIRECT when asked. Throws SysError (ENOENT, EACCES, EINVAL for O_DIRECT...). */
export function openBlockFile(path: string, opts: { readonly: boolean; direct: boolean }): number {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) throw new SysError('open', 22, `bad path ${JSON.stringify(path)}`);
  const flags = (opts.readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (opts.direct ? O_DIRECT : 0);
  // A lease this thread holds on the file would hold this open back until it timed out.
  const id = pathIdentity(path);
  if (id !== null) releaseLeaseOn(id);
  // O_NOATIME: the target reading its backing store is not an access worth recording, and the
  // atime check costs every read (~3% of a tmpfs read, perf). Only the owner (or CAP_FOWNER) may
  // ask for it: EPERM means open without.
  let fd = blockLibc.open(path, flags | O_NOATIME, 0);
  if (fd < 0 && lastErrno() === EPERM) fd = blockLibc.open(path, flags, 0);
  if (fd < 0) throw new SysError('open', lastErrno(), `${path}${opts.direct ? ' with O_DIRECT' : ''}`);
  return fd;
}

const statxBuf = new Uint8Array(STATX_SIZE_BYTES);
const statxView = new DataView(statxBuf.buffer);
const u64 = new Uint8Array(8);
const u64View = new DataView(u64.buffer);
const i32 = new Int32Array(1);

const statfsBuf = new Uint8Array(STATFS_BYTES);

function fileSystemMagic(fd: number): number {
  if (blockLibc.fstatfs(fd, statfsBuf) < 0) return 0;
  return new DataView(statfsBuf.buffer).getUint32(0, true);
}

const STATX_WANTED = STATX_TYPE | STATX_MODE | STATX_INO | STATX_SIZE | STATX_BTIME | STATX_DIOALIGN;

/** "dev:ino:birth time" of the file statx just described in statxBuf. */
function statxIdentity(): string {
  const got = statxView.getUint32(STX_MASK, true);
  const devMaj = statxView.getUint32(STX_DEV_MAJOR, true);
  const devMin = statxView.getUint32(STX_DEV_MINOR, true);
  const ino = statxView.getBigUint64(STX_INO, true);
  const btime = (got & STATX_BTIME) !== 0 ? `${statxView.getBigInt64(STX_BTIME_SEC, true)}.${statxView.getUint32(STX_BTIME_NSEC, true)}` : '-';
  return `${devMaj}:${devMin}:${ino}:${btime}`;
}

/** The identity blockFileInfo would give the regular file at path (without opening it); null when it is not one or cannot be looked up. */
export function pathIdentity(path: string): string | null {
  statxBuf.fill(0);
  if (blockLibc.statx(AT_FDCWD, path, 0, STATX_WANTED, statxBuf) < 0) return null;
  return (statxView.getUint16(STX_MODE, true) & S_IFMT) === S_IFREG ? statxIdentity() : null;
}

export function blockFileInfo(fd: number): BlockFileInfo {
  statxBuf.fill(0);
  if (blockLibc.statx(fd, '', AT_EMPTY_PATH, STATX_WANTED, statxBuf) < 0) throw new SysError('statx', lastErrno(), `fd ${fd}`);
  const got = statxView.getUint32(STX_MASK, true);
  const mode = statxView.getUint16(STX_MODE, true) & S_IFMT;
  const rdev = `${statxView.getUint32(STX_RDEV_MAJOR, true)}:${statxView.getUint32(STX_RDEV_MINOR, true)}`;
  const dioAlignKnown = (got & STATX_DIOALIGN) !== 0;
  const fsMagic = fileSystemMagic(fd);
  const info: BlockFileInfo = {
    kind: mode === S_IFREG ? 'file' : mode === S_IFBLK ? 'block' : 'other',
    size: Number(statxView.getBigUint64(STX_SIZE, true)),
    logicalBlockSize: 0,
    physicalBlockSize: 0,
    identity: statxIdentity(),
    rdev: '',
    dioMemAlign: dioAlignKnown ? statxView.getUint32(STX_DIO_MEM_ALIGN, true) : 0,
    dioOffsetAlign: dioAlignKnown ? statxView.getUint32(STX_DIO_OFFSET_ALIGN, true) : 0,
    dioAlignKnown,
    memoryFs: fsMagic === TMPFS_MAGIC || fsMagic === RAMFS_MAGIC || fsMagic === HUGETLBFS_MAGIC,
    mappableMemoryFs: fsMagic === TMPFS_MAGIC || fsMagic === RAMFS_MAGIC,
  };
  if (info.kind === 'block') {
    info.identity = `b ${rdev}`;
    info.rdev = rdev;
    if (blockLibc.ioctl(fd, BLKGETSIZE64, u64) < 0) throw new SysError('ioctl(BLKGETSIZE64)', lastErrno(), `fd ${fd}`);
    info.size = Number(u64View.getBigUint64(0, true));
    if (blockLibc.ioctl(fd, BLKSSZGET, i32) < 0) throw new SysError('ioctl(BLKSSZGET)', lastErrno(), `fd ${fd}`);
    info.logicalBlockSize = i32[0];
    info.physicalBlockSize = blockLibc.ioctl(fd, BLKPBSZGET, i32) < 0 ? info.logicalBlockSize : i32[0];
  }
  return info;
}

/** Reads `len` bytes at offset 0 into a page-aligned buffer: 0 when it worked, else -errno. Tells whether O_DIRECT I/O of that size works. */
export function probeAlignedRead(fd: number, len: number): number {
  const size = Math.ceil(len / 4096) * 4096;
  const addr = mmapAnonymous(size);
  try {
    const n = Number(blockLibc.pread(fd, Number(addr), len, 0));
    return n < 0 ? -lastErrno() : 0;
  } finally {
    munmap(addr, size);
  }
}

/** Offset of the first hole at or after `from` (the file's size when none): -errno on failure. */
export function firstHole(fd: number, from: number): number {
  const r = Number(blockLibc.lseek(fd, from, SEEK_HOLE));
  return r < 0 ? -lastErrno() : r;
}

/** fallocate(fd, mode, offset, len): 0 or -errno. Control plane (probes). */
export function fallocateSync(fd: number, mode: number, offset: number, len: number): number {
  return blockLibc.fallocate(fd, mode, offset, len) < 0 ? -lastErrno() : 0;
}

/** A number from /sys/dev/block/<major:minor>/<attr>, or undefined when unreadable. */
export function blockDeviceAttr(rdev: string, attr: string): number | undefined {
  try {
    const v = Number(readFileSync(`/sys/dev/block/${rdev}/${attr}`, 'utf8').trim());
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
