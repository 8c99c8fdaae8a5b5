// Shared memory: memfd, mmap/munmap and zero-copy views over mapped memory.
import koffi from 'koffi';
import { c, O_CLOEXEC } from './libc.ts';
import { throwErrno } from './errno.ts';

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;
export const MAP_ANONYMOUS = 0x20;
const MAP_FAILED = 0xffffffffffffffffn;
const MFD_CLOEXEC = 1;
const MFD_HUGETLB = 4;

/** A memfd of `size` bytes; with `hugetlb`, backed by 2 MiB huge pages (they must be reserved). */
export function memfdCreate(name: string, size?: number, hugetlb = false): number {
  const fd = c.memfd_create(name, MFD_CLOEXEC | (hugetlb ? MFD_HUGETLB : 0));
  if (fd < 0) throwErrno('memfd_create', name);
  if (size !== undefined && c.ftruncate(fd, size) < 0) {
    c.close(fd);
    throwErrno('ftruncate', `memfd ${name} to ${size}`);
  }
  return fd;
}

/** mmap(fd) shared read/write; returns the address. */
export function mmapFd(fd: number, length: number, offset = 0, prot = PROT_READ | PROT_WRITE): bigint {
  const p = c.mmap(null, length, prot, MAP_SHARED, fd, offset);
  const addr = p === null ? MAP_FAILED : (koffi.address(p) as bigint);
  if (addr === MAP_FAILED || addr === 0n) throwErrno('mmap', `fd ${fd} length ${length} offset ${offset}`);
  return addr;
}

export function mmapAnonymous(length: number): bigint {
  const p = c.mmap(null, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const addr = p === null ? MAP_FAILED : (koffi.address(p) as bigint);
  if (addr === MAP_FAILED || addr === 0n) throwErrno('mmap', `anonymous length ${length}`);
  return addr;
}

/** Unmaps. The caller guarantees no view over this range is read again. */
export function munmap(addr: bigint, length: number): void {
  if (c.munmap(addr, length) < 0) throwErrno('munmap', `length ${length}`);
}

/** A zero-copy ArrayBuffer over mapped memory. Never read it after munmap. */
export function viewOf(addr: bigint, length: number): ArrayBuffer {
  return koffi.view(addr, length);
}

export { O_CLOEXEC };
