// File leases (fcntl F_SETLEASE): the kernel tells the holder, with SIGIO, before another open or a
// truncate of the file goes ahead, and holds that call back until the holder lets go (at most
// /proc/sys/fs/lease-break-time seconds). A mapped file guarded by a lease cannot shrink under
// the mapping without warning. Main thread only: the signal is delivered to the process and
// handled on the main thread's event loop.
import { readFileSync } from 'node:fs';
import { c } from './libc.ts';
import { lastErrno } from './errno.ts';

export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
const F_SETLEASE = 1024;
const F_GETLEASE = 1025;

/** Takes (F_RDLCK, F_WRLCK) or drops (F_UNLCK) a lease on fd's open file: 0, or -errno (EAGAIN: the file is open elsewhere; EACCES: not the owner). */
export function setLease(fd: number, type: number): number {
  return c.fcntl(fd, F_SETLEASE, type) < 0 ? -lastErrno() : 0;
}

/** The lease held through fd: F_RDLCK, F_WRLCK or F_UNLCK; while a break is under way, the type it must drop to. -errno on error. */
export function getLease(fd: number): number {
  const r = c.fcntl(fd, F_GETLEASE, 0);
  return r < 0 ? -lastErrno() : r;
}

const breakListeners = new Set<() => void>();
let signalInstalled = false;

function onSigio(): void {
  // One failing listener must not keep the others from letting go of their leases.
  for (const l of breakListeners) {
    try {
      l();
    } catch (e) {
      process.emitWarning(`lease break listener failed: ${(e as Error).message}`);
    }
  }
}

/** /proc/sys/fs/lease-break-time in seconds: how long the kernel waits for a holder; null when unreadable. */
export function leaseBreakSeconds(): number | null {
  try {
    const v = Number(readFileSync('/proc/sys/fs/lease-break-time', 'utf8').trim());
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/**
 * Calls `listener` on every SIGIO (a lease break somewhere; listeners ask getLease which of their
 * leases it was). Returns the function that removes it. The process handler stays installed once
 * set: SIGIO's default action ends the process, and a lease taken earlier may still be breaking.
 */
export function onLeaseBreak(listener: () => void): () => void {
  if (!signalInstalled) {
    process.on('SIGIO', onSigio);
    signalInstalled = true;
  }
  breakListeners.add(listener);
  return () => {
    breakListeners.delete(listener);
  };
}

/**
 * Leases this thread holds, by file identity, with what lets each go. Opening such a file from the
 * thread that would have to release it would wait out the whole lease-break time (the break is
 * handled on this thread's event loop): openers release first (releaseLeaseOn).
 */
const holders = new Map<string, Set<() => void>>();

/** Registers a release for a leased file; returns the function that unregisters it. */
export function registerLeaseHolder(identity: string, release: () => void): () => void {
  let set = holders.get(identity);
  if (set === undefined) {
    set = new Set();
    holders.set(identity, set);
  }
  set.add(release);
  return () => {
    const s = holders.get(identity);
    if (s === undefined) return;
    s.delete(release);
    if (s.size === 0) holders.delete(identity);
  };
}

/** Lets go of this thread's leases on the file with that identity (before opening it again). */
export function releaseLeaseOn(identity: string): void {
  const set = holders.get(identity);
  if (set !== undefined) for (const release of [...set]) release();
}
