// Guest RAM for the front-end: memfd-backed regions with guest physical bases (with gaps) and
// front-end user addresses that differ from the GPAs, so a back-end that confuses the two fails.
// Also a bump allocator for rings and buffers. Control plane: allocations here happen at setup.
import { memfdCreate, mmapFd, munmap, viewOf } from '../sys/memory.ts';
import { closeFd } from '../sys/fd.ts';

/** Added to a region's GPA to make its default user address (QEMU's are host virtual addresses). */
export const DEFAULT_USER_ADDR_OFFSET = 0x7f00_0000_0000;
const PAGE_SIZE = 4096;

export type ArenaErrorCode = 'BAD_REGION_SPEC' | 'REGIONS_OVERLAP' | 'OUT_OF_RANGE' | 'OUT_OF_SPACE' | 'BAD_ALIGNMENT' | 'CLOSED';

export class ArenaError extends Error {
  readonly code: ArenaErrorCode;
  constructor(code: ArenaErrorCode, message: string) {
    super(message);
    this.name = 'ArenaError';
    this.code = code;
  }
}

export interface RegionSpec {
  /** Bytes of guest RAM in this region (multiple of 4096). */
  size: number;
  guestPhysAddr: number;
  /** Front-end user address; defaults to guestPhysAddr + DEFAULT_USER_ADDR_OFFSET + index * 2^40. */
  userAddr?: number;
  /** Bytes of the memfd before the region starts (multiple of 4096); the back-end must honour it. */
  mmapOffset?: number;
  /** Back the region with 2 MiB huge pages (MFD_HUGETLB), as QEMU with hugetlbfs does; sizes must be 2 MiB multiples. */
  hugepages?: boolean;
}

/** One region, shaped like a SET_MEM_TABLE entry plus the mapping the front-end uses. */
export class GuestMemoryRegion {
  readonly guestPhysAddr: number;
  readonly size: number;
  readonly userAddr: number;
  readonly mmapOffset: number;
  /** The memfd; owned by the arena (the back-end gets its own copy through SCM_RIGHTS). */
  readonly fd: number;
  /** Views over [guestPhysAddr, guestPhysAddr + size). */
  readonly bytes: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly view: DataView;
  /** Next free byte offset for the allocator. */
  allocated = 0;
  private readonly mapAddr: bigint;
  private readonly mapLength: number;

  constructor(spec: Required<RegionSpec>, name: string) {
    this.guestPhysAddr = spec.guestPhysAddr;
    this.size = spec.size;
    this.userAddr = spec.userAddr;
    this.mmapOffset = spec.mmapOffset;
    this.mapLength = spec.mmapOffset + spec.size;
    this.fd = memfdCreate(name, this.mapLength, spec.hugepages);
    try {
      this.mapAddr = mmapFd(this.fd, this.mapLength);
    } catch (e) {
      closeFd(this.fd);
      throw e;
    }
    const ab = viewOf(this.mapAddr, this.mapLength);
    this.bytes = new Uint8Array(ab, spec.mmapOffset, spec.size);
    this.u16 = new Uint16Array(ab, spec.mmapOffset, Math.floor(spec.size / 2));
    this.u32 = new Uint32Array(ab, spec.mmapOffset, Math.floor(spec.size / 4));
    this.view = new DataView(ab, spec.mmapOffset, spec.size);
  }

  /** True when [gpa, gpa + len) lies inside this region. */
  contains(gpa: number, len: number): boolean {
    return gpa >= this.guestPhysAddr && len >= 0 && gpa + len <= this.guestPhysAddr + this.size;
  }

  /** Unmaps and closes; the views must not be touched afterwards. */
  release(): void {
    munmap(this.mapAddr, this.mapLength);
    closeFd(this.fd);
  }
}

function checkSpec(s: RegionSpec, i: number): void {
  const ok = (v: number): boolean => Number.isSafeInteger(v) && v >= 0 && v % PAGE_SIZE === 0;
  if (!ok(s.size) || s.size === 0) throw new ArenaError('BAD_REGION_SPEC', `region ${i}: size ${s.size} is not a positive multiple of ${PAGE_SIZE}`);
  if (!ok(s.guestPhysAddr)) throw new ArenaError('BAD_REGION_SPEC', `region ${i}: guestPhysAddr ${s.guestPhysAddr} is not page aligned`);
  if (s.userAddr !== undefined && !ok(s.userAddr)) throw new ArenaError('BAD_REGION_SPEC', `region ${i}: userAddr ${s.userAddr} is not page aligned`);
  if (s.mmapOffset !== undefined && !ok(s.mmapOffset)) throw new ArenaError('BAD_REGION_SPEC', `region ${i}: mmapOffset ${s.mmapOffset} is not page aligned`);
}

function overlaps(a0: number, aLen: number, b0: number, bLen: number): boolean {
  return a0 < b0 + bLen && b0 < a0 + aLen;
}

/** Two 16 MiB regions: GPA 0 and GPA 4 GiB (a gap in between), user addresses far from both. */
export const DEFAULT_REGIONS: readonly RegionSpec[] = [
  { size: 16 << 20, guestPhysAddr: 0 },
  { size: 16 << 20, guestPhysAddr: 0x1_0000_0000 },
];

export class GuestMemoryArena {
  private readonly list: GuestMemoryRegion[] = [];
  private closed = false;

  constructor(specs: readonly RegionSpec[] = DEFAULT_REGIONS) {
    try {
      for (const s of specs) this.addRegion(s);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  get regions(): readonly GuestMemoryRegion[] {
    return this.list;
  }

  /** Adds a region (for ADD_MEM_REG tests); returns it. */
  addRegion(spec: RegionSpec): GuestMemoryRegion {
    if (this.closed) throw new ArenaError('CLOSED', 'arena is closed');
    const i = this.list.length;
    checkSpec(spec, i);
    const full: Required<RegionSpec> = {
      size: spec.size,
      guestPhysAddr: spec.guestPhysAddr,
      userAddr: spec.userAddr ?? spec.guestPhysAddr + DEFAULT_USER_ADDR_OFFSET + i * 2 ** 40,
      mmapOffset: spec.mmapOffset ?? 0,
      hugepages: spec.hugepages ?? false,
    };
    if (!Number.isSafeInteger(full.userAddr + full.size) || !Number.isSafeInteger(full.guestPhysAddr + full.size)) {
      throw new ArenaError('BAD_REGION_SPEC', `region ${i}: addresses exceed 2^53`);
    }
    for (const r of this.list) {
      if (overlaps(r.guestPhysAddr, r.size, full.guestPhysAddr, full.size)) {
        throw new ArenaError('REGIONS_OVERLAP', `region ${i}: GPA range 0x${full.guestPhysAddr.toString(16)} overlaps a region at 0x${r.guestPhysAddr.toString(16)}`);
      }
      if (overlaps(r.userAddr, r.size, full.userAddr, full.size)) {
        throw new ArenaError('REGIONS_OVERLAP', `region ${i}: user range 0x${full.userAddr.toString(16)} overlaps a region at 0x${r.userAddr.toString(16)}`);
      }
    }
    const region = new GuestMemoryRegion(full, `vhostd-frontend-ram${i}`);
    this.list.push(region);
    return region;
  }

  /** Removes a region from the arena (for REM_MEM_REG tests) and releases it. */
  removeRegion(region: GuestMemoryRegion): void {
    const i = this.list.indexOf(region);
    if (i < 0) throw new ArenaError('OUT_OF_RANGE', 'region is not part of this arena');
    this.list.splice(i, 1);
    region.release();
  }

  /** The region holding all of [gpa, gpa + len), or throws OUT_OF_RANGE. */
  regionOf(gpa: number, len = 1): GuestMemoryRegion {
    for (const r of this.list) if (r.contains(gpa, len)) return r;
    throw new ArenaError('OUT_OF_RANGE', `GPA range [0x${gpa.toString(16)}, +${len}) is not inside one region`);
  }

  /** A view of guest memory for tests to fill and check. */
  bytesAt(gpa: number, len: number): Uint8Array {
    const r = this.regionOf(gpa, len);
    const o = gpa - r.guestPhysAddr;
    return r.bytes.subarray(o, o + len);
  }

  gpaToUser(gpa: number): number {
    const r = this.regionOf(gpa, 0);
    return gpa - r.guestPhysAddr + r.userAddr;
  }

  userToGpa(userAddr: number): number {
    for (const r of this.list) {
      if (userAddr >= r.userAddr && userAddr < r.userAddr + r.size) return userAddr - r.userAddr + r.guestPhysAddr;
    }
    throw new ArenaError('OUT_OF_RANGE', `user address 0x${userAddr.toString(16)} is not inside a region`);
  }

  /** Allocates size bytes aligned to align (a power of two) in region regionIndex; returns the GPA. */
  alloc(size: number, align = 16, regionIndex = 0): number {
    if (!(align > 0 && (align & (align - 1)) === 0)) throw new ArenaError('BAD_ALIGNMENT', `alignment ${align} is not a power of two`);
    if (!Number.isSafeInteger(size) || size < 0) throw new ArenaError('OUT_OF_SPACE', `bad allocation size ${size}`);
    const r = this.list[regionIndex];
    if (!r) throw new ArenaError('OUT_OF_RANGE', `no region ${regionIndex} (have ${this.list.length})`);
    // GPAs are page aligned, so aligning the offset aligns the address.
    const start = Math.ceil(r.allocated / align) * align;
    if (start + size > r.size) {
      throw new ArenaError('OUT_OF_SPACE', `region ${regionIndex}: ${size} bytes (align ${align}) do not fit (${r.size - r.allocated} left)`);
    }
    r.allocated = start + size;
    return r.guestPhysAddr + start;
  }

  /** Like alloc, then fills the bytes with value (e.g. a poison pattern). */
  allocFilled(size: number, value: number, align = 16, regionIndex = 0): number {
    const gpa = this.alloc(size, align, regionIndex);
    this.bytesAt(gpa, size).fill(value);
    return gpa;
  }

  /** Unmaps every region and closes the memfds. Rings and views made from this arena die with it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.list) r.release();
    this.list.length = 0;
  }
}
