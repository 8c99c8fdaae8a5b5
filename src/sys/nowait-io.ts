// Vectored file I/O done inside the call instead of through io_uring, where that is faster and
// cannot wait for a device. io_uring hands buffered I/O that it cannot do without blocking to an
// io-wq worker thread: every read and write on tmpfs (no RWF_NOWAIT support there, EOPNOTSUPP),
// ~6 us per I/O at QD1 with fio against ~1.5 us for a plain pread. So: on a memory file system a
// plain preadv/pwritev (a memory copy; BlockFileInfo.memoryFs), elsewhere preadv2(RWF_NOWAIT), which serves page-cache
// hits and says EAGAIN when it would have waited; the caller then goes through its engine.
// `iov` is the request's iovec array (IoVectorTable.iovView). A file position of 2^30 or more
// is boxed by the call (16 bytes); below it nothing is allocated.
import { blockLibc, RWF_NOWAIT } from './block-io-libc.ts';
import { lastErrno } from './errno.ts';

/** preadv2(fd, iov, n, pos, RWF_NOWAIT): bytes read, or -errno (-EAGAIN: would block). */
export function preadvNowait(fd: number, iov: Uint8Array, n: number, pos: number): number {
  const r = Number(blockLibc.preadv2View(fd, iov, n, pos, RWF_NOWAIT));
  return r < 0 ? -lastErrno() : r;
}

/** pwritev2(fd, iov, n, pos, RWF_NOWAIT): bytes written, or -errno (-EAGAIN: would block). */
export function pwritevNowait(fd: number, iov: Uint8Array, n: number, pos: number): number {
  const r = Number(blockLibc.pwritev2View(fd, iov, n, pos, RWF_NOWAIT));
  return r < 0 ? -lastErrno() : r;
}

/** preadv on a memory file system (never waits for a device): bytes read, or -errno. */
export function preadvMemory(fd: number, iov: Uint8Array, n: number, pos: number): number {
  const r = Number(blockLibc.preadvView(fd, iov, n, pos));
  return r < 0 ? -lastErrno() : r;
}

/** pwritev on a memory file system (never waits for a device): bytes written, or -errno. */
export function pwritevMemory(fd: number, iov: Uint8Array, n: number, pos: number): number {
  const r = Number(blockLibc.pwritevView(fd, iov, n, pos));
  return r < 0 ? -lastErrno() : r;
}
