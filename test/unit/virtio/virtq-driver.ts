// Test-only: guest memory over plain ArrayBuffers and a minimal split-ring driver that writes
// descriptors and the avail ring as a guest driver would, and reads back the used ring.
import { GuestMemory, type MappedRegion } from '../../../src/virtio/guest-memory.ts';

export interface TestRegion {
  gpa: number;
  size: number;
  user: number;
  host: bigint;
}

/**
 * Default layout: R0 [0x0, 0x10000) and R1 [0x10000, 0x20000) are adjacent in guest physical
 * space (but not in host space), then a gap, then R2 [0x40000, 0x50000).
 */
export const LAYOUT: TestRegion[] = [
  { gpa: 0x0, size: 0x10000, user: 0x7f0000000000, host: 0x555500000000n },
  { gpa: 0x10000, size: 0x10000, user: 0x7f0010000000, host: 0x555600000000n },
  { gpa: 0x40000, size: 0x10000, user: 0x7f0020000000, host: 0x555700000000n },
];

export function makeRegions(layout: TestRegion[] = LAYOUT): MappedRegion[] {
  return layout.map((r) => ({
    guestPhysAddr: r.gpa,
    size: r.size,
    userAddr: r.user,
    hostAddr: r.host,
    bytes: new Uint8Array(new ArrayBuffer(r.size)),
  }));
}

/** GuestMemory whose ring views are subarrays of the regions' own buffers (no mmap needed). */
export function makeMemory(regions: MappedRegion[]): GuestMemory {
  return new GuestMemory(regions, { makeView: (region, offset, len) => region.bytes.subarray(offset, offset + len) });
}

/** Little-endian access to guest memory by guest physical address (must lie in one region). */
export class GuestAccess {
  readonly regions: MappedRegion[];
  constructor(regions: MappedRegion[]) {
    this.regions = regions;
  }

  private at(gpa: number, len: number): { dv: DataView; off: number } {
    for (const r of this.regions) {
      if (gpa >= r.guestPhysAddr && gpa + len <= r.guestPhysAddr + r.size) {
        return { dv: new DataView(r.bytes.buffer, r.bytes.byteOffset, r.size), off: gpa - r.guestPhysAddr };
      }
    }
    throw new Error(`test access outside guest memory: 0x${gpa.toString(16)} +${len}`);
  }

  u16(gpa: number, v?: number): number {
    const { dv, off } = this.at(gpa, 2);
    if (v !== undefined) dv.setUint16(off, v, true);
    return dv.getUint16(off, true);
  }

  u32(gpa: number, v?: number): number {
    const { dv, off } = this.at(gpa, 4);
    if (v !== undefined) dv.setUint32(off, v, true);
    return dv.getUint32(off, true);
  }

  u64(gpa: number, v: bigint): void {
    const { dv, off } = this.at(gpa, 8);
    dv.setBigUint64(off, v, true);
  }

  write(gpa: number, data: ArrayLike<number>): void {
    const { dv, off } = this.at(gpa, data.length);
    for (let i = 0; i < data.length; i++) dv.setUint8(off + i, data[i]);
  }

  read(gpa: number, len: number): number[] {
    const { dv, off } = this.at(gpa, len);
    const out: number[] = [];
    for (let i = 0; i < len; i++) out.push(dv.getUint8(off + i));
    return out;
  }
}

export interface RingAddrs {
  size: number;
  descGpa: number;
  availGpa: number;
  usedGpa: number;
}

/** The driver's half of a split ring. Writes what a guest would; no validation (tests break rules on purpose). */
export class TestDriver {
  readonly g: GuestAccess;
  readonly ring: RingAddrs;
  /** The driver's avail idx (free-running u16). */
  availIdx = 0;

  constructor(g: GuestAccess, ring: RingAddrs) {
    this.g = g;
    this.ring = ring;
  }

  /** Writes descriptor i of the queue's table. */
  desc(i: number, addr: number | bigint, len: number, flags: number, next = 0): void {
    this.descAt(this.ring.descGpa, i, addr, len, flags, next);
  }

  /** Writes entry i of a descriptor table at tableGpa (the queue's or an indirect one). */
  descAt(tableGpa: number, i: number, addr: number | bigint, len: number, flags: number, next = 0): void {
    const o = tableGpa + 16 * i;
    this.g.u64(o, BigInt(addr));
    this.g.u32(o + 8, len);
    this.g.u16(o + 12, flags);
    this.g.u16(o + 14, next);
  }

  /** Puts `head` in the next avail slot and publishes avail.idx. */
  offer(head: number): void {
    this.g.u16(this.ring.availGpa + 4 + 2 * (this.availIdx % this.ring.size), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.g.u16(this.ring.availGpa + 2, this.availIdx);
  }

  /** Sets avail.idx (driver shadow and ring) directly. */
  setAvailIdx(v: number): void {
    this.availIdx = v & 0xffff;
    this.g.u16(this.ring.availGpa + 2, this.availIdx);
  }

  setAvailFlags(v: number): void {
    this.g.u16(this.ring.availGpa, v);
  }

  setUsedEvent(v: number): void {
    this.g.u16(this.ring.availGpa + 4 + 2 * this.ring.size, v);
  }

  usedFlags(): number {
    return this.g.u16(this.ring.usedGpa);
  }

  usedIdx(): number {
    return this.g.u16(this.ring.usedGpa + 2);
  }

  setUsedIdx(v: number): void {
    this.g.u16(this.ring.usedGpa + 2, v);
  }

  /** The used element in slot (idx % size) as [id, len]. */
  usedElem(idx: number): [number, number] {
    const o = this.ring.usedGpa + 4 + 8 * (idx % this.ring.size);
    return [this.g.u32(o), this.g.u32(o + 4)];
  }

  availEvent(): number {
    return this.g.u16(this.ring.usedGpa + 4 + 8 * this.ring.size);
  }
}

/** Rings of an 8-entry queue inside R0. */
export const RING8: RingAddrs = { size: 8, descGpa: 0x1000, availGpa: 0x2000, usedGpa: 0x3000 };
