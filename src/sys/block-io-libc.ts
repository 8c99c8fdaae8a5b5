// libc entry points for block I/O through koffi: open/statx/ioctl for files and block devices,
// positional and vectored I/O for the thread-pool engine, and the raw io_uring syscalls (glibc has
// no wrappers for them). Only src/sys/ imports this file.
import koffi from 'koffi';
import { __NR_io_uring_enter, __NR_io_uring_register, __NR_io_uring_setup } from './io-uring-abi.ts';

const libc = koffi.load('libc.so.6');

// syscall() is variadic; fixed-arity aliases are sound on x86-64, where glibc's syscall() only
// moves integer registers and never reads %al (the vector-register count of a variadic call).
const syscall3 = libc.func('syscall', 'long', ['long', 'uint32_t', 'void *']);
const syscall5 = libc.func('syscall', 'long', ['long', 'uint32_t', 'uint32_t', 'void *', 'uint32_t']);
const syscall7 = libc.func('syscall', 'long', ['long', 'uint32_t', 'uint32_t', 'uint32_t', 'uint32_t', 'void *', 'size_t']);

export const blockLibc = {
  open: libc.func('int open(const char *, int, int)'),
  statx: libc.func('int statx(int, const char *, int, unsigned int, void *)'),
  /** ioctl is variadic too; its third argument is always a pointer here. */
  ioctl: libc.func('int ioctl(int, unsigned long, void *)'),
  pread: libc.func('int64_t pread(int, uintptr_t, size_t, int64_t)'),
  preadv: libc.func('int64_t preadv(int, uintptr_t, int, int64_t)'),
  pwritev: libc.func('int64_t pwritev(int, uintptr_t, int, int64_t)'),
  // The iovec array as a typed array over native memory (see IoVectorTable.iovView): no per-call number.
  preadvView: libc.func('preadv', 'int64_t', ['int', 'void *', 'int', 'int64_t']),
  pwritevView: libc.func('pwritev', 'int64_t', ['int', 'void *', 'int', 'int64_t']),
  preadv2View: libc.func('preadv2', 'int64_t', ['int', 'void *', 'int', 'int64_t', 'int']),
  pwritev2View: libc.func('pwritev2', 'int64_t', ['int', 'void *', 'int', 'int64_t', 'int']),
  fstatfs: libc.func('int fstatfs(int, void *)'),
  fsync: libc.func('int fsync(int)'),
  fallocate: libc.func('int fallocate(int, int, int64_t, int64_t)'),
  lseek: libc.func('int64_t lseek(int, int64_t, int)'),
  poll: libc.func('int poll(void *, uint64_t, int)'),
};

export function sysIoUringSetup(entries: number, params: Uint8Array): number {
  return Number(syscall3(__NR_io_uring_setup, entries, params));
}

/** io_uring_enter(fd, toSubmit, minComplete, flags, NULL, 0): consumed SQEs, or -1 with errno. */
export function sysIoUringEnter(fd: number, toSubmit: number, minComplete: number, flags: number): number {
  return Number(syscall7(__NR_io_uring_enter, fd, toSubmit, minComplete, flags, null, 0));
}

export function sysIoUringRegister(fd: number, opcode: number, arg: Uint8Array | Int32Array | null, nrArgs: number): number {
  return Number(syscall5(__NR_io_uring_register, fd, opcode, arg, nrArgs));
}

// open(2) flags (x86-64)
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_DIRECT = 0o40000;
export const O_NOATIME = 0o1000000;
export const O_CLOEXEC = 0o2000000;

// statx(2)
export const AT_FDCWD = -100;
export const AT_EMPTY_PATH = 0x1000;
export const STATX_TYPE = 0x1;
export const STATX_MODE = 0x2;
export const STATX_INO = 0x100;
export const STATX_SIZE = 0x200;
export const STATX_BTIME = 0x800;
export const STATX_DIOALIGN = 0x2000;
export const STATX_SIZE_BYTES = 256;
export const STX_MASK = 0; // u32
export const STX_MODE = 28; // u16
export const STX_INO = 32; // u64
export const STX_SIZE = 40; // u64
export const STX_BTIME_SEC = 80; // s64
export const STX_BTIME_NSEC = 88; // u32
export const STX_RDEV_MAJOR = 128; // u32
export const STX_RDEV_MINOR = 132;
export const STX_DEV_MAJOR = 136;
export const STX_DEV_MINOR = 140;
export const STX_DIO_MEM_ALIGN = 152; // u32
export const STX_DIO_OFFSET_ALIGN = 156; // u32

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;

// <linux/fs.h> block device ioctls
export const BLKSSZGET = 0x1268; // logical block size (int)
export const BLKPBSZGET = 0x127b; // physical block size (unsigned int)
export const BLKGETSIZE64 = 0x80081272; // size in bytes (u64)

// fallocate(2) modes
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

// preadv2/pwritev2 flags
export const RWF_NOWAIT = 0x8;

// statfs(2): f_type is the first field (a long on x86-64); the struct is 120 bytes.
export const STATFS_BYTES = 120;
// lseek(2): the first hole at or after an offset (the file's size when there is none)
export const SEEK_HOLE = 4;

export const TMPFS_MAGIC = 0x01021994;
export const RAMFS_MAGIC = 0x858458f6;
export const HUGETLBFS_MAGIC = 0x958458f6;

// poll(2)
export const POLLIN = 0x001;
