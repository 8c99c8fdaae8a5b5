// Turns a guest physical buffer [gpa, gpa + len) into scatter-gather entries over mapped regions:
// the one place both ring kinds build segments (host addresses included) from guest-supplied
// values. A buffer that crosses into an adjacent region becomes one entry per region; any byte
// outside mapped memory refuses the whole buffer. Allocates nothing.
import type { GuestMemory } from './guest-memory.ts';
import type { SgList } from '../iovec/sg-list.ts';

export const SEG_OK = 0;
export const SEG_UNMAPPED = 1;
export const SEG_FULL = 2;
export type SegmentResult = typeof SEG_OK | typeof SEG_UNMAPPED | typeof SEG_FULL;

/** A u64 whose high half is >= 2^21 is >= 2^53: no guest address, and never rounded into one. */
export const ADDR_HI_LIMIT = 0x200000;
const TWO_32 = 0x100000000;

/**
 * Appends the buffer at u64 address (hi:lo), `len` bytes, to `list`. On SEG_UNMAPPED / SEG_FULL the
 * list may hold part of the buffer: the caller discards the whole chain then.
 */
export function appendGuestSegments(mem: GuestMemory, list: SgList, hi: number, lo: number, len: number): SegmentResult {
  if (hi >= ADDR_HI_LIMIT) return SEG_UNMAPPED;
  let g = hi * TWO_32 + lo;
  let rem = len;
  while (rem > 0) {
    const r = mem.regionAt(g);
    if (r < 0) return SEG_UNMAPPED;
    const room = mem.ends[r] - g;
    const n = rem < room ? rem : room;
    const off = g - mem.starts[r];
    const host = mem.hostBases[r];
    if (!list.push(mem.bytes[r], off, n, host === 0 ? 0 : host + off)) return SEG_FULL;
    g += n;
    rem -= n;
  }
  return SEG_OK;
}

/** The u64 (hi:lo) as hex, for error messages. */
export function hex64(hi: number, lo: number): string {
  return hi === 0 ? '0x' + lo.toString(16) : '0x' + hi.toString(16) + lo.toString(16).padStart(8, '0');
}
