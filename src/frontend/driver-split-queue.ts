// Driver side of a split virtqueue in arena memory: descriptor free list, chains (direct or
// indirect), avail publication, kick with notification suppression (NO_NOTIFY / EVENT_IDX),
// and validated reaping of the used ring. The submit/complete path allocates nothing.
import { eventfdCreate, eventfdSignal } from '../sys/eventfd.ts';
import { closeFd } from '../sys/fd.ts';
import type { GuestMemoryArena, GuestMemoryRegion } from './guest-memory-arena.ts';
import { BufferList, DriverQueueError, waitForEventfd, type DriverQueue, type DriverQueueErrorCode } from './driver-queue.ts';
import {
  SplitRingMemory, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE, VIRTQ_MAX_SIZE,
  VIRTQ_USED_F_NO_NOTIFY, VIRTQ_AVAIL_F_NO_INTERRUPT, availRingSize, descTableSize, usedRingSize,
} from './split-ring-memory.ts';

export { BufferList, DriverQueueError, type DriverQueue, type DriverQueueErrorCode } from './driver-queue.ts';

export interface SplitQueueOptions {
  /** Queue size: a power of two, at most 32768. */
  size: number;
  /** Arena region for the rings and indirect tables (default 0). */
  regionIndex?: number;
  /** Descriptors per preallocated indirect table (one per head); 0 disables indirect (default 0). */
  indirectMax?: number;
  /** VIRTIO_RING_F_EVENT_IDX negotiated (can be changed later through the eventIdx field). */
  eventIdx?: boolean;
  /** Create a kick eventfd (default true); without it the back-end must poll. */
  kickFd?: boolean;
  /** Create a call eventfd (default true). */
  callFd?: boolean;
}

const TWO32 = 4294967296;
const RING_GAP_POISON = 0xee;

export class DriverSplitQueue implements DriverQueue {
  readonly kind = 'split' as const;
  readonly size: number;
  readonly descGpa: number;
  readonly availGpa: number;
  readonly usedGpa: number;
  /** -1 when created without one (or closed). Owned by the queue (the back-end receives copies). */
  kickFd: number;
  callFd: number;
  readonly indirectMax: number;
  /** Unvalidated access to the rings (hostile tests; playing the device in tests). */
  readonly raw: SplitRingMemory;
  eventIdx: boolean;
  /** After pollUsed(): tokens and lengths of completions [0, n). */
  readonly completedTokens: Float64Array;
  readonly completedLens: Uint32Array;
  /** Kicks actually signalled, and kicks suppressed by the device. */
  kicks = 0;
  kicksSuppressed = 0;

  private readonly mask: number;
  private readonly region: GuestMemoryRegion;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  // Region-relative indices into u16/u32 for the hot fields.
  private readonly descU32: number;
  private readonly descU16: number;
  private readonly availFlagsI: number;
  private readonly availIdxI: number;
  private readonly availRingI: number;
  private readonly usedEventI: number;
  private readonly usedFlagsI: number;
  private readonly usedIdxI: number;
  private readonly usedRingU32: number;
  private readonly availEventI: number;
  private readonly indirectGpa: number;
  private readonly indirectU32: number;
  private readonly indirectU16: number;

  private readonly freeNext: Uint16Array;
  private readonly chainLen: Uint16Array;
  private readonly tokens: Float64Array;
  private readonly writable: Float64Array;
  private readonly inFlightFlag: Uint8Array;
  private freeHead = 0;
  private free: number;
  private inFlightCount = 0;
  private shadowAvail = 0;
  private publishedAvail = 0;
  private lastUsed = 0;
  private callbacksOn = true;
  private broken: DriverQueueError | null = null;

  constructor(arena: GuestMemoryArena, opts: SplitQueueOptions) {
    const n = opts.size;
    if (!Number.isInteger(n) || n < 1 || n > VIRTQ_MAX_SIZE || (n & (n - 1)) !== 0) {
      throw new DriverQueueError('BAD_QUEUE_SIZE', `queue size ${n} is not a power of two in [1, ${VIRTQ_MAX_SIZE}]`);
    }
    const ri = opts.regionIndex ?? 0;
    this.size = n;
    this.mask = n - 1;
    this.indirectMax = opts.indirectMax ?? 0;
    this.eventIdx = opts.eventIdx ?? false;
    // Three separate allocations with poisoned gaps (virtio 1.x layout), so a back-end assuming
    // the legacy contiguous layout reads garbage.
    this.descGpa = arena.alloc(descTableSize(n), 4096, ri);
    arena.allocFilled(64, RING_GAP_POISON, 64, ri);
    this.availGpa = arena.alloc(availRingSize(n), 64, ri);
    arena.allocFilled(64, RING_GAP_POISON, 64, ri);
    this.usedGpa = arena.alloc(usedRingSize(n), 64, ri);
    this.indirectGpa = this.indirectMax > 0 ? arena.alloc(n * this.indirectMax * VIRTQ_DESC_SIZE, 4096, ri) : 0;
    this.region = arena.regions[ri];
    this.u16 = this.region.u16;
    this.u32 = this.region.u32;
    const base = this.region.guestPhysAddr;
    this.descU32 = (this.descGpa - base) / 4;
    this.descU16 = (this.descGpa - base) / 2;
    this.availFlagsI = (this.availGpa - base) / 2;
    this.availIdxI = this.availFlagsI + 1;
    this.availRingI = this.availFlagsI + 2;
    this.usedEventI = this.availRingI + n;
    this.usedFlagsI = (this.usedGpa - base) / 2;
    this.usedIdxI = this.usedFlagsI + 1;
    this.usedRingU32 = (this.usedGpa - base) / 4 + 1;
    this.availEventI = this.usedFlagsI + 2 + 4 * n;
    this.indirectU32 = (this.indirectGpa - base) / 4;
    this.indirectU16 = (this.indirectGpa - base) / 2;
    this.raw = new SplitRingMemory(arena, n, this.descGpa, this.availGpa, this.usedGpa);

    this.freeNext = new Uint16Array(n);
    for (let i = 0; i < n; i++) this.freeNext[i] = (i + 1) & 0xffff;
    this.free = n;
    this.chainLen = new Uint16Array(n);
    this.tokens = new Float64Array(n);
    this.writable = new Float64Array(n);
    this.inFlightFlag = new Uint8Array(n);
    this.completedTokens = new Float64Array(n);
    this.completedLens = new Uint32Array(n);
    this.kickFd = opts.kickFd === false ? -1 : eventfdCreate();
    this.callFd = opts.callFd === false ? -1 : eventfdCreate();
  }

  /** Driver Area = avail ring, Device Area = used ring. */
  get driverAreaGpa(): number {
    return this.availGpa;
  }
  get deviceAreaGpa(): number {
    return this.usedGpa;
  }
  /** A split ring restarts from avail index 0. */
  get initialVringBase(): number {
    return 0;
  }

  /** The same raw view under the name the design notes use. */
  get rawDescriptors(): SplitRingMemory {
    return this.raw;
  }

  get numFree(): number {
    return this.free;
  }
  get inFlight(): number {
    return this.inFlightCount;
  }
  /** The avail index the driver will publish next (shadow). */
  get availIdx(): number {
    return this.shadowAvail;
  }
  get lastUsedIdx(): number {
    return this.lastUsed;
  }
  /** used.idx as the device last published it (what QEMU restarts a ring at after a back-end crash). */
  get ringUsedIdx(): number {
    return Atomics.load(this.u16, this.usedIdxI);
  }

  /**
   * Makes a chain of out (device-readable) then in (device-writable) buffers available under
   * token. With indirect, the chain goes into the head's preallocated indirect table. Returns the
   * head, or -1 when there are not enough free descriptors (the caller retries after reaping).
   * Not visible to the device until publish() or kick().
   */
  add(out: BufferList, inb: BufferList, token: number, indirect = false): number {
    if (this.broken) throw this.broken;
    const total = out.count + inb.count;
    if (total === 0) throw new DriverQueueError('EMPTY_CHAIN', 'a chain needs at least one buffer');
    let head: number;
    let writableBytes = 0;
    for (let k = 0; k < inb.count; k++) writableBytes += inb.lens[k];
    if (indirect) {
      if (total > this.indirectMax) throw new DriverQueueError('CHAIN_TOO_LONG', `${total} buffers exceed the indirect table size ${this.indirectMax}`);
      if (this.free < 1) return -1;
      head = this.freeHead;
      this.freeHead = this.freeNext[head];
      this.free -= 1;
      const tU32 = this.indirectU32 + (head * this.indirectMax * VIRTQ_DESC_SIZE) / 4;
      const tU16 = this.indirectU16 + (head * this.indirectMax * VIRTQ_DESC_SIZE) / 2;
      for (let k = 0; k < total; k++) {
        const isIn = k >= out.count;
        const j = isIn ? k - out.count : k;
        const last = k === total - 1;
        this.writeDesc(tU32 + 4 * k, tU16 + 8 * k, isIn ? inb.gpas[j] : out.gpas[j], isIn ? inb.lens[j] : out.lens[j],
          (isIn ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : k + 1);
      }
      const tableGpa = this.indirectGpa + head * this.indirectMax * VIRTQ_DESC_SIZE;
      this.writeDesc(this.descU32 + 4 * head, this.descU16 + 8 * head, tableGpa, total * VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
      this.chainLen[head] = 1;
    } else {
      if (total > this.size) throw new DriverQueueError('CHAIN_TOO_LONG', `${total} buffers exceed the queue size ${this.size}`);
      if (this.free < total) return -1;
      head = this.freeHead;
      let i = head;
      for (let k = 0; k < total; k++) {
        const isIn = k >= out.count;
        const j = isIn ? k - out.count : k;
        const last = k === total - 1;
        const next = this.freeNext[i];
        this.writeDesc(this.descU32 + 4 * i, this.descU16 + 8 * i, isIn ? inb.gpas[j] : out.gpas[j], isIn ? inb.lens[j] : out.lens[j],
          (isIn ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : next);
        if (!last) i = next;
      }
      this.freeHead = this.freeNext[i];
      this.free -= total;
      this.chainLen[head] = total;
    }
    this.tokens[head] = token;
    this.writable[head] = writableBytes;
    this.inFlightFlag[head] = 1;
    this.inFlightCount++;
    this.u16[this.availRingI + (this.shadowAvail & this.mask)] = head;
    this.shadowAvail = (this.shadowAvail + 1) & 0xffff;
    return head;
  }

  private writeDesc(iU32: number, iU16: number, addr: number, len: number, flags: number, next: number): void {
    const u32 = this.u32;
    u32[iU32] = addr % TWO32;
    u32[iU32 + 1] = Math.floor(addr / TWO32);
    u32[iU32 + 2] = len;
    this.u16[iU16 + 6] = flags;
    this.u16[iU16 + 7] = next;
  }

  /** Publishes avail.idx (Atomics.store: the entries written before it are visible first). */
  publish(): void {
    Atomics.store(this.u16, this.availIdxI, this.shadowAvail);
  }

  /**
   * Publishes and signals the kick eventfd unless the device suppressed notifications (used.flags
   * NO_NOTIFY, or avail_event with EVENT_IDX). Returns whether it signalled.
   */
  kick(): boolean {
    const old = this.publishedAvail;
    const now = this.shadowAvail;
    // Atomics.store is a full fence, so the suppression read below cannot pass the publication.
    Atomics.store(this.u16, this.availIdxI, now);
    this.publishedAvail = now;
    if (old === now) return false;
    let notify: boolean;
    if (this.eventIdx) {
      const event = Atomics.load(this.u16, this.availEventI);
      notify = ((now - event - 1) & 0xffff) < ((now - old) & 0xffff);
    } else {
      notify = (Atomics.load(this.u16, this.usedFlagsI) & VIRTQ_USED_F_NO_NOTIFY) === 0;
    }
    if (notify && this.kickFd >= 0) {
      eventfdSignal(this.kickFd);
      this.kicks++;
      return true;
    }
    this.kicksSuppressed++;
    return false;
  }

  /** Signals the kick eventfd regardless of suppression. */
  notify(): void {
    if (this.kickFd >= 0) eventfdSignal(this.kickFd);
    this.kicks++;
  }

  /**
   * Reaps used entries into completedTokens/completedLens; returns how many. Validates what the
   * device wrote: used.idx must not move past what is in flight, ids must be in-flight heads, and
   * len must not exceed the chain's writable bytes. A violation breaks the queue (DriverQueueError).
   */
  pollUsed(): number {
    if (this.broken) throw this.broken;
    let total = 0;
    for (;;) {
      const usedIdx = Atomics.load(this.u16, this.usedIdxI);
      const n = (usedIdx - this.lastUsed) & 0xffff;
      if (n === 0) return total;
      if (n > this.inFlightCount) {
        return this.fail('USED_IDX_JUMP', `used.idx moved from ${this.lastUsed} to ${usedIdx} with only ${this.inFlightCount} chains in flight`);
      }
      const u32 = this.u32;
      for (let k = 0; k < n; k++) {
        const e = this.usedRingU32 + 2 * ((this.lastUsed + k) & this.mask);
        const id = u32[e];
        const len = u32[e + 1];
        if (id >= this.size || this.inFlightFlag[id] === 0) {
          return this.fail('BAD_USED_ID', `used entry ${(this.lastUsed + k) & 0xffff} names id ${id}, which is not an in-flight head`);
        }
        if (len > this.writable[id]) {
          return this.fail('USED_LEN_TOO_LARGE', `used entry for head ${id} reports ${len} bytes written, chain has ${this.writable[id]} writable`);
        }
        this.completedTokens[total + k] = this.tokens[id];
        this.completedLens[total + k] = len;
        this.release(id);
      }
      total += n;
      this.lastUsed = usedIdx;
      if (!(this.eventIdx && this.callbacksOn)) return total;
      // Ask for the next interrupt right after what was consumed, then look again: a completion
      // published before used_event was written was judged against the old used_event and will
      // not be signalled (the re-check of Linux's virtqueue_enable_cb).
      Atomics.store(this.u16, this.usedEventI, usedIdx);
      if (Atomics.load(this.u16, this.usedIdxI) === usedIdx) return total;
    }
  }

  private release(head: number): void {
    this.inFlightFlag[head] = 0;
    this.inFlightCount--;
    let last = head;
    for (let k = 1; k < this.chainLen[head]; k++) last = this.freeNext[last];
    this.freeNext[last] = this.freeHead;
    this.freeHead = head;
    this.free += this.chainLen[head];
  }

  private fail(code: DriverQueueErrorCode, message: string): never {
    this.broken = new DriverQueueError(code, message);
    throw this.broken;
  }

  /** The validation error that broke the queue, if any. */
  get error(): DriverQueueError | null {
    return this.broken;
  }

  /** Asks the device not to signal the call eventfd (NO_INTERRUPT, or a stale used_event with EVENT_IDX). */
  disableCalls(): void {
    this.callbacksOn = false;
    if (this.eventIdx) Atomics.store(this.u16, this.usedEventI, (this.lastUsed - 1) & 0xffff);
    else Atomics.store(this.u16, this.availFlagsI, VIRTQ_AVAIL_F_NO_INTERRUPT);
  }

  /** Re-enables calls. Returns true when completions are already pending (reap before sleeping). */
  enableCalls(): boolean {
    this.callbacksOn = true;
    if (this.eventIdx) Atomics.store(this.u16, this.usedEventI, this.lastUsed);
    else Atomics.store(this.u16, this.availFlagsI, 0);
    return Atomics.load(this.u16, this.usedIdxI) !== this.lastUsed;
  }

  /**
   * Waits until the call eventfd is signalled (true) or timeoutMs passes (false), without blocking
   * the event loop. Drains the eventfd.
   */
  waitForCall(timeoutMs: number): Promise<boolean> {
    return waitForEventfd(this.callFd, timeoutMs);
  }

  /** Closes the eventfds. The ring memory belongs to the arena. */
  close(): void {
    if (this.kickFd >= 0) closeFd(this.kickFd);
    if (this.callFd >= 0) closeFd(this.callFd);
    this.kickFd = -1;
    this.callFd = -1;
  }
}
