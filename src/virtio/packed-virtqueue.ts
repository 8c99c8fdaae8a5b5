// The device side of a packed virtqueue (VIRTIO_F_RING_PACKED): pops validated chains from the
// descriptor ring and writes used descriptors back into it, with event suppression
// (ENABLE / DISABLE / DESC) in both directions.
// Positions: the device keeps two, each a ring slot plus a wrap counter (both start at slot 0,
// wrap 1): `avail` (next descriptor to read; its wrap counter equals the driver's there) and `used`
// (next slot to write a used descriptor). A chain of k descriptors moves avail by k when popped and
// used by k when completed, so used never passes avail.
// The guest is hostile: the first violation puts the queue into an error state (pop() returns
// false from then on) and nothing throws from the data-path methods. The normal path allocates nothing.
// Memory ordering (reference/virtio.md): a descriptor's flags are read with Atomics.load before its
// other fields; a used descriptor's id and len are written plainly, then its flags with Atomics.store
// (publishing it, and the full fence before the driver event suppression is read); the device event
// suppression is written with Atomics.store before the re-check of the ring.
import type { GuestMemory } from './guest-memory.ts';
import type { DescriptorChain } from './descriptor-chain.ts';
import type { Virtqueue } from './virtqueue.ts';
import { VirtqueueError } from './virtqueue-error.ts';
import { VIRTQ_DESC_F_WRITE } from './virtio-constants.ts';
import {
  PACKED_INDEX_MASK,
  PACKED_WRAP_BIT,
  PVIRTQ_DESC_ALIGN,
  PVIRTQ_DESC_SIZE,
  PVIRTQ_EVENT_ALIGN,
  PVIRTQ_EVENT_SIZE,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  RING_EVENT_FLAGS_MASK,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
  VIRTQ_PACKED_MAX_SIZE,
} from './packed-ring-constants.ts';
import { isAvailable, walkPackedChain } from './packed-descriptor-walk.ts';

export interface PackedVirtqueueOptions {
  /** Queue size: any integer in [1, 32768] (packed rings need no power of two). */
  size: number;
  /** Guest physical addresses (translate front-end user addresses first): descriptor ring, */
  descGpa: number;
  /** driver event suppression (the Driver Area; vhost-user's "avail" address), */
  driverEventGpa: number;
  /** device event suppression (the Device Area; vhost-user's "used" address). */
  deviceEventGpa: number;
  /** Next descriptor to read: bits 0-14 ring slot (< size), bit 15 driver wrap counter (SET_VRING_BASE). */
  lastAvailIdx: number;
  /**
   * Next slot for a used descriptor, same encoding. Defaults to lastAvailIdx: right whenever nothing
   * was in flight when the ring stopped (see decodePackedVringBase for vhost-user's 32-bit form).
   */
  usedIdx?: number;
  /** VIRTIO_F_EVENT_IDX negotiated (RING_EVENT_FLAGS_DESC allowed). */
  eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  indirect: boolean;
}

/**
 * Splits a packed ring's vhost-user SET_VRING_BASE value: bits 0-15 avail slot + wrap; bits 16-31,
 * when present (QEMU sends them), used slot + wrap. A value without them (<= 0xffff) means used = avail.
 */
export function decodePackedVringBase(num: number): { lastAvailIdx: number; usedIdx: number } {
  const lastAvailIdx = num & 0xffff;
  return { lastAvailIdx, usedIdx: num > 0xffff ? (num >>> 16) & 0xffff : lastAvailIdx };
}

const NOTIFY_UNKNOWN = -1;
const NOTIFY_OFF = 0;
const NOTIFY_ON = 1;

const EMPTY16 = new Uint16Array(0);
const EMPTY32 = new Uint32Array(0);

function hex(v: number): string {
  return '0x' + v.toString(16);
}

function checkIndex(name: string, v: number, size: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff || (v & PACKED_INDEX_MASK) >= size) {
    throw new VirtqueueError('BAD_LAST_AVAIL_IDX', `${name} ${v} is not a 16-bit packed ring position (slot in bits 0-14 below queue size ${size}, wrap in bit 15)`);
  }
}

export class PackedVirtqueue implements Virtqueue {
  readonly size: number;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  readonly descGpa: number;
  readonly driverEventGpa: number;
  readonly deviceEventGpa: number;
  /** Set once the ring is broken; the queue then pops nothing until it is set up again. */
  error: VirtqueueError | null = null;

  private memory: GuestMemory;
  /** The descriptor ring as u16 and u32 words; the event suppression structures as u16 {off_wrap, flags} and one u32. */
  private desc16: Uint16Array = EMPTY16;
  private desc32: Uint32Array = EMPTY32;
  private driverEvent32: Uint32Array = EMPTY32;
  private deviceEvent16: Uint16Array = EMPTY16;
  /** False when the rings do not map (after a failed rebind): nothing may touch them. */
  private mapped = false;
  private availSlot: number;
  private availWrap: number;
  private usedSlot: number;
  private usedWrap: number;
  /** Used position (as a linear index, see linear()) at the last flushUsed(), and descriptors used since. */
  private flushedUsed: number;
  private pendingUsed = 0;
  /** With EVENT_IDX: false until the first flush (what the driver saw before this device took over is unknown). */
  private signalledValid = false;
  private notifyState = NOTIFY_UNKNOWN;

  /** Throws VirtqueueError (BAD_QUEUE_SIZE, RING_MISALIGNED, RING_NOT_MAPPED, BAD_LAST_AVAIL_IDX) when the setup is unusable. */
  constructor(memory: GuestMemory, opts: PackedVirtqueueOptions) {
    const { size, descGpa, driverEventGpa, deviceEventGpa } = opts;
    if (!Number.isInteger(size) || size < 1 || size > VIRTQ_PACKED_MAX_SIZE) {
      throw new VirtqueueError('BAD_QUEUE_SIZE', `packed queue size ${size} is not an integer in [1, ${VIRTQ_PACKED_MAX_SIZE}]`);
    }
    for (const [name, gpa] of [['descriptor ring', descGpa], ['driver event suppression', driverEventGpa], ['device event suppression', deviceEventGpa]] as const) {
      if (!Number.isSafeInteger(gpa) || gpa < 0) throw new VirtqueueError('RING_NOT_MAPPED', `${name} address ${gpa} is not a guest address`);
    }
    if (descGpa % PVIRTQ_DESC_ALIGN !== 0) throw new VirtqueueError('RING_MISALIGNED', `descriptor ring at ${hex(descGpa)} is not ${PVIRTQ_DESC_ALIGN}-byte aligned`);
    if (driverEventGpa % PVIRTQ_EVENT_ALIGN !== 0) throw new VirtqueueError('RING_MISALIGNED', `driver event suppression at ${hex(driverEventGpa)} is not ${PVIRTQ_EVENT_ALIGN}-byte aligned`);
    if (deviceEventGpa % PVIRTQ_EVENT_ALIGN !== 0) throw new VirtqueueError('RING_MISALIGNED', `device event suppression at ${hex(deviceEventGpa)} is not ${PVIRTQ_EVENT_ALIGN}-byte aligned`);
    checkIndex('last avail index', opts.lastAvailIdx, size);
    const usedIdx = opts.usedIdx ?? opts.lastAvailIdx;
    checkIndex('used index', usedIdx, size);
    this.size = size;
    this.eventIdx = opts.eventIdx;
    this.indirect = opts.indirect;
    this.descGpa = descGpa;
    this.driverEventGpa = driverEventGpa;
    this.deviceEventGpa = deviceEventGpa;
    this.memory = memory;
    this.availSlot = opts.lastAvailIdx & PACKED_INDEX_MASK;
    this.availWrap = opts.lastAvailIdx >>> 15;
    this.usedSlot = usedIdx & PACKED_INDEX_MASK;
    this.usedWrap = usedIdx >>> 15;
    // Used trails avail by the descriptors in flight: at most the whole ring.
    const inFlight = this.linear(this.availSlot, this.availWrap) - this.linear(this.usedSlot, this.usedWrap);
    if ((inFlight + 2 * size) % (2 * size) > size) {
      throw new VirtqueueError('BAD_LAST_AVAIL_IDX', `used index ${hex(usedIdx)} is more than the queue size ${size} behind last avail index ${hex(opts.lastAvailIdx)}`);
    }
    this.flushedUsed = this.linear(this.usedSlot, this.usedWrap);
    const err = this.mapRings(memory);
    if (err !== null) throw err;
  }

  /** Next descriptor to read: slot | wrap << 15. */
  get lastAvailIdx(): number {
    return this.availSlot | (this.availWrap << 15);
  }

  /** Next slot for a used descriptor: slot | wrap << 15. */
  get usedIdx(): number {
    return this.usedSlot | (this.usedWrap << 15);
  }

  /** GET_VRING_BASE for a packed ring: avail position in bits 0-15, used position in bits 16-31. */
  get vringBase(): number {
    return (this.lastAvailIdx | (this.usedIdx << 16)) >>> 0;
  }

  /** 1 when the next descriptor is available, else 0 (also when broken). Never breaks the queue. */
  available(): number {
    if (this.error !== null || !this.mapped) return 0;
    return isAvailable(Atomics.load(this.desc16, (this.availSlot << 3) + 7), this.availWrap) ? 1 : 0;
  }

  /**
   * Pops the next chain into `chain` (reset first): chain.head = ring slot of its first descriptor,
   * chain.id = its buffer id, chain.descCount = ring descriptors it occupies. False when empty or broken.
   */
  pop(chain: DescriptorChain): boolean {
    chain.reset();
    if (this.error !== null || !this.mapped) return false;
    const slot = this.availSlot;
    // A descriptor whose AVAIL and USED bits say anything but "available in this lap" is simply not
    // offered yet (the ring starts zeroed; old laps leave used or stale descriptors behind).
    if (!isAvailable(Atomics.load(this.desc16, (slot << 3) + 7), this.availWrap)) return false;
    const err = walkPackedChain(this.memory, this.desc16, this.desc32, this.size, this.indirect, chain, slot, this.availWrap);
    if (err !== null) {
      chain.reset();
      this.error ??= err;
      return false;
    }
    chain.head = slot;
    let next = slot + chain.descCount;
    if (next >= this.size) {
      next -= this.size;
      this.availWrap ^= 1;
    }
    this.availSlot = next;
    return true;
  }

  /**
   * Writes the used descriptor {id, len} for `chain` at the used position and publishes it, then
   * moves the used position by chain.descCount. WRITE is set in it when len > 0 (the spec's "data
   * was written" mark; drivers read len then).
   */
  pushUsed(chain: DescriptorChain, len: number): void {
    if (!this.mapped) return;
    const id = chain.id;
    const n = chain.descCount;
    if (!(id >= 0 && id <= 0xffff && n >= 1 && n <= this.size)) {
      throw new RangeError(`pushUsed: chain with id ${id} and ${n} descriptors was not popped from this queue of size ${this.size}`);
    }
    const slot = this.usedSlot;
    this.desc32[(slot << 2) + 2] = len;
    this.desc16[(slot << 3) + 6] = id;
    const flags = (this.usedWrap !== 0 ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0) | (len > 0 ? VIRTQ_DESC_F_WRITE : 0);
    Atomics.store(this.desc16, (slot << 3) + 7, flags);
    let next = slot + n;
    if (next >= this.size) {
      next -= this.size;
      this.usedWrap ^= 1;
    }
    this.usedSlot = next;
    this.pendingUsed += n;
  }

  /**
   * Used descriptors are visible as soon as pushUsed() writes them; this decides whether the driver
   * wants a notification for those pushed since the last call, from the driver event suppression:
   * DISABLE no; DESC (with EVENT_IDX) when the used position passed desc_event_off/wrap; else yes.
   */
  flushUsed(): boolean {
    if (!this.mapped || this.pendingUsed === 0) return false;
    const old = this.flushedUsed;
    const moved = this.pendingUsed;
    this.flushedUsed = this.linear(this.usedSlot, this.usedWrap);
    this.pendingUsed = 0;
    const valid = this.signalledValid;
    this.signalledValid = true;
    // One load of {off_wrap, flags}: a consistent snapshot (the driver writes off_wrap before flags).
    // The Atomics.store of the last used flags was the full fence before it (fence 1).
    const ev = Atomics.load(this.driverEvent32, 0);
    const flags = (ev >>> 16) & RING_EVENT_FLAGS_MASK;
    if (flags === RING_EVENT_FLAGS_DISABLE) return false;
    if (flags !== RING_EVENT_FLAGS_DESC || !this.eventIdx || !valid) return true;
    const off = ev & PACKED_INDEX_MASK;
    if (off >= this.size) return true; // nonsense offset: an extra interrupt is harmless, a lost one is not
    const event = this.linear(off, (ev & PACKED_WRAP_BIT) !== 0 ? 1 : 0);
    // Notify when the event position lies in [old, old + moved) on the ring of 2 * size positions.
    const ring2 = 2 * this.size;
    return (event - old + ring2) % ring2 < moved;
  }

  /** Asks the driver not to kick: device event flags = DISABLE. */
  disableNotifications(): void {
    if (!this.mapped || this.notifyState === NOTIFY_OFF) return;
    this.notifyState = NOTIFY_OFF;
    Atomics.store(this.deviceEvent16, 1, RING_EVENT_FLAGS_DISABLE);
  }

  /**
   * Asks the driver to kick again (EVENT_IDX: DESC at the next avail position; else ENABLE), then
   * re-checks the next descriptor. True = work arrived meanwhile; false = safe to sleep, or broken.
   */
  enableNotifications(): boolean {
    if (!this.mapped || this.error !== null) return false;
    this.notifyState = NOTIFY_ON;
    if (this.eventIdx) {
      Atomics.store(this.deviceEvent16, 0, this.lastAvailIdx);
      Atomics.store(this.deviceEvent16, 1, RING_EVENT_FLAGS_DESC);
    } else {
      Atomics.store(this.deviceEvent16, 1, RING_EVENT_FLAGS_ENABLE);
    }
    // The Atomics.store above is the full fence before this re-check (fence 2).
    return isAvailable(Atomics.load(this.desc16, (this.availSlot << 3) + 7), this.availWrap);
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

  /** A position as one number in [0, 2 * size): lap parity folded in (wrap 1 = first half). */
  private linear(slot: number, wrap: number): number {
    return wrap !== 0 ? slot : slot + this.size;
  }

  private mapRings(memory: GuestMemory): VirtqueueError | null {
    const descBytes = this.size * PVIRTQ_DESC_SIZE;
    const d = memory.ringView(this.descGpa, descBytes);
    const drv = memory.ringView(this.driverEventGpa, PVIRTQ_EVENT_SIZE);
    const dev = memory.ringView(this.deviceEventGpa, PVIRTQ_EVENT_SIZE);
    if (d === null || drv === null || dev === null) {
      this.unmapRings();
      const [name, gpa, len] =
        d === null ? ['descriptor ring', this.descGpa, descBytes] : drv === null ? ['driver event suppression', this.driverEventGpa, PVIRTQ_EVENT_SIZE] : ['device event suppression', this.deviceEventGpa, PVIRTQ_EVENT_SIZE];
      return new VirtqueueError('RING_NOT_MAPPED', `${name} [${hex(gpa)}, +${len}) is not inside one guest memory region`);
    }
    try {
      this.desc16 = new Uint16Array(d.buffer, d.byteOffset, descBytes >>> 1);
      this.desc32 = new Uint32Array(d.buffer, d.byteOffset, descBytes >>> 2);
      this.driverEvent32 = new Uint32Array(drv.buffer, drv.byteOffset, 1);
      this.deviceEvent16 = new Uint16Array(dev.buffer, dev.byteOffset, 2);
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
    this.desc16 = EMPTY16;
    this.desc32 = EMPTY32;
    this.driverEvent32 = EMPTY32;
    this.deviceEvent16 = EMPTY16;
  }
}
