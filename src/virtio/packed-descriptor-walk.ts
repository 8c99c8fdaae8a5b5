// Reads one available chain from a packed descriptor ring into a DescriptorChain, checking every
// guest-supplied flag, length and address. Run per request: allocates nothing unless it fails.
// Ordering: each ring descriptor's flags are read with Atomics.load before its other fields (the
// driver writes a descriptor, then publishes it by its flags).
import type { GuestMemory } from './guest-memory.ts';
import type { DescriptorChain } from './descriptor-chain.ts';
import { VirtqueueError } from './virtqueue-error.ts';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from './virtio-constants.ts';
import { PVIRTQ_DESC_SIZE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED, VIRTQ_PACKED_MAX_SIZE } from './packed-ring-constants.ts';
import { ADDR_HI_LIMIT, appendGuestSegments, hex64, SEG_FULL, SEG_UNMAPPED } from './guest-segments.ts';

const TWO_32 = 0x100000000;
const MAX_CHAIN_BYTES = 0xffffffff;

/** The flags an available descriptor has under driver wrap counter `wrap` (0 or 1): AVAIL = wrap, USED = !wrap. */
export function isAvailable(flags: number, wrap: number): boolean {
  return ((flags >>> 7) & 1) === wrap && ((flags >>> 15) & 1) !== wrap;
}

function describeFlags(flags: number, wrap: number): string {
  const a = (flags & VIRTQ_DESC_F_AVAIL) !== 0 ? 1 : 0;
  const u = (flags & VIRTQ_DESC_F_USED) !== 0 ? 1 : 0;
  return `flags 0x${flags.toString(16)} (AVAIL ${a}, USED ${u}; available needs AVAIL ${wrap}, USED ${wrap ^ 1})`;
}

/**
 * Walks the chain whose first descriptor sits at ring slot `pos` under driver wrap counter `wrap`;
 * the caller has seen that descriptor available (its flags are loaded again here, atomically).
 * Fills chain.out / chain.in, chain.id (buffer id of the last descriptor) and chain.descCount; the
 * caller sets chain.head. Returns null, or the violation (the chain then holds partial segments).
 * desc16 / desc32 view the whole ring (16 * size bytes).
 */
export function walkPackedChain(
  mem: GuestMemory,
  desc16: Uint16Array,
  desc32: Uint32Array,
  size: number,
  indirect: boolean,
  chain: DescriptorChain,
  pos: number,
  wrap: number,
): VirtqueueError | null {
  let p = pos;
  let w = wrap;
  let count = 0;
  let writable = false;
  let total = 0;
  for (;;) {
    const flags = Atomics.load(desc16, (p << 3) + 7);
    if (count > 0 && !isAvailable(flags, w)) {
      // The driver publishes a chain by its first descriptor, after all the others: a later one
      // that is not available means NEXT points outside what the driver made available.
      return new VirtqueueError('NEXT_OUT_OF_RANGE', `chain at ring slot ${pos}: descriptor ${count} (slot ${p}) follows a NEXT but is not available: ${describeFlags(flags, w)}`);
    }
    const lo = desc32[p << 2];
    const hi = desc32[(p << 2) + 1];
    const len = desc32[(p << 2) + 2];
    const id = desc16[(p << 3) + 6];
    count++;
    if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
      if (!indirect) {
        return new VirtqueueError('INDIRECT_NOT_NEGOTIATED', `chain at ring slot ${pos}: slot ${p} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated`);
      }
      if ((flags & VIRTQ_DESC_F_NEXT) !== 0 || count > 1) {
        return new VirtqueueError('INDIRECT_WITH_NEXT', `chain at ring slot ${pos}: slot ${p} is indirect inside a NEXT chain (flags 0x${flags.toString(16)}); an indirect descriptor must be a buffer's only one`);
      }
      const err = walkIndirectTable(mem, chain, pos, hi, lo, len);
      if (err !== null) return err;
      chain.id = id;
      chain.descCount = 1;
      return null;
    }
    if (len !== 0) {
      const isWrite = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      if (isWrite) writable = true;
      else if (writable) {
        return new VirtqueueError('READABLE_AFTER_WRITABLE', `chain at ring slot ${pos}: descriptor ${count - 1} (slot ${p}) is device-readable after a device-writable one`);
      }
      total += len;
      if (total > MAX_CHAIN_BYTES) {
        return new VirtqueueError('CHAIN_TOO_LONG', `chain at ring slot ${pos}: total length ${total} at descriptor ${count - 1} (slot ${p}) exceeds ${MAX_CHAIN_BYTES}`);
      }
      const seg = appendGuestSegments(mem, isWrite ? chain.in : chain.out, hi, lo, len);
      if (seg === SEG_UNMAPPED) {
        return new VirtqueueError('ADDRESS_NOT_MAPPED', `chain at ring slot ${pos}: descriptor ${count - 1} (slot ${p}): [${hex64(hi, lo)}, +${len}) is not inside mapped guest memory`);
      }
      if (seg === SEG_FULL) {
        return new VirtqueueError('TOO_MANY_SEGMENTS', `chain at ring slot ${pos}: descriptor ${count - 1} (slot ${p}): more than ${chain.out.capacity} ${isWrite ? 'writable' : 'readable'} segments`);
      }
    }
    if ((flags & VIRTQ_DESC_F_NEXT) === 0) {
      chain.id = id;
      chain.descCount = count;
      return null;
    }
    if (count >= size) {
      return new VirtqueueError('DESC_LOOP', `chain at ring slot ${pos}: more than queue size ${size} descriptors (slot ${p} still has NEXT)`);
    }
    p++;
    if (p === size) {
      p = 0;
      w ^= 1;
    }
  }
}

/** Reads the len/16 entries of an indirect table in order (entries chain implicitly; NEXT and ids are ignored). */
function walkIndirectTable(mem: GuestMemory, chain: DescriptorChain, pos: number, hi: number, lo: number, len: number): VirtqueueError | null {
  if (len === 0 || len % PVIRTQ_DESC_SIZE !== 0 || len > VIRTQ_PACKED_MAX_SIZE * PVIRTQ_DESC_SIZE) {
    return new VirtqueueError('INDIRECT_BAD_LENGTH', `chain at ring slot ${pos}: indirect table of ${len} bytes (must be a non-zero multiple of 16, at most ${VIRTQ_PACKED_MAX_SIZE} entries)`);
  }
  const gpa = hi < ADDR_HI_LIMIT ? hi * TWO_32 + lo : -1;
  const r = gpa < 0 ? -1 : mem.findRegion(gpa, len);
  if (r < 0) {
    return new VirtqueueError('ADDRESS_NOT_MAPPED', `chain at ring slot ${pos}: indirect table [${hex64(hi, lo)}, +${len}) is not inside one guest memory region`);
  }
  const dv = mem.views[r];
  const base = gpa - mem.starts[r];
  const n = len / PVIRTQ_DESC_SIZE;
  let writable = false;
  let total = 0;
  for (let k = 0; k < n; k++) {
    const o = base + k * PVIRTQ_DESC_SIZE;
    const elo = dv.getUint32(o, true);
    const ehi = dv.getUint32(o + 4, true);
    const elen = dv.getUint32(o + 8, true);
    const flags = dv.getUint16(o + 14, true);
    if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
      return new VirtqueueError('INDIRECT_NESTED', `chain at ring slot ${pos}: entry ${k} of the indirect table at ${hex64(hi, lo)} is itself indirect`);
    }
    if (elen === 0) continue;
    const isWrite = (flags & VIRTQ_DESC_F_WRITE) !== 0;
    if (isWrite) writable = true;
    else if (writable) {
      return new VirtqueueError('READABLE_AFTER_WRITABLE', `chain at ring slot ${pos}: indirect entry ${k} is device-readable after a device-writable one`);
    }
    total += elen;
    if (total > MAX_CHAIN_BYTES) {
      return new VirtqueueError('CHAIN_TOO_LONG', `chain at ring slot ${pos}: total length ${total} at indirect entry ${k} exceeds ${MAX_CHAIN_BYTES}`);
    }
    const seg = appendGuestSegments(mem, isWrite ? chain.in : chain.out, ehi, elo, elen);
    if (seg === SEG_UNMAPPED) {
      return new VirtqueueError('ADDRESS_NOT_MAPPED', `chain at ring slot ${pos}: indirect entry ${k}: [${hex64(ehi, elo)}, +${elen}) is not inside mapped guest memory`);
    }
    if (seg === SEG_FULL) {
      return new VirtqueueError('TOO_MANY_SEGMENTS', `chain at ring slot ${pos}: indirect entry ${k}: more than ${chain.out.capacity} ${isWrite ? 'writable' : 'readable'} segments`);
    }
  }
  return null;
}
