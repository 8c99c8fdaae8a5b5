// Raw, unvalidated access to one split virtqueue's descriptor table, avail ring and used ring in
// arena memory. The escape hatch for hostile tests (write any descriptor, avail entry or index) and
// the device's view for tests that play the device. Not for the data path: it allocates on reads.
import type { GuestMemoryArena, GuestMemoryRegion } from './guest-memory-arena.ts';

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;
export const VIRTQ_DESC_SIZE = 16;
export const VIRTQ_MAX_SIZE = 32768;

/** Byte sizes of the three parts for queue size n. */
export function descTableSize(n: number): number {
  return VIRTQ_DESC_SIZE * n;
}
export function availRingSize(n: number): number {
  return 4 + 2 * n + 2;
}
export function usedRingSize(n: number): number {
  return 4 + 8 * n + 2;
}

export interface RawDescriptor {
  addr: bigint;
  len: number;
  flags: number;
  next: number;
}

export type RingMemoryErrorCode = 'BAD_SLOT';

export class RingMemoryError extends Error {
  readonly code: RingMemoryErrorCode;
  constructor(code: RingMemoryErrorCode, message: string) {
    super(message);
    this.name = 'RingMemoryError';
    this.code = code;
  }
}

function toBig(v: number | bigint): bigint {
  return BigInt.asUintN(64, BigInt(v));
}

export class SplitRingMemory {
  readonly size: number;
  readonly descGpa: number;
  readonly availGpa: number;
  readonly usedGpa: number;
  private readonly arena: GuestMemoryArena;
  private readonly desc: DataView;
  private readonly avail: DataView;
  private readonly used: DataView;
  private readonly availU16: Uint16Array;
  private readonly usedU16: Uint16Array;
  private readonly availIdxI: number;
  private readonly usedIdxI: number;

  constructor(arena: GuestMemoryArena, size: number, descGpa: number, availGpa: number, usedGpa: number) {
    this.arena = arena;
    this.size = size;
    this.descGpa = descGpa;
    this.availGpa = availGpa;
    this.usedGpa = usedGpa;
    this.desc = dataViewAt(arena, descGpa, descTableSize(size));
    this.avail = dataViewAt(arena, availGpa, availRingSize(size));
    this.used = dataViewAt(arena, usedGpa, usedRingSize(size));
    const ar = arena.regionOf(availGpa, availRingSize(size));
    const ur = arena.regionOf(usedGpa, usedRingSize(size));
    this.availU16 = ar.u16;
    this.usedU16 = ur.u16;
    this.availIdxI = (availGpa - ar.guestPhysAddr + 2) >>> 1;
    this.usedIdxI = (usedGpa - ur.guestPhysAddr + 2) >>> 1;
  }

  private check(slot: number, limit: number, what: string): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= limit) throw new RingMemoryError('BAD_SLOT', `${what} ${slot} outside [0, ${limit})`);
  }

  // ---- descriptor table ----
  /** Writes descriptor i with any values (addr may be any u64: hostile tests). */
  writeDescriptor(i: number, addr: number | bigint, len: number, flags: number, next: number): void {
    this.check(i, this.size, 'descriptor');
    writeDescriptorTo(this.desc, VIRTQ_DESC_SIZE * i, addr, len, flags, next);
  }

  readDescriptor(i: number): RawDescriptor {
    this.check(i, this.size, 'descriptor');
    return readDescriptorFrom(this.desc, VIRTQ_DESC_SIZE * i);
  }

  /** Writes an indirect table of descriptors at gpa (anywhere in the arena). */
  writeTable(gpa: number, entries: readonly RawDescriptor[]): void {
    const dv = dataViewAt(this.arena, gpa, VIRTQ_DESC_SIZE * entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      writeDescriptorTo(dv, VIRTQ_DESC_SIZE * i, e.addr, e.len, e.flags, e.next);
    }
  }

  readTable(gpa: number, count: number): RawDescriptor[] {
    const dv = dataViewAt(this.arena, gpa, VIRTQ_DESC_SIZE * count);
    const out: RawDescriptor[] = [];
    for (let i = 0; i < count; i++) out.push(readDescriptorFrom(dv, VIRTQ_DESC_SIZE * i));
    return out;
  }

  // ---- avail ring (driver writes) ----
  get availFlags(): number {
    return this.avail.getUint16(0, true);
  }
  set availFlags(v: number) {
    this.avail.setUint16(0, v, true);
  }
  /** Published with Atomics (the device reads it concurrently). */
  get availIdx(): number {
    return Atomics.load(this.availU16, this.availIdxI);
  }
  set availIdx(v: number) {
    Atomics.store(this.availU16, this.availIdxI, v & 0xffff);
  }
  writeAvailEntry(slot: number, head: number): void {
    this.check(slot, this.size, 'avail slot');
    this.avail.setUint16(4 + 2 * slot, head & 0xffff, true);
  }
  readAvailEntry(slot: number): number {
    this.check(slot, this.size, 'avail slot');
    return this.avail.getUint16(4 + 2 * slot, true);
  }
  get usedEvent(): number {
    return this.avail.getUint16(4 + 2 * this.size, true);
  }
  set usedEvent(v: number) {
    this.avail.setUint16(4 + 2 * this.size, v & 0xffff, true);
  }

  // ---- used ring (device writes) ----
  get usedFlags(): number {
    return this.used.getUint16(0, true);
  }
  set usedFlags(v: number) {
    this.used.setUint16(0, v, true);
  }
  get usedIdx(): number {
    return Atomics.load(this.usedU16, this.usedIdxI);
  }
  set usedIdx(v: number) {
    Atomics.store(this.usedU16, this.usedIdxI, v & 0xffff);
  }
  readUsedEntry(slot: number): { id: number; len: number } {
    this.check(slot, this.size, 'used slot');
    return { id: this.used.getUint32(4 + 8 * slot, true), len: this.used.getUint32(8 + 8 * slot, true) };
  }
  writeUsedEntry(slot: number, id: number, len: number): void {
    this.check(slot, this.size, 'used slot');
    this.used.setUint32(4 + 8 * slot, id >>> 0, true);
    this.used.setUint32(8 + 8 * slot, len >>> 0, true);
  }
  get availEvent(): number {
    return this.used.getUint16(4 + 8 * this.size, true);
  }
  set availEvent(v: number) {
    this.used.setUint16(4 + 8 * this.size, v & 0xffff, true);
  }
}

function dataViewAt(arena: GuestMemoryArena, gpa: number, len: number): DataView {
  const r: GuestMemoryRegion = arena.regionOf(gpa, len);
  return new DataView(r.bytes.buffer, r.bytes.byteOffset + (gpa - r.guestPhysAddr), len);
}

function writeDescriptorTo(dv: DataView, off: number, addr: number | bigint, len: number, flags: number, next: number): void {
  dv.setBigUint64(off, toBig(addr), true);
  dv.setUint32(off + 8, len >>> 0, true);
  dv.setUint16(off + 12, flags & 0xffff, true);
  dv.setUint16(off + 14, next & 0xffff, true);
}

function readDescriptorFrom(dv: DataView, off: number): RawDescriptor {
  return { addr: dv.getBigUint64(off, true), len: dv.getUint32(off + 8, true), flags: dv.getUint16(off + 12, true), next: dv.getUint16(off + 14, true) };
}
