// Test helper: "guest memory" as the daemon sees it — a memfd mapped into this process, with
// SgLists whose entries carry real host addresses (as the virtio layer builds them).
import { SgList } from '../../../src/iovec/sg-list.ts';
import { closeFd } from '../../../src/sys/fd.ts';
import { memfdCreate, mmapFd, munmap, viewOf } from '../../../src/sys/memory.ts';

export class MappedMemory {
  readonly size: number;
  readonly fd: number;
  readonly addr: bigint;
  readonly bytes: Uint8Array;

  constructor(size: number) {
    this.size = size;
    this.fd = memfdCreate('test-guest-memory', size);
    this.addr = mmapFd(this.fd, size);
    this.bytes = new Uint8Array(viewOf(this.addr, size));
  }

  /** An SgList of [offset, length] pieces of this memory, with host addresses. */
  sg(pieces: [number, number][], capacity = pieces.length): SgList {
    const sg = new SgList(capacity);
    for (const [off, len] of pieces) sg.push(this.bytes, off, len, Number(this.addr) + off);
    return sg;
  }

  close(): void {
    munmap(this.addr, this.size);
    closeFd(this.fd);
  }
}

/** A deterministic byte pattern: pattern(seed, i). */
export function patternByte(seed: number, i: number): number {
  return (seed * 131 + i * 7 + (i >> 9)) & 0xff;
}

export function fillPattern(buf: Uint8Array, seed: number): void {
  for (let i = 0; i < buf.length; i++) buf[i] = patternByte(seed, i);
}

/** Index of the first byte that differs from the pattern, or -1. */
export function findPatternMismatch(buf: Uint8Array, seed: number): number {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== patternByte(seed, i)) return i;
  return -1;
}
