// Plays the device side of a packed ring for driver tests, independently of src/virtio/: polls the
// slot at its own position with its own wrap counter, walks chains (NEXT across the ring's end,
// or one indirect table), writes used descriptors in completion order at its used position and
// skips by the chain's descriptor count. Same surface as FakeRingDevice so driver tests run on both.
import type { GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import type { DriverPackedQueue } from '../../../src/frontend/driver-packed-queue.ts';
import {
  VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_USED, VIRTQ_DESC_F_WRITE, type RawPackedDescriptor,
} from '../../../src/frontend/packed-ring-memory.ts';
import { eventfdSignal } from '../../../src/sys/eventfd.ts';
import type { Segment } from './fake-ring-device.ts';

export interface PackedChain {
  /** The buffer id (named head so tests written for split rings read the same). */
  head: number;
  /** Ring slot of the first descriptor and how many ring slots the chain took. */
  slot: number;
  count: number;
  /** Ring descriptors as the device saw them, then (indirect) the table entries. */
  ringDescriptors: RawPackedDescriptor[];
  descriptors: RawPackedDescriptor[];
  indirect: boolean;
  readable: Segment[];
  writable: Segment[];
  out: Uint8Array;
}

export type PackedChainHandler = (c: PackedChain, dev: FakePackedDevice) => number | null;

export class FakePackedDevice {
  readonly arena: GuestMemoryArena;
  readonly q: DriverPackedQueue;
  availPos = 0;
  availWrap = 1;
  usedPos = 0;
  usedWrap = 1;
  readonly chains: PackedChain[] = [];

  constructor(arena: GuestMemoryArena, q: DriverPackedQueue) {
    this.arena = arena;
    this.q = q;
  }

  private isAvail(slot: number, wrap: number): boolean {
    const f = this.q.raw.readFlags(slot);
    return ((f & VIRTQ_DESC_F_AVAIL) !== 0) === (wrap === 1) && ((f & VIRTQ_DESC_F_USED) !== 0) !== (wrap === 1);
  }

  /** Processes every available chain; handler returning null leaves that chain pending. */
  service(handler: PackedChainHandler, signal = true): number {
    let done = 0;
    while (this.isAvail(this.availPos, this.availWrap)) {
      const chain = this.walk();
      this.chains.push(chain);
      const written = handler(chain, this);
      if (written === null) continue;
      this.writeUsed(chain, written);
      done++;
    }
    if (done > 0 && signal) eventfdSignal(this.q.callFd);
    return done;
  }

  /** Completes a pending chain (by buffer id) later. */
  complete(id: number, written: number): void {
    const c = this.chains.findLast((x) => x.head === id);
    if (!c) throw new Error(`no chain with id ${id}`);
    this.writeUsed(c, written);
    eventfdSignal(this.q.callFd);
  }

  private writeUsed(c: PackedChain, written: number): void {
    this.q.raw.markUsed(this.usedPos, c.head, written, this.usedWrap, written > 0 ? VIRTQ_DESC_F_WRITE : 0);
    this.usedPos += c.count;
    if (this.usedPos >= this.q.size) {
      this.usedPos -= this.q.size;
      this.usedWrap ^= 1;
    }
  }

  private walk(): PackedChain {
    const raw = this.q.raw;
    const slot = this.availPos;
    const ring: RawPackedDescriptor[] = [];
    for (;;) {
      if (!this.isAvail(this.availPos, this.availWrap)) throw new Error(`chain from slot ${slot} continues into a slot that is not available`);
      const d = raw.readDescriptor(this.availPos);
      ring.push(d);
      if (++this.availPos === this.q.size) {
        this.availPos = 0;
        this.availWrap ^= 1;
      }
      if (!(d.flags & VIRTQ_DESC_F_NEXT)) break;
    }
    const last = ring[ring.length - 1];
    const indirect = (ring[0].flags & VIRTQ_DESC_F_INDIRECT) !== 0;
    const descs = indirect ? raw.readTable(Number(ring[0].addr), ring[0].len / 16) : ring;
    const readable: Segment[] = [];
    const writable: Segment[] = [];
    for (const d of descs) (d.flags & VIRTQ_DESC_F_WRITE ? writable : readable).push({ gpa: Number(d.addr), len: d.len });
    const out = new Uint8Array(readable.reduce((a, s) => a + s.len, 0));
    let o = 0;
    for (const s of readable) {
      out.set(this.arena.bytesAt(s.gpa, s.len), o);
      o += s.len;
    }
    return { head: last.id, slot, count: ring.length, ringDescriptors: ring, descriptors: descs, indirect, readable, writable, out };
  }

  /** Scatters bytes into the chain's writable segments from byte offset; returns bytes written. */
  write(c: PackedChain, offset: number, bytes: Uint8Array): number {
    let skip = offset;
    let done = 0;
    for (const s of c.writable) {
      if (done === bytes.length) break;
      if (skip >= s.len) {
        skip -= s.len;
        continue;
      }
      const n = Math.min(s.len - skip, bytes.length - done);
      this.arena.bytesAt(s.gpa + skip, n).set(bytes.subarray(done, done + n));
      done += n;
      skip = 0;
    }
    return done;
  }
}
