// Packed virtqueue layout (virtio 1.1+, "Packed Virtqueues"): the descriptor ring and the two
// event suppression structures, plus an unvalidated view for hostile tests and for playing the
// device in tests. Control plane and tests only: accessors here may allocate.
import type { GuestMemoryArena, GuestMemoryRegion } from './guest-memory-arena.ts';

// Descriptor flags (NEXT, WRITE, INDIRECT are shared with the split ring).
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_DESC_F_AVAIL = 1 << 7;
export const VIRTQ_DESC_F_USED = 1 << 15;

// Event suppression flags.
export const RING_EVENT_FLAGS_ENABLE = 0x0;
export const RING_EVENT_FLAGS_DISABLE = 0x1;
export const RING_EVENT_FLAGS_DESC = 0x2;
/** Bit 15 of off_wrap (and of a vhost-user packed ring base) carries a wrap counter. */
export const RING_EVENT_WRAP_SHIFT = 15;

export const PACKED_DESC_SIZE = 16;
export const PACKED_EVENT_SIZE = 4;
/** Packed rings hold up to 2^15 descriptors (indices are 15 bits); the size need not be a power of two. */
export const PACKED_MAX_SIZE = 32768;
/** vhost-user base of a packed ring that never ran: avail index 0, wrap 1; used index 0, wrap 1. */
export const PACKED_INITIAL_VRING_BASE = 0x8000_8000;

/** Flags that mark a descriptor available for driver wrap counter wrap (AVAIL = wrap, USED = !wrap). */
export function availFlagsFor(wrap: number): number {
  return wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

/** Flags that mark a descriptor used for device wrap counter wrap (AVAIL = USED = wrap). */
export function usedFlagsFor(wrap: number): number {
  return wrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
}

/** vhost-user SET/GET_VRING_BASE for packed rings: avail index | avail wrap << 15 | (used index | used wrap << 15) << 16. */
export function packedVringBase(availIdx: number, availWrap: number, usedIdx: number, usedWrap: number): number {
  return ((availIdx & 0x7fff) | ((availWrap & 1) << 15) | ((usedIdx & 0x7fff) << 16) | ((usedWrap & 1) << 31)) >>> 0;
}

export interface RawPackedDescriptor {
  addr: bigint;
  len: number;
  id: number;
  flags: number;
}

export interface EventSuppression {
  /** desc_event_off (bits 0-14) | desc_event_wrap (bit 15). */
  offWrap: number;
  flags: number;
}

export type PackedRingMemoryErrorCode = 'BAD_SLOT';

export class PackedRingMemoryError extends Error {
  readonly code: PackedRingMemoryErrorCode;
  constructor(code: PackedRingMemoryErrorCode, message: string) {
    super(message);
    this.name = 'PackedRingMemoryError';
    this.code = code;
  }
}

function toBig(v: number | bigint): bigint {
  return BigInt.asUintN(64, BigInt(v));
}

function regionIndexU16(r: GuestMemoryRegion, gpa: number): number {
  return (gpa - r.guestPhysAddr) >>> 1;
}

export class PackedRingMemory {
  readonly size: number;
  readonly descGpa: number;
  readonly driverEventGpa: number;
  readonly deviceEventGpa: number;
  private readonly arena: GuestMemoryArena;
  private readonly desc: DataView;
  private readonly descU16: Uint16Array;
  private readonly descFlagsBase: number;
  private readonly driverU16: Uint16Array;
  private readonly driverI: number;
  private readonly deviceU16: Uint16Array;
  private readonly deviceI: number;

  constructor(arena: GuestMemoryArena, size: number, descGpa: number, driverEventGpa: number, deviceEventGpa: number) {
    this.arena = arena;
    this.size = size;
    this.descGpa = descGpa;
    this.driverEventGpa = driverEventGpa;
    this.deviceEventGpa = deviceEventGpa;
    this.desc = dataViewAt(arena, descGpa, PACKED_DESC_SIZE * size);
    const dr = arena.regionOf(descGpa, PACKED_DESC_SIZE * size);
    this.descU16 = dr.u16;
    this.descFlagsBase = regionIndexU16(dr, descGpa) + 7;
    const drv = arena.regionOf(driverEventGpa, PACKED_EVENT_SIZE);
    this.driverU16 = drv.u16;
    this.driverI = regionIndexU16(drv, driverEventGpa);
    const dev = arena.regionOf(deviceEventGpa, PACKED_EVENT_SIZE);
    this.deviceU16 = dev.u16;
    this.deviceI = regionIndexU16(dev, deviceEventGpa);
  }

  private check(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.size) {
      throw new PackedRingMemoryError('BAD_SLOT', `descriptor ${slot} outside [0, ${this.size})`);
    }
  }

  // ---- descriptor ring ----
  /** Writes descriptor i with any values; flags last, with Atomics.store (that publishes it). */
  writeDescriptor(i: number, addr: number | bigint, len: number, id: number, flags: number): void {
    this.check(i);
    const off = PACKED_DESC_SIZE * i;
    this.desc.setBigUint64(off, toBig(addr), true);
    this.desc.setUint32(off + 8, len >>> 0, true);
    this.desc.setUint16(off + 12, id & 0xffff, true);
    Atomics.store(this.descU16, this.descFlagsBase + 8 * i, flags & 0xffff);
  }

  readDescriptor(i: number): RawPackedDescriptor {
    this.check(i);
    const flags = Atomics.load(this.descU16, this.descFlagsBase + 8 * i);
    const off = PACKED_DESC_SIZE * i;
    return { addr: this.desc.getBigUint64(off, true), len: this.desc.getUint32(off + 8, true), id: this.desc.getUint16(off + 12, true), flags };
  }

  readFlags(i: number): number {
    this.check(i);
    return Atomics.load(this.descU16, this.descFlagsBase + 8 * i);
  }

  writeFlags(i: number, flags: number): void {
    this.check(i);
    Atomics.store(this.descU16, this.descFlagsBase + 8 * i, flags & 0xffff);
  }

  /** Device side: writes a used descriptor (id, len, then AVAIL = USED = wrap, plus extraFlags). */
  markUsed(i: number, id: number, len: number, wrap: number, extraFlags = 0): void {
    this.check(i);
    const off = PACKED_DESC_SIZE * i;
    this.desc.setUint32(off + 8, len >>> 0, true);
    this.desc.setUint16(off + 12, id & 0xffff, true);
    Atomics.store(this.descU16, this.descFlagsBase + 8 * i, (usedFlagsFor(wrap) | extraFlags) & 0xffff);
  }

  /** Writes an indirect table at gpa (anywhere in the arena). */
  writeTable(gpa: number, entries: readonly RawPackedDescriptor[]): void {
    const dv = dataViewAt(this.arena, gpa, PACKED_DESC_SIZE * entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const off = PACKED_DESC_SIZE * i;
      dv.setBigUint64(off, toBig(e.addr), true);
      dv.setUint32(off + 8, e.len >>> 0, true);
      dv.setUint16(off + 12, e.id & 0xffff, true);
      dv.setUint16(off + 14, e.flags & 0xffff, true);
    }
  }

  readTable(gpa: number, count: number): RawPackedDescriptor[] {
    const dv = dataViewAt(this.arena, gpa, PACKED_DESC_SIZE * count);
    const out: RawPackedDescriptor[] = [];
    for (let i = 0; i < count; i++) {
      const off = PACKED_DESC_SIZE * i;
      out.push({ addr: dv.getBigUint64(off, true), len: dv.getUint32(off + 8, true), id: dv.getUint16(off + 12, true), flags: dv.getUint16(off + 14, true) });
    }
    return out;
  }

  // ---- event suppression (driver area: written by the driver; device area: by the device) ----
  get driverEvent(): EventSuppression {
    return { offWrap: Atomics.load(this.driverU16, this.driverI), flags: Atomics.load(this.driverU16, this.driverI + 1) };
  }
  setDriverEvent(offWrap: number, flags: number): void {
    Atomics.store(this.driverU16, this.driverI, offWrap & 0xffff);
    Atomics.store(this.driverU16, this.driverI + 1, flags & 0xffff);
  }
  get deviceEvent(): EventSuppression {
    return { offWrap: Atomics.load(this.deviceU16, this.deviceI), flags: Atomics.load(this.deviceU16, this.deviceI + 1) };
  }
  setDeviceEvent(offWrap: number, flags: number): void {
    Atomics.store(this.deviceU16, this.deviceI, offWrap & 0xffff);
    Atomics.store(this.deviceU16, this.deviceI + 1, flags & 0xffff);
  }
}

function dataViewAt(arena: GuestMemoryArena, gpa: number, len: number): DataView {
  const r = arena.regionOf(gpa, len);
  return new DataView(r.bytes.buffer, r.bytes.byteOffset + (gpa - r.guestPhysAddr), len);
}
