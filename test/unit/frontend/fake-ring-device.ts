// Plays the device side of a split ring for driver tests: walks the chains the driver published
// (direct or indirect) through the raw ring view, hands them to a handler, writes used entries
// and signals the call eventfd. Deliberately simple and independent of src/virtio/.
import type { GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import type { DriverSplitQueue } from '../../../src/frontend/driver-split-queue.ts';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, type RawDescriptor } from '../../../src/frontend/split-ring-memory.ts';
import { eventfdSignal } from '../../../src/sys/eventfd.ts';

export interface Segment {
  gpa: number;
  len: number;
}

export interface Chain {
  head: number;
  /** The descriptors as the device saw them (for layout assertions). */
  descriptors: RawDescriptor[];
  indirect: boolean;
  readable: Segment[];
  writable: Segment[];
  /** All readable bytes concatenated. */
  out: Uint8Array;
}

/** Returns the number of bytes written into the chain's writable part. */
export type ChainHandler = (c: Chain, dev: FakeRingDevice) => number | null;

export class FakeRingDevice {
  readonly arena: GuestMemoryArena;
  readonly q: DriverSplitQueue;
  lastAvail = 0;
  readonly chains: Chain[] = [];

  constructor(arena: GuestMemoryArena, q: DriverSplitQueue) {
    this.arena = arena;
    this.q = q;
  }

  /** Processes every published chain; handler returning null leaves that chain pending (not used). */
  service(handler: ChainHandler, signal = true): number {
    const raw = this.q.raw;
    const avail = raw.availIdx;
    let done = 0;
    while (this.lastAvail !== avail) {
      const head = raw.readAvailEntry(this.lastAvail % this.q.size);
      const chain = this.walk(head);
      this.chains.push(chain);
      this.lastAvail = (this.lastAvail + 1) & 0xffff;
      const written = handler(chain, this);
      if (written === null) continue;
      const u = raw.usedIdx;
      raw.writeUsedEntry(u % this.q.size, head, written);
      raw.usedIdx = u + 1;
      done++;
    }
    if (done > 0 && signal) eventfdSignal(this.q.callFd);
    return done;
  }

  /** Completes a chain later (after service() returned null for it). */
  complete(head: number, written: number): void {
    const raw = this.q.raw;
    const u = raw.usedIdx;
    raw.writeUsedEntry(u % this.q.size, head, written);
    raw.usedIdx = u + 1;
    eventfdSignal(this.q.callFd);
  }

  private walk(head: number): Chain {
    const raw = this.q.raw;
    let descs: RawDescriptor[] = [];
    let indirect = false;
    const first = raw.readDescriptor(head);
    if (first.flags & VIRTQ_DESC_F_INDIRECT) {
      indirect = true;
      const table = raw.readTable(Number(first.addr), first.len / 16);
      for (let i = 0; ; i = table[i].next) {
        descs.push(table[i]);
        if (!(table[i].flags & VIRTQ_DESC_F_NEXT)) break;
      }
    } else {
      for (let i = head; ; i = raw.readDescriptor(i).next) {
        const d = raw.readDescriptor(i);
        descs.push(d);
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) break;
      }
    }
    descs = descs.slice();
    const readable: Segment[] = [];
    const writable: Segment[] = [];
    for (const d of descs) (d.flags & VIRTQ_DESC_F_WRITE ? writable : readable).push({ gpa: Number(d.addr), len: d.len });
    const outLen = readable.reduce((a, s) => a + s.len, 0);
    const out = new Uint8Array(outLen);
    let o = 0;
    for (const s of readable) {
      out.set(this.arena.bytesAt(s.gpa, s.len), o);
      o += s.len;
    }
    return { head, descriptors: descs, indirect, readable, writable, out };
  }

  /** Scatters bytes into the chain's writable segments starting at byte offset; returns bytes written. */
  write(c: Chain, offset: number, bytes: Uint8Array): number {
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
