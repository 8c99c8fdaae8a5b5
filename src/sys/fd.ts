// File-descriptor basics: close, flags, size, small reads/writes.
import { c, F_DUPFD_CLOEXEC, F_GETFL, F_SETFL, O_NONBLOCK, nativeScratch } from './libc.ts';
import { EAGAIN, lastErrno, SysError, throwErrno } from './errno.ts';

/** Closes fd; errors are ignored except EBADF, which means a double close (a bug). */
export function closeFd(fd: number): void {
  if (fd < 0) return;
  if (c.close(fd) < 0) {
    const e = lastErrno();
    if (e === 9) throw new SysError('close', e, `fd ${fd}`);
  }
}

export function setNonBlocking(fd: number): void {
  const flags = c.fcntl(fd, F_GETFL, 0);
  if (flags < 0) throwErrno('fcntl(F_GETFL)');
  if (c.fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throwErrno('fcntl(F_SETFL)');
}

const statBuf = nativeScratch(256);

/** st_size of an open fd (x86-64 struct stat: st_size at offset 48). */
export function fdSize(fd: number): number {
  if (c.fstat(fd, statBuf.bytes) < 0) throwErrno('fstat', `fd ${fd}`);
  return Number(statBuf.dv.getBigInt64(48, true));
}

/** st_mode of an open fd (offset 24). */
export function fdMode(fd: number): number {
  if (c.fstat(fd, statBuf.bytes) < 0) throwErrno('fstat', `fd ${fd}`);
  return statBuf.dv.getUint32(24, true);
}

export function ftruncateFd(fd: number, size: number): void {
  if (c.ftruncate(fd, size) < 0) throwErrno('ftruncate', `fd ${fd} size ${size}`);
}

/** A duplicate with close-on-exec (F_DUPFD_CLOEXEC): a child process must not inherit guest memory or a leased file. */
export function dupFd(fd: number): number {
  const r = c.fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (r < 0) throwErrno('dup', `fd ${fd}`);
  return r;
}

/** Writes all of buf or throws; returns false on EAGAIN with nothing written. */
export function writeFd(fd: number, buf: Uint8Array): boolean {
  const n = Number(c.write(fd, buf, buf.length));
  if (n < 0) {
    if (lastErrno() === EAGAIN) return false;
    throwErrno('write', `fd ${fd}`);
  }
  return true;
}

/** Reads up to buf.length bytes; returns -1 on EAGAIN, 0 on EOF. */
export function readFd(fd: number, buf: Uint8Array): number {
  const n = Number(c.read(fd, buf, buf.length));
  if (n < 0) {
    if (lastErrno() === EAGAIN) return -1;
    throwErrno('read', `fd ${fd}`);
  }
  return n;
}
