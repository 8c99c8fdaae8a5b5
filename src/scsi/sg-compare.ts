// Byte comparisons against a scatter-gather list, walking its entries in place (no copies, no
// views created), for VERIFY, COMPARE AND WRITE and WRITE SAME's zero-pattern test.
import type { SgList } from '../iovec/sg-list.ts';

/**
 * Compares len bytes of sg starting at byte `from` with buf[bufOffset..]. Returns the index
 * (0-based, relative to `from`) of the first differing byte, or -1 when all len bytes match.
 * A list shorter than from + len differs at its end.
 */
export function sgCompare(sg: SgList, from: number, buf: Uint8Array, bufOffset: number, len: number): number {
  let done = 0;
  let skip = from;
  for (let i = 0; i < sg.count && done < len; i++) {
    const l = sg.lengths[i];
    if (skip >= l) {
      skip -= l;
      continue;
    }
    const n = Math.min(l - skip, len - done);
    const src = sg.bufs[i];
    const o = sg.offsets[i] + skip;
    const b = bufOffset + done;
    for (let k = 0; k < n; k++) {
      if (src[o + k] !== buf[b + k]) return done + k;
    }
    done += n;
    skip = 0;
  }
  return done < len ? done : -1;
}

/** True when len bytes of sg from byte `from` are all zero (and present). */
export function sgIsZero(sg: SgList, from: number, len: number): boolean {
  let done = 0;
  let skip = from;
  for (let i = 0; i < sg.count && done < len; i++) {
    const l = sg.lengths[i];
    if (skip >= l) {
      skip -= l;
      continue;
    }
    const n = Math.min(l - skip, len - done);
    const src = sg.bufs[i];
    const o = sg.offsets[i] + skip;
    for (let k = 0; k < n; k++) if (src[o + k] !== 0) return false;
    done += n;
    skip = 0;
  }
  return done === len;
}
