// Driver side of a packed virtqueue (VIRTIO_F_RING_PACKED) in arena memory: buffer ids, wrap
// counters, chains written into consecutive ring slots (or one indirect table per id), the head's
// flags written last (at publish), kicks honouring the device event suppression structure, and
// validated reaping of used descriptors. The submit/complete path allocates nothing.
import { eventfdCreate, eventfdSignal } from '../sys/eventfd.ts';
import { closeFd } from '../sys/fd.ts';
import type { GuestMemoryArena } from './guest-memory-arena.ts';
import { DriverQueueError, waitForEventfd, type BufferList, type DriverQueue, type DriverQueueErrorCode } from './driver-queue.ts';
import {
  PACKED_DESC_SIZE, PACKED_EVENT_SIZE, PACKED_INITIAL_VRING_BASE, PACKED_MAX_SIZE, PackedRingMemory,
  RING_EVENT_FLAGS_DESC, RING_EVENT_FLAGS_DISABLE, RING_EVENT_FLAGS_ENABLE, RING_EVENT_WRAP_SHIFT,
  VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_USED, VIRTQ_DESC_F_WRITE,
} from './packed-ring-memory.ts';

export interface PackedQueueOptions {
  /** Queue size in [1, 32768]; need not be a power of two. */
  size: number;
  /** Arena region for the ring, the event structures and indirect tables (default 0). */
  regionIndex?: number;
  /** Descriptors per preallocated indirect table (one per buffer id); 0 disables indirect (default 0). */
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
const AVAIL_USED = VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED;

export class DriverPackedQueue implements DriverQueue {
  readonly kind = 'packed' as const;
  readonly size: number;
  readonly descGpa: number;
  readonly driverEventGpa: number;
  readonly deviceEventGpa: number;
  readonly indirectMax: number;
  /** Unvalidated access to the ring (hostile tests; playing the device in tests). */
  readonly raw: PackedRingMemory;
  kickFd: number;
  callFd: number;
  eventIdx: boolean;
  readonly completedTokens: Float64Array;
  readonly completedLens: Uint32Array;
  kicks = 0;
  kicksSuppressed = 0;

  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  // Region-relative indices: the descriptor ring (u32 and u16), the event structures.
  private readonly descU32: number;
  private readonly descU16: number;
  private readonly driverEventI: number;
  private readonly deviceEventU32: number;
  private readonly indirectGpa: number;
  private readonly indirectU32: number;
  private readonly indirectU16: number;

  // Per buffer id.
  private readonly idNext: Uint16Array;
  private readonly descCount: Uint16Array;
  private readonly tokens: Float64Array;
  private readonly writable: Float64Array;
  private readonly inFlightFlag: Uint8Array;
  private idFreeHead = 0;
  private idsFree: number;
  // Heads whose flags wait for publish(): ring slot and flags value, in ring order.
  private readonly pendingSlot: Uint16Array;
  private readonly pendingFlags: Uint16Array;
  private pendingCount = 0;

  private nextAvail = 0;
  private availWrap = 1;
  private lastUsed = 0;
  private usedWrap = 1;
  private free: number;
  private inFlightCount = 0;
  /** Ring slots made available since the last kick (Linux's num_added). */
  private slotsAdded = 0;
  private callbacksOn = true;
  private broken: DriverQueueError | null = null;

  constructor(arena: GuestMemoryArena, opts: PackedQueueOptions) {
    const n = opts.size;
    if (!Number.isInteger(n) || n < 1 || n > PACKED_MAX_SIZE) {
      throw new DriverQueueError('BAD_QUEUE_SIZE', `packed queue size ${n} is not in [1, ${PACKED_MAX_SIZE}]`);
    }
    const ri = opts.regionIndex ?? 0;
    this.size = n;
    this.indirectMax = opts.indirectMax ?? 0;
    this.eventIdx = opts.eventIdx ?? false;
    this.descGpa = arena.alloc(PACKED_DESC_SIZE * n, 4096, ri);
    arena.allocFilled(64, RING_GAP_POISON, 64, ri);
    this.driverEventGpa = arena.alloc(PACKED_EVENT_SIZE, 64, ri);
    arena.allocFilled(64, RING_GAP_POISON, 64, ri);
    this.deviceEventGpa = arena.alloc(PACKED_EVENT_SIZE, 64, ri);
    this.indirectGpa = this.indirectMax > 0 ? arena.alloc(n * this.indirectMax * PACKED_DESC_SIZE, 4096, ri) : 0;
    const region = arena.regions[ri];
    this.u16 = region.u16;
    this.u32 = region.u32;
    const base = region.guestPhysAddr;
    this.descU32 = (this.descGpa - base) / 4;
    this.descU16 = (this.descGpa - base) / 2;
    this.driverEventI = (this.driverEventGpa - base) / 2;
    this.deviceEventU32 = (this.deviceEventGpa - base) / 4;
    this.indirectU32 = (this.indirectGpa - base) / 4;
    this.indirectU16 = (this.indirectGpa - base) / 2;
    this.raw = new PackedRingMemory(arena, n, this.descGpa, this.driverEventGpa, this.deviceEventGpa);

    this.idNext = new Uint16Array(n);
    for (let i = 0; i < n; i++) this.idNext[i] = (i + 1) & 0xffff;
    this.idsFree = n;
    this.free = n;
    this.descCount = new Uint16Array(n);
    this.tokens = new Float64Array(n);
    this.writable = new Float64Array(n);
    this.inFlightFlag = new Uint8Array(n);
    this.pendingSlot = new Uint16Array(n);
    this.pendingFlags = new Uint16Array(n);
    this.completedTokens = new Float64Array(n);
    this.completedLens = new Uint32Array(n);
    this.kickFd = opts.kickFd === false ? -1 : eventfdCreate();
    this.callFd = opts.callFd === false ? -1 : eventfdCreate();
  }

  get driverAreaGpa(): number {
    return this.driverEventGpa;
  }
  get deviceAreaGpa(): number {
    return this.deviceEventGpa;
  }
  get initialVringBase(): number {
    return PACKED_INITIAL_VRING_BASE;
  }
  get numFree(): number {
    return this.free;
  }
  get inFlight(): number {
    return this.inFlightCount;
  }
  /** Next ring slot the driver fills, and the driver ring wrap counter. */
  get nextAvailSlot(): number {
    return this.nextAvail;
  }
  get availWrapCounter(): number {
    return this.availWrap;
  }
  /** Next ring slot where the driver expects a used descriptor, and the used wrap counter. */
  get lastUsedSlot(): number {
    return this.lastUsed;
  }
  get usedWrapCounter(): number {
    return this.usedWrap;
  }
  get error(): DriverQueueError | null {
    return this.broken;
  }

  /**
   * Writes a chain of out then in buffers into the next ring slots (or into the id's indirect
   * table) under a free buffer id; every descriptor carries the id. The head's flags are held back
   * until publish(), so the device never sees a partial chain. Returns the id, or -1 when the ring
   * has too few free slots.
   */
  add(out: BufferList, inb: BufferList, token: number, indirect = false): number {
    if (this.broken) throw this.broken;
    const total = out.count + inb.count;
    if (total === 0) throw new DriverQueueError('EMPTY_CHAIN', 'a chain needs at least one buffer');
    let writableBytes = 0;
    for (let k = 0; k < inb.count; k++) writableBytes += inb.lens[k];
    const slots = indirect ? 1 : total;
    if (indirect) {
      if (total > this.indirectMax) throw new DriverQueueError('CHAIN_TOO_LONG', `${total} buffers exceed the indirect table size ${this.indirectMax}`);
    } else if (total > this.size) {
      throw new DriverQueueError('CHAIN_TOO_LONG', `${total} buffers exceed the queue size ${this.size}`);
    }
    if (this.free < slots || this.idsFree < 1) return -1;
    const id = this.idFreeHead;
    this.idFreeHead = this.idNext[id];
    this.idsFree--;
    const head = this.nextAvail;
    const headWrap = this.availWrap;
    let headFlags: number;
    if (indirect) {
      // Indirect entries carry only WRITE; id is reserved there (the spec says the device ignores it).
      const tableOff = id * this.indirectMax * PACKED_DESC_SIZE;
      for (let k = 0; k < total; k++) {
        const isIn = k >= out.count;
        const j = isIn ? k - out.count : k;
        this.writeDesc(this.indirectU32 + (tableOff >> 2) + 4 * k, this.indirectU16 + (tableOff >> 1) + 8 * k,
          isIn ? inb.gpas[j] : out.gpas[j], isIn ? inb.lens[j] : out.lens[j], 0, isIn ? VIRTQ_DESC_F_WRITE : 0);
      }
      this.writeDesc(this.descU32 + 4 * head, this.descU16 + 8 * head, this.indirectGpa + tableOff, total * PACKED_DESC_SIZE, id, -1);
      headFlags = VIRTQ_DESC_F_INDIRECT;
      this.advance();
    } else {
      headFlags = 0;
      for (let k = 0; k < total; k++) {
        const isIn = k >= out.count;
        const j = isIn ? k - out.count : k;
        const slot = this.nextAvail;
        // Slots after a wrap in the middle of the chain carry the new wrap counter.
        const flags = (isIn ? VIRTQ_DESC_F_WRITE : 0) | (k === total - 1 ? 0 : VIRTQ_DESC_F_NEXT) |
          (this.availWrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED);
        if (k === 0) {
          headFlags = flags;
          this.writeDesc(this.descU32 + 4 * slot, this.descU16 + 8 * slot, isIn ? inb.gpas[j] : out.gpas[j], isIn ? inb.lens[j] : out.lens[j], id, -1);
        } else {
          this.writeDesc(this.descU32 + 4 * slot, this.descU16 + 8 * slot, isIn ? inb.gpas[j] : out.gpas[j], isIn ? inb.lens[j] : out.lens[j], id, flags);
        }
        this.advance();
      }
    }
    if (indirect) headFlags |= headWrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
    this.pendingSlot[this.pendingCount] = head;
    this.pendingFlags[this.pendingCount] = headFlags;
    this.pendingCount++;
    this.free -= slots;
    this.slotsAdded += slots;
    this.descCount[id] = slots;
    this.tokens[id] = token;
    this.writable[id] = writableBytes;
    this.inFlightFlag[id] = 1;
    this.inFlightCount++;
    return id;
  }

  private advance(): void {
    if (++this.nextAvail === this.size) {
      this.nextAvail = 0;
      this.availWrap ^= 1;
    }
  }

  /** flags < 0: leave the flags field alone (a head, published later). */
  private writeDesc(iU32: number, iU16: number, addr: number, len: number, id: number, flags: number): void {
    const u32 = this.u32;
    u32[iU32] = addr % TWO32;
    u32[iU32 + 1] = Math.floor(addr / TWO32);
    u32[iU32 + 2] = len;
    this.u16[iU16 + 6] = id;
    if (flags >= 0) this.u16[iU16 + 7] = flags;
  }

  /**
   * Writes the held-back head flags, last to first, the first with Atomics.store: the device polls
   * only the first, and sees it after everything else (Atomics.store is a JIT and CPU barrier).
   */
  publish(): void {
    const n = this.pendingCount;
    if (n === 0) return;
    const base = this.descU16 + 7;
    for (let k = n - 1; k > 0; k--) this.u16[base + 8 * this.pendingSlot[k]] = this.pendingFlags[k];
    Atomics.store(this.u16, base + 8 * this.pendingSlot[0], this.pendingFlags[0]);
    this.pendingCount = 0;
  }

  /**
   * Publishes, then signals the kick eventfd unless the device event suppression structure says
   * not to: DISABLE never, DESC only when the slot it names (offset + wrap) was filled since the
   * last kick (Linux's virtqueue_kick_prepare_packed), anything else always.
   */
  kick(): boolean {
    this.publish();
    // Atomics.load orders the suppression read after the flags store (which was a full fence).
    const v = Atomics.load(this.u32, this.deviceEventU32);
    const added = this.slotsAdded;
    this.slotsAdded = 0;
    if (added === 0) return false;
    const offWrap = v & 0xffff;
    const flags = v >>> 16;
    let notify: boolean;
    if (flags === RING_EVENT_FLAGS_DESC) {
      const now = this.nextAvail;
      let event = offWrap & 0x7fff;
      if ((offWrap >>> RING_EVENT_WRAP_SHIFT) !== this.availWrap) event -= this.size;
      notify = added >= this.size || ((now - event - 1) & 0xffff) < ((added) & 0xffff);
    } else {
      notify = flags !== RING_EVENT_FLAGS_DISABLE;
    }
    if (notify && this.kickFd >= 0) {
      eventfdSignal(this.kickFd);
      this.kicks++;
      return true;
    }
    this.kicksSuppressed++;
    return false;
  }

  notify(): void {
    if (this.kickFd >= 0) eventfdSignal(this.kickFd);
    this.kicks++;
  }

  /**
   * Reaps used descriptors (AVAIL == USED == used wrap counter) from the driver's position, each
   * advancing it by the descriptor count of its buffer id. Validates what the device wrote: the id
   * must be in flight and len must not exceed the buffer's writable bytes; a violation breaks the
   * queue. len is taken whether or not the device set WRITE (QEMU does not set it).
   */
  pollUsed(): number {
    if (this.broken) throw this.broken;
    const u16 = this.u16;
    let n = 0;
    for (;;) {
      while (this.inFlightCount > 0 || n === 0) {
        const slot = this.lastUsed;
        const flags = Atomics.load(u16, this.descU16 + 8 * slot + 7);
        const used = (flags & AVAIL_USED) === (this.usedWrap ? AVAIL_USED : 0);
        if (!used) break;
        const id = u16[this.descU16 + 8 * slot + 6];
        const len = this.u32[this.descU32 + 4 * slot + 2];
        if (id >= this.size || this.inFlightFlag[id] === 0) {
          return this.fail('BAD_USED_ID', `used descriptor in slot ${slot} names buffer id ${id}, which is not in flight`);
        }
        if (len > this.writable[id]) {
          return this.fail('USED_LEN_TOO_LARGE', `used descriptor for buffer id ${id} reports ${len} bytes written, buffer has ${this.writable[id]} writable`);
        }
        this.completedTokens[n] = this.tokens[id];
        this.completedLens[n] = len;
        n++;
        this.lastUsed += this.descCount[id];
        if (this.lastUsed >= this.size) {
          this.lastUsed -= this.size;
          this.usedWrap ^= 1;
        }
        this.release(id);
      }
      // With EVENT_IDX, ask for the next interrupt at the slot after what we have consumed.
      if (!(n > 0 && this.eventIdx && this.callbacksOn)) return n;
      Atomics.store(u16, this.driverEventI, this.usedOffWrap());
      // Look again after asking for the next interrupt: a descriptor used before the event offset was
      // written was judged against the old one and will not be signalled.
      const next = Atomics.load(u16, this.descU16 + 8 * this.lastUsed + 7);
      if ((next & AVAIL_USED) !== (this.usedWrap ? AVAIL_USED : 0) || this.inFlightCount === 0) return n;
    }
  }

  private usedOffWrap(): number {
    return this.lastUsed | (this.usedWrap << RING_EVENT_WRAP_SHIFT);
  }

  private release(id: number): void {
    this.inFlightFlag[id] = 0;
    this.inFlightCount--;
    this.free += this.descCount[id];
    this.idNext[id] = this.idFreeHead;
    this.idFreeHead = id;
    this.idsFree++;
  }

  private fail(code: DriverQueueErrorCode, message: string): never {
    this.broken = new DriverQueueError(code, message);
    throw this.broken;
  }

  /** Driver event suppression: DISABLE. */
  disableCalls(): void {
    this.callbacksOn = false;
    Atomics.store(this.u16, this.driverEventI + 1, RING_EVENT_FLAGS_DISABLE);
  }

  /**
   * ENABLE, or with EVENT_IDX: DESC at the next used slot. Atomics.store is the fence before the
   * re-check; returns true when a used descriptor is already waiting.
   */
  enableCalls(): boolean {
    this.callbacksOn = true;
    if (this.eventIdx) {
      Atomics.store(this.u16, this.driverEventI, this.usedOffWrap());
      Atomics.store(this.u16, this.driverEventI + 1, RING_EVENT_FLAGS_DESC);
    } else {
      Atomics.store(this.u16, this.driverEventI + 1, RING_EVENT_FLAGS_ENABLE);
    }
    const flags = Atomics.load(this.u16, this.descU16 + 8 * this.lastUsed + 7);
    return this.inFlightCount > 0 && (flags & AVAIL_USED) === (this.usedWrap ? AVAIL_USED : 0);
  }

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
