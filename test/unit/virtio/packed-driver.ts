// Test-only: the driver's half of a packed ring, written the way Linux's virtio_ring.c does it
// (descriptors with AVAIL/USED bits from the driver wrap counter, the buffer id in each descriptor,
// the first descriptor's flags written last; used descriptors read at the driver's own used
// position, skipping the descriptor count of each id). No validation: tests break rules on purpose.
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, vringNeedEvent } from '../../../src/virtio/virtio-constants.ts';
import { RING_EVENT_FLAGS_DESC, RING_EVENT_FLAGS_DISABLE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED } from '../../../src/virtio/packed-ring-constants.ts';
import type { GuestAccess } from './virtq-driver.ts';

export interface PackedRingAddrs {
  size: number;
  descGpa: number;
  driverEventGpa: number;
  deviceEventGpa: number;
}

/** An 8-entry packed ring inside R0 of the default test layout. */
export const PRING8: PackedRingAddrs = { size: 8, descGpa: 0x1000, driverEventGpa: 0x2000, deviceEventGpa: 0x3000 };

export interface Elem {
  addr: number | bigint;
  len: number;
  write?: boolean;
}

export interface UsedDesc {
  id: number;
  len: number;
  flags: number;
  slot: number;
}

/** AVAIL/USED bits of a descriptor made available under driver wrap counter `wrap`. */
export function availBits(wrap: number): number {
  return wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

/** AVAIL/USED bits of a descriptor the device marked used under wrap counter `wrap`. */
export function usedBits(wrap: number): number {
  return wrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
}

export class PackedTestDriver {
  readonly g: GuestAccess;
  readonly ring: PackedRingAddrs;
  nextAvail = 0;
  availWrap = 1;
  nextUsed = 0;
  usedWrap = 1;
  /** Ring descriptors each outstanding id occupies (the driver's own bookkeeping, as Linux keeps it). */
  readonly counts = new Map<number, number>();
  /** Descriptors added since the last kickPrepare(). */
  numAdded = 0;

  constructor(g: GuestAccess, ring: PackedRingAddrs) {
    this.g = g;
    this.ring = ring;
  }

  /** Descriptors the driver may still fill. */
  get free(): number {
    let inFlight = 0;
    for (const n of this.counts.values()) inFlight += n;
    return this.ring.size - inFlight;
  }

  /** Writes ring descriptor `slot` field by field, flags last. */
  put(slot: number, addr: number | bigint, len: number, id: number, flags: number): void {
    this.putAt(this.ring.descGpa, slot, addr, len, id, flags);
  }

  /** Writes entry i of a descriptor table at tableGpa (the ring or an indirect table). */
  putAt(tableGpa: number, i: number, addr: number | bigint, len: number, id: number, flags: number): void {
    const o = tableGpa + 16 * i;
    this.g.u64(o, BigInt(addr));
    this.g.u32(o + 8, len);
    this.g.u16(o + 12, id);
    this.g.u16(o + 14, flags);
  }

  flagsAt(slot: number): number {
    return this.g.u16(this.ring.descGpa + 16 * slot + 14);
  }

  /** Makes a chain of `elems` available with buffer `id`; returns the slot of its first descriptor. */
  add(elems: Elem[], id: number): number {
    const first = this.nextAvail;
    let firstFlags = 0;
    for (let k = 0; k < elems.length; k++) {
      const e = elems[k];
      const f = (e.write ? VIRTQ_DESC_F_WRITE : 0) | (k < elems.length - 1 ? VIRTQ_DESC_F_NEXT : 0) | availBits(this.availWrap);
      if (k === 0) {
        firstFlags = f;
        this.putAt(this.ring.descGpa, this.nextAvail, e.addr, e.len, id, this.flagsAt(this.nextAvail)); // flags unchanged yet
      } else {
        this.put(this.nextAvail, e.addr, e.len, id, f);
      }
      this.advanceAvail(1);
    }
    this.g.u16(this.ring.descGpa + 16 * first + 14, firstFlags); // publish the chain
    this.counts.set(id, elems.length);
    this.numAdded += elems.length;
    return first;
  }

  /** Makes one indirect descriptor available pointing at a table of `elems` written at tableGpa. */
  addIndirect(tableGpa: number, elems: Elem[], id: number): number {
    elems.forEach((e, i) => this.putAt(tableGpa, i, e.addr, e.len, 0, e.write ? VIRTQ_DESC_F_WRITE : 0));
    const slot = this.nextAvail;
    this.put(slot, tableGpa, 16 * elems.length, id, VIRTQ_DESC_F_INDIRECT | availBits(this.availWrap));
    this.advanceAvail(1);
    this.counts.set(id, 1);
    this.numAdded += 1;
    return slot;
  }

  /** Moves the driver's avail position by n without writing (for hand-written hostile chains). */
  advanceAvail(n: number): void {
    for (let k = 0; k < n; k++) {
      if (++this.nextAvail === this.ring.size) {
        this.nextAvail = 0;
        this.availWrap ^= 1;
      }
    }
  }

  /** Reads the next used descriptor (null if none), then skips the descriptors its id occupied. */
  getUsed(): UsedDesc | null {
    const slot = this.nextUsed;
    const o = this.ring.descGpa + 16 * slot;
    const flags = this.g.u16(o + 14);
    const a = (flags & VIRTQ_DESC_F_AVAIL) !== 0 ? 1 : 0;
    const u = (flags & VIRTQ_DESC_F_USED) !== 0 ? 1 : 0;
    if (a !== this.usedWrap || u !== this.usedWrap) return null;
    const id = this.g.u16(o + 12);
    const len = this.g.u32(o + 8);
    const n = this.counts.get(id);
    if (n === undefined) throw new Error(`device used id ${id}, which is not outstanding`);
    this.counts.delete(id);
    this.nextUsed += n;
    if (this.nextUsed >= this.ring.size) {
      this.nextUsed -= this.ring.size;
      this.usedWrap ^= 1;
    }
    return { id, len, flags, slot };
  }

  setDriverEvent(flags: number, offWrap = 0): void {
    this.g.u16(this.ring.driverEventGpa, offWrap);
    this.g.u16(this.ring.driverEventGpa + 2, flags);
  }

  /** Linux virtqueue_enable_cb_prepare_packed with EVENT_IDX: interrupt me at the next used descriptor. */
  enableCbAtNextUsed(): void {
    this.setDriverEvent(RING_EVENT_FLAGS_DESC, this.nextUsed | (this.usedWrap << 15));
  }

  /** Linux virtqueue_enable_cb_delayed_packed: interrupt me once `bufs` more descriptors are used. */
  enableCbDelayed(bufs: number): void {
    let idx = this.nextUsed + bufs;
    let wrap = this.usedWrap;
    if (idx >= this.ring.size) {
      idx -= this.ring.size;
      wrap ^= 1;
    }
    this.setDriverEvent(RING_EVENT_FLAGS_DESC, idx | (wrap << 15));
  }

  deviceEventOffWrap(): number {
    return this.g.u16(this.ring.deviceEventGpa);
  }

  deviceEventFlags(): number {
    return this.g.u16(this.ring.deviceEventGpa + 2);
  }

  /** Linux virtqueue_kick_prepare_packed: does the device want a kick for what was added since the last call? */
  kickPrepare(): boolean {
    const old = (this.nextAvail - this.numAdded) & 0xffff;
    const now = this.nextAvail;
    this.numAdded = 0;
    const flags = this.deviceEventFlags();
    if (flags !== RING_EVENT_FLAGS_DESC) return flags !== RING_EVENT_FLAGS_DISABLE;
    const offWrap = this.deviceEventOffWrap();
    let event = offWrap & 0x7fff;
    if (offWrap >> 15 !== this.availWrap) event = (event - this.ring.size) & 0xffff;
    return vringNeedEvent(event, now, old);
  }
}
