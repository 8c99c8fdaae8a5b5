// Native struct iovec arrays, one per request slot, plus page-aligned bounce buffers and a zero
// buffer. fromSegments() is THE one place where a raw address reaches the kernel for block I/O:
// every iovec an engine submits was written here, from segments the virtio layer validated.
import { mmapAnonymous, munmap, viewOf } from './memory.ts';

/**
 * The parts of a scatter-gather list (src/iovec/sg-list.ts) this file reads. Declared here because
 * sys/ is the lowest layer and must not import iovec/; SgList satisfies it structurally.
 */
export interface SegmentList {
  readonly count: number;
  readonly bufs: readonly Uint8Array[];
  readonly offsets: Float64Array;
  readonly lengths: Uint32Array;
  /** Host address of each entry's first byte; 0 when unknown. */
  readonly addrs: Float64Array;
}

/** iovecs per slot; longer lists go through the bounce buffer. */
export const IOVECS_PER_SLOT = 64;
const IOVEC_SIZE = 16;
/** Bytes one bounce or zero-write SQE moves; larger requests proceed in chunks of this size. */
export const BOUNCE_CHUNK = 256 * 1024;
const PAGE = 4096;
const TWO_32 = 0x1_0000_0000;
const EMPTY = new Uint8Array(0);

export class IoVectorTable {
  readonly slots: number;
  /** Base address of the iovec arrays, as a number (exact below 2^53). */
  readonly base: number;
  #baseBig: bigint;
  #length: number;
  /** u32 view over the iovec arrays: [base lo, base hi, len lo, len hi] per iovec. */
  #u32: Uint32Array;
  readonly #iovViews: Uint8Array[];
  /** Bounce arena (slots x BOUNCE_CHUNK), mapped at the first request that needs it. */
  #bounceBig = 0n;
  #bounceBase = 0;
  #bounceViews: Uint8Array[] = [];
  /** Zero page-backed buffer of BOUNCE_CHUNK bytes, mapped on first use, never written. */
  #zeroBig = 0n;
  #zeroBase = 0;
  #closed = false;

  constructor(slots: number) {
    if (!Number.isInteger(slots) || slots <= 0 || slots > 65536) throw new RangeError(`iovec table: ${slots} slots is not in 1..65536`);
    this.slots = slots;
    this.#length = Math.ceil((slots * IOVECS_PER_SLOT * IOVEC_SIZE) / PAGE) * PAGE;
    this.#baseBig = mmapAnonymous(this.#length);
    this.base = Number(this.#baseBig);
    this.#u32 = new Uint32Array(viewOf(this.#baseBig, this.#length));
    const bytes = this.#u32.buffer;
    this.#iovViews = Array.from({ length: slots }, (_, slot) => new Uint8Array(bytes, slot * IOVECS_PER_SLOT * IOVEC_SIZE, IOVECS_PER_SLOT * IOVEC_SIZE));
  }

  /**
   * Slot's iovec array as a view, made once: a syscall made through koffi takes it as its pointer
   * argument without a per-call number (an address above 2^30 would be boxed: 16 bytes per call).
   */
  iovView(slot: number): Uint8Array {
    return this.#iovViews[slot];
  }

  /** Address of slot's iovec array, for an SQE's addr or preadv(). */
  iovAddr(slot: number): number {
    return this.base + slot * IOVECS_PER_SLOT * IOVEC_SIZE;
  }

  #set(slot: number, i: number, addr: number, len: number): void {
    const w = (slot * IOVECS_PER_SLOT + i) * 4;
    const u = this.#u32;
    u[w] = addr % TWO_32;
    u[w + 1] = Math.floor(addr / TWO_32);
    u[w + 2] = len;
    u[w + 3] = 0;
  }

  /**
   * Fills slot's iovecs with bytes [from, from + len) of `list`, pointing straight at the memory
   * the list describes (zero copy). Returns the iovec count, or -1 when the list cannot be used
   * directly and the caller must bounce: an entry with no known host address, an entry whose
   * offset/length do not fit its own buffer (a producer bug: never hand such a pointer to the
   * kernel), more than IOVECS_PER_SLOT pieces, fewer than len bytes, or (memAlign > 1, O_DIRECT)
   * a piece whose address is not a multiple of memAlign or whose length is not one of lenAlign.
   */
  fromSegments(slot: number, list: SegmentList, from: number, len: number, memAlign: number, lenAlign: number): number {
    if (this.#closed || !(slot >= 0 && slot < this.slots) || !(len > 0) || !(from >= 0)) return -1;
    let n = 0;
    let done = 0;
    let skip = from;
    const count = list.count;
    for (let i = 0; i < count && done < len; i++) {
      const l = list.lengths[i];
      if (skip >= l) {
        skip -= l;
        continue;
      }
      const host = list.addrs[i];
      const off = list.offsets[i];
      // The host address must be a plain positive integer and the entry must lie within its view.
      if (!(host > 0) || !Number.isSafeInteger(host) || !(off >= 0) || off + l > list.bufs[i].length) return -1;
      const piece = Math.min(l - skip, len - done);
      const addr = host + skip;
      if (memAlign > 1 && (addr % memAlign !== 0 || piece % lenAlign !== 0)) return -1;
      if (n === IOVECS_PER_SLOT) return -1;
      this.#set(slot, n++, addr, piece);
      done += piece;
      skip = 0;
    }
    return done === len ? n : -1;
  }

  /** Points slot's first iovec at its bounce buffer (len <= BOUNCE_CHUNK); returns 1 (0 once closed). */
  bounce(slot: number, len: number): number {
    if (this.#closed) return 0;
    if (this.#bounceBase === 0) this.#mapBounce();
    this.#set(slot, 0, this.#bounceBase + slot * BOUNCE_CHUNK, Math.min(len, BOUNCE_CHUNK));
    return 1;
  }

  /** The slot's bounce buffer (BOUNCE_CHUNK bytes, page-aligned). */
  bounceView(slot: number): Uint8Array {
    if (this.#closed) return EMPTY;
    if (this.#bounceBase === 0) this.#mapBounce();
    return this.#bounceViews[slot];
  }

  /** Points slot's first iovec at the zero buffer (len <= BOUNCE_CHUNK); returns 1 (0 once closed). */
  zeroes(slot: number, len: number): number {
    if (this.#closed) return 0;
    if (this.#zeroBase === 0) {
      this.#zeroBig = mmapAnonymous(BOUNCE_CHUNK);
      this.#zeroBase = Number(this.#zeroBig);
    }
    this.#set(slot, 0, this.#zeroBase, Math.min(len, BOUNCE_CHUNK));
    return 1;
  }

  #mapBounce(): void {
    const size = this.slots * BOUNCE_CHUNK;
    this.#bounceBig = mmapAnonymous(size);
    this.#bounceBase = Number(this.#bounceBig);
    const all = new Uint8Array(viewOf(this.#bounceBig, size));
    this.#bounceViews = new Array<Uint8Array>(this.slots);
    for (let s = 0; s < this.slots; s++) this.#bounceViews[s] = all.subarray(s * BOUNCE_CHUNK, (s + 1) * BOUNCE_CHUNK);
  }

  /** Unmaps everything. Only once no request of any slot can still be in the kernel's hands. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#u32 = new Uint32Array(0);
    munmap(this.#baseBig, this.#length);
    if (this.#bounceBase !== 0) munmap(this.#bounceBig, this.slots * BOUNCE_CHUNK);
    if (this.#zeroBase !== 0) munmap(this.#zeroBig, BOUNCE_CHUNK);
    this.#bounceViews = [];
    this.#bounceBase = 0;
    this.#zeroBase = 0;
  }
}
