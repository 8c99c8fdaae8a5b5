// Guest physical memory as the device sees it: a table of already-mapped regions, address
// translation (guest physical and front-end user addresses) and views for the rings.
// Lookups run per descriptor, so they are a linear scan with a last-hit cache and allocate nothing.
import { viewOf } from '../sys/memory.ts';
import { GuestMemoryError } from './guest-memory-error.ts';

export interface MappedRegion {
  /** Guest physical address of bytes[0]. */
  guestPhysAddr: number;
  size: number;
  /** Front-end (QEMU) user address of bytes[0]; ring addresses arrive in this space. */
  userAddr: number;
  /** Host address of bytes[0] in this process (0n when unknown, e.g. in tests). */
  hostAddr: bigint;
  /** Exactly `size` bytes of the region. */
  bytes: Uint8Array;
}

/**
 * Makes a byte view of [offset, offset + len) of a region for a ring. Typed arrays are built over
 * it at its byteOffset, so its byteOffset must keep the ring's alignment (0 is always right).
 */
export type RingViewMaker = (region: MappedRegion, offset: number, len: number) => Uint8Array;

export interface GuestMemoryOptions {
  /** Defaults to a fresh koffi view at the region's host address + offset (byteOffset 0). */
  makeView?: RingViewMaker;
}

const MAX_ADDR = Number.MAX_SAFE_INTEGER;

/** The production ring view: a fresh ArrayBuffer starting at the ring, so any typed array over it is aligned. */
export const mappedRingView: RingViewMaker = (region, offset, len) =>
  new Uint8Array(viewOf(region.hostAddr + BigInt(offset), len));

function isAddr(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export class GuestMemory {
  readonly regions: readonly MappedRegion[];
  readonly count: number;
  /** Per region (input order): guest physical start and end (exclusive). */
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  /** Per region: host address of bytes[0] as a number (exact below 2^53). */
  readonly hostBases: Float64Array;
  readonly bytes: readonly Uint8Array[];
  /** Per region: a DataView over bytes, for little-endian reads at any alignment (indirect tables). */
  readonly views: readonly DataView[];
  private readonly userStarts: Float64Array;
  private readonly userEnds: Float64Array;
  private readonly makeView: RingViewMaker;
  private lastHit = 0;

  constructor(regions: readonly MappedRegion[], options: GuestMemoryOptions = {}) {
    const n = regions.length;
    this.starts = new Float64Array(n);
    this.ends = new Float64Array(n);
    this.hostBases = new Float64Array(n);
    this.userStarts = new Float64Array(n);
    this.userEnds = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = regions[i];
      for (const field of ['guestPhysAddr', 'size', 'userAddr'] as const) {
        if (!isAddr(r[field])) {
          throw new GuestMemoryError('REGION_BAD_FIELD', `region ${i}: ${field} ${String(r[field])} is not an integer in [0, 2^53)`);
        }
      }
      if (typeof r.hostAddr !== 'bigint' || r.hostAddr < 0n) {
        throw new GuestMemoryError('REGION_BAD_FIELD', `region ${i}: hostAddr ${String(r.hostAddr)} is not a non-negative bigint`);
      }
      if (r.size === 0) throw new GuestMemoryError('REGION_EMPTY', `region ${i} at guest 0x${r.guestPhysAddr.toString(16)} has size 0`);
      if (r.guestPhysAddr + r.size > MAX_ADDR || r.userAddr + r.size > MAX_ADDR || r.hostAddr + BigInt(r.size) > BigInt(MAX_ADDR)) {
        throw new GuestMemoryError(
          'REGION_OVERFLOW',
          `region ${i}: guest 0x${r.guestPhysAddr.toString(16)} / user 0x${r.userAddr.toString(16)} / host 0x${r.hostAddr.toString(16)} + size 0x${r.size.toString(16)} passes 2^53`,
        );
      }
      if (!(r.bytes instanceof Uint8Array) || r.bytes.length !== r.size) {
        throw new GuestMemoryError('REGION_SIZE_MISMATCH', `region ${i}: bytes has length ${r.bytes?.length} but size is ${r.size}`);
      }
      this.starts[i] = r.guestPhysAddr;
      this.ends[i] = r.guestPhysAddr + r.size;
      this.hostBases[i] = Number(r.hostAddr);
      this.userStarts[i] = r.userAddr;
      this.userEnds[i] = r.userAddr + r.size;
    }
    // Overlap check on the regions sorted by start: each must end before the next begins.
    const order = [...regions.keys()].sort((a, b) => this.starts[a] - this.starts[b]);
    for (let k = 1; k < n; k++) {
      const prev = order[k - 1];
      const cur = order[k];
      if (this.starts[cur] < this.ends[prev]) {
        throw new GuestMemoryError(
          'REGION_OVERLAP',
          `region ${cur} [0x${this.starts[cur].toString(16)}, 0x${this.ends[cur].toString(16)}) overlaps region ${prev} [0x${this.starts[prev].toString(16)}, 0x${this.ends[prev].toString(16)})`,
        );
      }
    }
    this.regions = regions.slice();
    this.count = n;
    this.bytes = regions.map((r) => r.bytes);
    this.views = regions.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength));
    this.makeView = options.makeView ?? mappedRingView;
  }

  /** Index of the region containing guest physical address `gpa`, or -1. */
  regionAt(gpa: number): number {
    const h = this.lastHit;
    if (h < this.count && gpa >= this.starts[h] && gpa < this.ends[h]) return h;
    for (let i = 0; i < this.count; i++) {
      if (gpa >= this.starts[i] && gpa < this.ends[i]) {
        this.lastHit = i;
        return i;
      }
    }
    return -1;
  }

  /** Index of the region wholly containing [gpa, gpa + len), or -1 (also for NaN / negative input). */
  findRegion(gpa: number, len: number): number {
    if (!(len >= 0)) return -1;
    const i = this.regionAt(gpa);
    if (i < 0 || len > this.ends[i] - gpa) return -1;
    return i;
  }

  /** Guest physical address of front-end user address range [userAddr, userAddr + len) inside one region, or -1. */
  userToGuestPhys(userAddr: number, len: number): number {
    if (!(len >= 0)) return -1;
    for (let i = 0; i < this.count; i++) {
      if (userAddr >= this.userStarts[i] && userAddr < this.userEnds[i]) {
        if (len > this.userEnds[i] - userAddr) return -1;
        return this.starts[i] + (userAddr - this.userStarts[i]);
      }
    }
    return -1;
  }

  /** A byte view of exactly [gpa, gpa + len) when it lies in one region, else null. Control plane only. */
  ringView(gpa: number, len: number): Uint8Array | null {
    const i = this.findRegion(gpa, len);
    if (i < 0) return null;
    const view = this.makeView(this.regions[i], gpa - this.starts[i], len);
    if (view.length !== len) throw new RangeError(`ring view maker returned ${view.length} bytes, wanted ${len}`);
    return view;
  }
}
