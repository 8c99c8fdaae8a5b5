// The connection's copy of the front-end's memory table (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG).
// The connection keeps one fd per region so it can hand the device a full table again after each
// ADD/REM; the device receives duplicates and owns those.
import { closeFd, dupFd, fdMode, fdSize } from '../sys/fd.ts';
import type { VhostUserRegion } from './device.ts';
import type { MemoryRegionDesc } from './message.ts';
import { VhostUserProtocolError } from './protocol-error.ts';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** A region with the fd the connection owns. */
export interface TableRegion extends MemoryRegionDesc {
  fd: number;
}

function describe(r: MemoryRegionDesc): string {
  return `gpa 0x${r.guestPhysAddr.toString(16)} size 0x${r.size.toString(16)} uaddr 0x${r.userAddr.toString(16)} offset 0x${r.mmapOffset.toString(16)}`;
}

/** Checks one region's numbers and its fd: a mapping past the end of the file would SIGBUS. */
export function validateRegion(r: TableRegion): void {
  const max = Number.MAX_SAFE_INTEGER;
  if (r.size === 0) throw new VhostUserProtocolError('BAD_REGION', `region ${describe(r)}: size 0`);
  if (r.guestPhysAddr > max - r.size || r.userAddr > max - r.size || r.mmapOffset > max - r.size) {
    throw new VhostUserProtocolError('BAD_REGION', `region ${describe(r)}: end beyond 2^53`);
  }
  const mode = fdMode(r.fd);
  if ((mode & S_IFMT) !== S_IFREG) {
    throw new VhostUserProtocolError('BAD_REGION_FD', `region ${describe(r)}: fd is not a regular file (mode 0o${mode.toString(8)}); its size cannot be checked`);
  }
  const fileSize = fdSize(r.fd);
  if (fileSize < r.mmapOffset + r.size) {
    throw new VhostUserProtocolError('BAD_REGION_FD', `region ${describe(r)}: file holds only 0x${fileSize.toString(16)} bytes, needs 0x${(r.mmapOffset + r.size).toString(16)}`);
  }
}

function checkNoOverlap(regions: readonly TableRegion[], key: 'guestPhysAddr' | 'userAddr', what: string): void {
  const sorted = [...regions].sort((a, b) => a[key] - b[key]);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (prev[key] + prev.size > sorted[i][key]) {
      throw new VhostUserProtocolError('OVERLAPPING_REGIONS', `${what} ranges overlap: ${describe(prev)} and ${describe(sorted[i])}`);
    }
  }
}

/** Validates a whole candidate table; throws VhostUserProtocolError. */
export function validateTable(regions: readonly TableRegion[]): void {
  for (const r of regions) validateRegion(r);
  checkNoOverlap(regions, 'guestPhysAddr', 'guest physical');
  checkNoOverlap(regions, 'userAddr', 'user address');
}

/** Duplicates every region's fd for the device; on failure closes the duplicates made so far. */
export function deviceCopy(regions: readonly TableRegion[]): VhostUserRegion[] {
  const out: VhostUserRegion[] = [];
  try {
    for (const r of regions) {
      out.push({ guestPhysAddr: r.guestPhysAddr, size: r.size, userAddr: r.userAddr, mmapOffset: r.mmapOffset, fd: dupFd(r.fd) });
    }
  } catch (e) {
    for (const r of out) closeFd(r.fd);
    throw e;
  }
  return out;
}

/** Closes the fds of `from` that `keep` does not hold. */
export function closeRegionFdsNotIn(from: readonly TableRegion[], keep: readonly TableRegion[]): void {
  for (const r of from) {
    if (!keep.some((k) => k.fd === r.fd)) closeFd(r.fd);
  }
}

export class MemoryTable {
  private current: TableRegion[] = [];

  get regions(): readonly TableRegion[] {
    return this.current;
  }

  /** Index of the region REM_MEM_REG names (guest address, size and user address; not the offset), or -1. */
  indexOf(r: MemoryRegionDesc): number {
    return this.current.findIndex((x) => x.guestPhysAddr === r.guestPhysAddr && x.size === r.size && x.userAddr === r.userAddr);
  }

  /** Installs a new table and returns the one it replaced (the caller closes fds no longer used). */
  replace(next: TableRegion[]): TableRegion[] {
    const old = this.current;
    this.current = next;
    return old;
  }

  closeAll(): void {
    for (const r of this.current) closeFd(r.fd);
    this.current = [];
  }
}
