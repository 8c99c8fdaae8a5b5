// The dirty-page log of vhost-user live migration (VHOST_F_LOG_ALL): one bit per 4 KiB page of
// guest physical address, page n at bit n % 8 of byte n / 8 (QEMU reads it as little-endian u64
// words, which is the same bit). The front-end reads and clears it while reactors write it, so
// every update is an atomic OR. Marking is on the data path: no allocation, no throw; a range
// past the end of the log is cut at the end and counted (QEMU sizes the log for all of guest RAM,
// so a miss means an address outside it, which the ring validation already refused).
export const LOG_PAGE_SIZE = 4096;

export class DirtyLog {
  /** The log's bytes: a view of the front-end's shared memory (or any buffer, in tests). */
  readonly bytes: Uint8Array;
  /** Pages it covers. */
  readonly pages: number;
  /** Marks that fell (partly) past the end of the log. */
  outOfRange = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.pages = bytes.length * 8;
  }

  /** Marks every page that [gpa, gpa + len) touches. */
  mark(gpa: number, len: number): void {
    if (!(len > 0) || !(gpa >= 0)) return;
    const first = Math.floor(gpa / LOG_PAGE_SIZE);
    let last = Math.floor((gpa + len - 1) / LOG_PAGE_SIZE);
    if (last >= this.pages) {
      this.outOfRange++;
      if (first >= this.pages) return;
      last = this.pages - 1;
    }
    const b = this.bytes;
    const firstByte = first >>> 3;
    const lastByte = last >>> 3;
    if (firstByte === lastByte) {
      // Bits first%8 .. last%8 of one byte.
      const mask = ((0xff << (first & 7)) & (0xff >>> (7 - (last & 7)))) & 0xff;
      Atomics.or(b, firstByte, mask);
      return;
    }
    Atomics.or(b, firstByte, (0xff << (first & 7)) & 0xff);
    for (let i = firstByte + 1; i < lastByte; i++) if (b[i] !== 0xff) Atomics.or(b, i, 0xff);
    Atomics.or(b, lastByte, 0xff >>> (7 - (last & 7)));
  }

  /** Whether page `n` is marked (tests, diagnostics). */
  isDirty(n: number): boolean {
    return n >= 0 && n < this.pages && (this.bytes[n >>> 3] & (1 << (n & 7))) !== 0;
  }

  /** The marked page numbers, in order (tests, diagnostics; allocates). */
  dirtyPages(): number[] {
    const out: number[] = [];
    const b = this.bytes;
    for (let i = 0; i < b.length; i++) {
      const v = b[i];
      if (v === 0) continue;
      for (let k = 0; k < 8; k++) if ((v & (1 << k)) !== 0) out.push(i * 8 + k);
    }
    return out;
  }
}
