// The device side of a split virtqueue: pops validated descriptor chains from the avail ring and
// completes them into the used ring, with notification suppression (NO_NOTIFY / EVENT_IDX).
// The guest is hostile: every index, length and address read from the rings is checked; the first
// violation puts the queue into an error state (pop() returns false from then on) and nothing throws
// out of the data-path methods. The normal path allocates nothing.
// Memory ordering (reference/virtio.md): avail.idx is read with Atomics.load, ring entries and
// descriptors plainly; used elements are written plainly and used.idx published with Atomics.store;
// the notification-enable field is written with Atomics.store before the final re-check.
import type { GuestMemory } from './guest-memory.ts';
import type { DescriptorChain } from './descriptor-chain.ts';
import type { Virtqueue } from './virtqueue.ts';
import { VirtqueueError, type VirtqueueErrorCode } from './virtqueue-error.ts';
import type { SplitInflightLog } from './split-inflight.ts';
import { ADDR_HI_LIMIT, appendGuestSegments, hex64, SEG_FULL, SEG_UNMAPPED } from './guest-segments.ts';
import {
  VIRTQ_AVAIL_ALIGN,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_ALIGN,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_MAX_SIZE,
  VIRTQ_USED_ALIGN,
  VIRTQ_USED_F_NO_NOTIFY,
  availRingBytes,
  usedRingBytes,
  vringNeedEvent,
} from './virtio-constants.ts';

export interface SplitVirtqueueOptions {
  /** Queue size N: a power of two, at most 32768. */
  size: number;
  /** Guest physical addresses of the rings (translate front-end user addresses first). */
  descGpa: number;
  availGpa: number;
  usedGpa: number;
  /** Next avail index to process (SET_VRING_BASE), free-running u16. */
  lastAvailIdx: number;
  /** VIRTIO_RING_F_EVENT_IDX negotiated. */
  eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  indirect: boolean;
  /**
   * Inflight tracking (INFLIGHT_SHMFD). Its record decides where the ring resumes (lastAvailIdx is
   * used only for a fresh record) and which heads pop() hands out again first.
   */
  inflight?: SplitInflightLog | null;
}

const TWO_32 = 0x100000000;
const MAX_CHAIN_BYTES = 0xffffffff;
const NOTIFY_UNKNOWN = -1;
const NOTIFY_OFF = 0;
const NOTIFY_ON = 1;

const EMPTY16 = new Uint16Array(0);
const EMPTY32 = new Uint32Array(0);

function hex(v: number): string {
  return '0x' + v.toString(16);
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export class SplitVirtqueue implements Virtqueue {
  readonly size: number;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  readonly descGpa: number;
  readonly availGpa: number;
  readonly usedGpa: number;
  /** Next avail ring index to pop (free-running u16). */
  lastAvailIdx: number;
  /** Set once the ring is broken; the queue then pops nothing until it is set up again. */
  error: VirtqueueError | null = null;

  private memory: GuestMemory;
  private readonly mask: number;
  /** Rings: descriptors as u32 words and u16 halves; avail as u16; used as u16 and u32. */
  private desc32: Uint32Array = EMPTY32;
  private desc16: Uint16Array = EMPTY16;
  private avail: Uint16Array = EMPTY16;
  private used16: Uint16Array = EMPTY16;
  private used32: Uint32Array = EMPTY32;
  /** False when the rings do not map (after a failed rebind): nothing may touch them. */
  private mapped = false;
  /** avail.idx as last loaded. */
  private shadowAvailIdx: number;
  /** Next used index to write (pushed, maybe not published). */
  private nextUsedIdx: number;
  /** used.idx as last published. */
  private publishedUsedIdx: number;
  /** With EVENT_IDX: false until the first flush (we cannot know what the driver saw before). */
  private signalledValid = false;
  private notifyState = NOTIFY_UNKNOWN;
  private readonly inflight: SplitInflightLog | null;
  /** Heads the crashed back-end had popped and not completed: popped again first, oldest first. */
  private resubmit: Uint16Array = EMPTY16;
  private resubmitPos = 0;

  /** Throws VirtqueueError (BAD_QUEUE_SIZE, RING_MISALIGNED, RING_NOT_MAPPED) when the setup is unusable. */
  constructor(memory: GuestMemory, opts: SplitVirtqueueOptions) {
    const { size, descGpa, availGpa, usedGpa } = opts;
    if (!isPowerOfTwo(size) || size > VIRTQ_MAX_SIZE) {
      throw new VirtqueueError('BAD_QUEUE_SIZE', `queue size ${size} is not a power of two in [1, ${VIRTQ_MAX_SIZE}]`);
    }
    for (const [name, gpa] of [['descriptor table', descGpa], ['avail ring', availGpa], ['used ring', usedGpa]] as const) {
      if (!Number.isSafeInteger(gpa) || gpa < 0) throw new VirtqueueError('RING_NOT_MAPPED', `${name} address ${gpa} is not a guest address`);
    }
    if (descGpa % VIRTQ_DESC_ALIGN !== 0) throw new VirtqueueError('RING_MISALIGNED', `descriptor table at ${hex(descGpa)} is not ${VIRTQ_DESC_ALIGN}-byte aligned`);
    if (availGpa % VIRTQ_AVAIL_ALIGN !== 0) throw new VirtqueueError('RING_MISALIGNED', `avail ring at ${hex(availGpa)} is not ${VIRTQ_AVAIL_ALIGN}-byte aligned`);
    if (usedGpa % VIRTQ_USED_ALIGN !== 0) throw new VirtqueueError('RING_MISALIGNED', `used ring at ${hex(usedGpa)} is not ${VIRTQ_USED_ALIGN}-byte aligned`);
    if (!Number.isInteger(opts.lastAvailIdx) || opts.lastAvailIdx < 0) {
      throw new VirtqueueError('BAD_LAST_AVAIL_IDX', `last avail index ${opts.lastAvailIdx} is not a non-negative integer`);
    }
    this.size = size;
    this.mask = size - 1;
    this.eventIdx = opts.eventIdx;
    this.indirect = opts.indirect;
    this.descGpa = descGpa;
    this.availGpa = availGpa;
    this.usedGpa = usedGpa;
    this.memory = memory;
    this.lastAvailIdx = opts.lastAvailIdx & 0xffff;
    this.shadowAvailIdx = this.lastAvailIdx;
    const err = this.mapRings(memory);
    if (err !== null) throw err;
    // used.idx in guest memory is the truth after a restart (the guest has seen up to it).
    this.nextUsedIdx = Atomics.load(this.used16, 1);
    this.publishedUsedIdx = this.nextUsedIdx;
    this.inflight = opts.inflight ?? null;
    if (this.inflight !== null) {
      const r = this.inflight.recover(this.nextUsedIdx, this.used32, this.mask, this.lastAvailIdx);
      this.lastAvailIdx = r.lastAvailIdx;
      this.shadowAvailIdx = r.lastAvailIdx;
      this.resubmit = r.resubmit;
    }
  }

  /** Started over a record of this ring kept by the front-end (see SplitInflightLog.resumed). */
  get resumedFromInflight(): boolean {
    return this.inflight !== null && this.inflight.resumed;
  }

  /** Heads recovered from the inflight record and not popped again yet. */
  get resubmitPending(): number {
    return this.resubmit.length - this.resubmitPos;
  }

  /** The next used index to be written (pushed elements included, published or not). */
  get usedIdx(): number {
    return this.nextUsedIdx;
  }

  /** GET_VRING_BASE: for a split ring just the last avail index (used.idx lives in guest memory). */
  get vringBase(): number {
    return this.lastAvailIdx;
  }

  /** Heads available and not yet popped; 0 when broken. Breaks the queue on an avail.idx jump > size. */
  available(): number {
    if (this.error !== null) return 0;
    const idx = Atomics.load(this.avail, 1);
    const n = (idx - this.lastAvailIdx) & 0xffff;
    if (n > this.size) {
      this.fail('AVAIL_IDX_JUMP', `avail idx ${idx} is ${n} ahead of last avail idx ${this.lastAvailIdx}, more than queue size ${this.size}`);
      return 0;
    }
    this.shadowAvailIdx = idx;
    return n + this.resubmitPending;
  }

  /** Pops the next chain into `chain` (reset first). False when empty or broken (see `error`). */
  pop(chain: DescriptorChain): boolean {
    chain.reset();
    if (this.error !== null) return false;
    // A head from before a back-end restart: still marked in the record, the avail ring is past it.
    if (this.resubmitPending > 0) return this.take(chain, this.resubmit[this.resubmitPos++]);
    if (this.lastAvailIdx === this.shadowAvailIdx && this.available() === 0) return false;
    const slot = this.lastAvailIdx & this.mask;
    const head = this.avail[2 + slot];
    if (head >= this.size) {
      return this.fail('HEAD_OUT_OF_RANGE', `avail ring slot ${slot} (avail idx ${this.lastAvailIdx}): head ${head} >= queue size ${this.size}`);
    }
    if (!this.take(chain, head)) return false;
    this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
    if (this.inflight !== null) this.inflight.popped(head);
    return true;
  }

  /** Walks `head` into `chain`; false (chain reset, queue broken) when the chain is invalid. */
  private take(chain: DescriptorChain, head: number): boolean {
    if (!this.walk(chain, head)) {
      chain.reset();
      return false;
    }
    chain.head = head;
    chain.id = head;
    return true;
  }

  /** Writes a used element {chain.id, len} (visible to the driver at the next flushUsed()). */
  pushUsed(chain: DescriptorChain, len: number): void;
  /** The same by head index (the form devices used before the Virtqueue interface). */
  pushUsed(head: number, len: number): void;
  pushUsed(chainOrHead: DescriptorChain | number, len: number): void {
    if (!this.mapped) return;
    const head = typeof chainOrHead === 'number' ? chainOrHead : chainOrHead.id;
    if (!(head >= 0 && head < this.size)) throw new RangeError(`pushUsed: head ${head} outside queue of size ${this.size}`);
    const w = 1 + ((this.nextUsedIdx & this.mask) << 1);
    this.used32[w] = head;
    this.used32[w + 1] = len;
    this.nextUsedIdx = (this.nextUsedIdx + 1) & 0xffff;
  }

  /**
   * Publishes used.idx when something was pushed. Returns true when the driver asked to be
   * notified: with EVENT_IDX when the new index passed used_event, else unless avail.flags has
   * NO_INTERRUPT.
   */
  flushUsed(): boolean {
    if (!this.mapped || this.nextUsedIdx === this.publishedUsedIdx) return false;
    const old = this.publishedUsedIdx;
    const now = this.nextUsedIdx;
    // Atomics.store is also the full fence between this store and the loads below (fence 1).
    Atomics.store(this.used16, 1, now);
    this.publishedUsedIdx = now;
    if (this.inflight !== null) this.inflight.published(old, now, this.used32, this.mask);
    if (this.eventIdx) {
      const usedEvent = this.avail[2 + this.size];
      if (!this.signalledValid) {
        this.signalledValid = true;
        return true;
      }
      return vringNeedEvent(usedEvent, now, old);
    }
    return (this.avail[0] & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /** Asks the driver not to kick (NO_NOTIFY; with EVENT_IDX avail_event simply stops moving). */
  disableNotifications(): void {
    if (!this.mapped || this.notifyState === NOTIFY_OFF) return;
    this.notifyState = NOTIFY_OFF;
    if (!this.eventIdx) Atomics.store(this.used16, 0, VIRTQ_USED_F_NO_NOTIFY);
  }

  /**
   * Asks the driver to kick again, then re-checks avail.idx. True = work arrived meanwhile: keep
   * polling (a kick for it may never come). False = safe to sleep on the kick fd. False when broken.
   */
  enableNotifications(): boolean {
    if (!this.mapped || this.error !== null) return false;
    this.notifyState = NOTIFY_ON;
    // Atomics.store is the full fence before the re-check (fence 2).
    if (this.eventIdx) Atomics.store(this.used16, 2 + 4 * this.size, this.lastAvailIdx);
    else Atomics.store(this.used16, 0, 0);
    return Atomics.load(this.avail, 1) !== this.lastAvailIdx || this.resubmitPending > 0;
  }

  /**
   * The memory table was replaced: re-create the ring views over `memory`. When the rings no longer
   * map, the queue is broken (RING_NOT_MAPPED), never touches memory again, and the error is thrown.
   */
  rebind(memory: GuestMemory): void {
    this.memory = memory;
    const err = this.mapRings(memory);
    if (err !== null) {
      this.error ??= err;
      throw err;
    }
  }

  private mapRings(memory: GuestMemory): VirtqueueError | null {
    const n = this.size;
    const descBytes = n * VIRTQ_DESC_SIZE;
    const availBytes = availRingBytes(n, this.eventIdx);
    const usedBytes = usedRingBytes(n, this.eventIdx);
    const d = memory.ringView(this.descGpa, descBytes);
    const a = memory.ringView(this.availGpa, availBytes);
    const u = memory.ringView(this.usedGpa, usedBytes);
    if (d === null || a === null || u === null) {
      this.unmapRings();
      const [name, gpa, len] = d === null ? ['descriptor table', this.descGpa, descBytes] : a === null ? ['avail ring', this.availGpa, availBytes] : ['used ring', this.usedGpa, usedBytes];
      return new VirtqueueError('RING_NOT_MAPPED', `${name} [${hex(gpa)}, +${len}) is not inside one guest memory region`);
    }
    try {
      this.desc32 = new Uint32Array(d.buffer, d.byteOffset, descBytes >>> 2);
      this.desc16 = new Uint16Array(d.buffer, d.byteOffset, descBytes >>> 1);
      this.avail = new Uint16Array(a.buffer, a.byteOffset, availBytes >>> 1);
      this.used16 = new Uint16Array(u.buffer, u.byteOffset, usedBytes >>> 1);
      this.used32 = new Uint32Array(u.buffer, u.byteOffset, 1 + 2 * n);
    } catch (e) {
      // Only a view maker that breaks the ring alignment gets here (the default views start at byteOffset 0).
      this.unmapRings();
      return new VirtqueueError('RING_MISALIGNED', `ring views are misaligned in their buffers: ${String(e)}`);
    }
    this.mapped = true;
    return null;
  }

  private unmapRings(): void {
    this.mapped = false;
    this.desc32 = EMPTY32;
    this.desc16 = EMPTY16;
    this.avail = EMPTY16;
    this.used16 = EMPTY16;
    this.used32 = EMPTY32;
  }

  private fail(code: VirtqueueErrorCode, message: string): false {
    this.error ??= new VirtqueueError(code, message);
    return false;
  }

  /** Follows the chain from `head` (already < size) and fills `chain`; false (error set) on any violation. */
  private walk(chain: DescriptorChain, head: number): boolean {
    const mem = this.memory;
    let table = -1; // -1: the queue's descriptor table; else the region holding the indirect table
    let tableOff = 0;
    let tableGpa = 0;
    let limit = this.size;
    let i = head;
    let seen = 0;
    let writable = false;
    let total = 0;
    let ringDescs = 0; // descriptors of the queue's own table (an indirect table counts once)
    for (;;) {
      let lo: number, hi: number, len: number, flags: number, next: number;
      if (table < 0) {
        const w = i << 2;
        lo = this.desc32[w];
        hi = this.desc32[w + 1];
        len = this.desc32[w + 2];
        flags = this.desc16[(i << 3) + 6];
        next = this.desc16[(i << 3) + 7];
        ringDescs++;
      } else {
        const dv = mem.views[table];
        const o = tableOff + i * VIRTQ_DESC_SIZE;
        lo = dv.getUint32(o, true);
        hi = dv.getUint32(o + 4, true);
        len = dv.getUint32(o + 8, true);
        flags = dv.getUint16(o + 12, true);
        next = dv.getUint16(o + 14, true);
      }
      seen++;
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (table >= 0) {
          return this.fail('INDIRECT_NESTED', `chain ${head}: entry ${i} of the indirect table at ${hex(tableGpa)} is itself indirect`);
        }
        if (!this.indirect) {
          return this.fail('INDIRECT_NOT_NEGOTIATED', `chain ${head}: descriptor ${i} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated`);
        }
        if ((flags & VIRTQ_DESC_F_NEXT) !== 0) {
          return this.fail('INDIRECT_WITH_NEXT', `chain ${head}: descriptor ${i} has both INDIRECT and NEXT (flags ${hex(flags)})`);
        }
        if (len === 0 || len % VIRTQ_DESC_SIZE !== 0 || len > VIRTQ_MAX_SIZE * VIRTQ_DESC_SIZE) {
          return this.fail('INDIRECT_BAD_LENGTH', `chain ${head}: descriptor ${i} names an indirect table of ${len} bytes (must be a non-zero multiple of 16, at most ${VIRTQ_MAX_SIZE} entries)`);
        }
        const gpa = hi < ADDR_HI_LIMIT ? hi * TWO_32 + lo : -1;
        const r = gpa < 0 ? -1 : mem.findRegion(gpa, len);
        if (r < 0) {
          return this.fail('ADDRESS_NOT_MAPPED', `chain ${head}: descriptor ${i}: indirect table [${hex64(hi, lo)}, +${len}) is not inside one guest memory region`);
        }
        table = r;
        tableGpa = gpa;
        tableOff = gpa - mem.starts[r];
        limit = len / VIRTQ_DESC_SIZE;
        i = 0;
        seen = 0;
        continue;
      }
      if (len !== 0) {
        const isWrite = (flags & VIRTQ_DESC_F_WRITE) !== 0;
        if (isWrite) writable = true;
        else if (writable) {
          return this.fail('READABLE_AFTER_WRITABLE', `chain ${head}: ${table < 0 ? 'descriptor' : 'indirect entry'} ${i} is device-readable after a device-writable one`);
        }
        total += len;
        if (total > MAX_CHAIN_BYTES) {
          return this.fail('CHAIN_TOO_LONG', `chain ${head}: total length ${total} at ${table < 0 ? 'descriptor' : 'indirect entry'} ${i} exceeds ${MAX_CHAIN_BYTES}`);
        }
        const seg = appendGuestSegments(this.memory, isWrite ? chain.in : chain.out, hi, lo, len);
        if (seg === SEG_UNMAPPED) {
          return this.fail('ADDRESS_NOT_MAPPED', `chain ${head}: ${table < 0 ? 'descriptor' : 'indirect entry'} ${i}: [${hex64(hi, lo)}, +${len}) is not inside mapped guest memory`);
        }
        if (seg === SEG_FULL) {
          return this.fail('TOO_MANY_SEGMENTS', `chain ${head}: ${table < 0 ? 'descriptor' : 'indirect entry'} ${i}: more than ${chain.out.capacity} ${isWrite ? 'writable' : 'readable'} segments`);
        }
      }
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) {
        chain.descCount = ringDescs;
        return true;
      }
      if (next >= limit) {
        return this.fail('NEXT_OUT_OF_RANGE', `chain ${head}: ${table < 0 ? 'descriptor' : 'indirect entry'} ${i}: next ${next} >= ${table < 0 ? 'queue size' : 'indirect table length'} ${limit}`);
      }
      if (seen >= limit) {
        return this.fail('DESC_LOOP', `chain ${head}: more than ${limit} descriptors in the ${table < 0 ? 'descriptor table' : 'indirect table'} (a loop at ${i} -> ${next})`);
      }
      i = next;
    }
  }
}
