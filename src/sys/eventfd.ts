// eventfd: kick/call notifications and reactor mailboxes.
import { c, nativeScratch } from './libc.ts';
import { EAGAIN, lastErrno, throwErrno } from './errno.ts';

export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

export function eventfdCreate(flags = EFD_NONBLOCK | EFD_CLOEXEC): number {
  const fd = c.eventfd(0, flags);
  if (fd < 0) throwErrno('eventfd');
  return fd;
}

const buf = nativeScratch(8);
const one = new BigUint64Array([1n]);

/** Adds 1 to the counter (signal). Returns false if the fd is gone or full; never throws on the data path. */
export function eventfdSignal(fd: number): boolean {
  return Number(c.write(fd, one, 8)) === 8;
}

/** Reads and clears the counter; 0 when nothing was pending (EAGAIN). */
export function eventfdDrain(fd: number): number {
  const n = Number(c.read(fd, buf.bytes, 8));
  if (n < 0) {
    if (lastErrno() === EAGAIN) return 0;
    throwErrno('read(eventfd)', `fd ${fd}`);
  }
  return Number(buf.dv.getBigUint64(0, true));
}
