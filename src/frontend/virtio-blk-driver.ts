// A virtio-blk driver over DriverQueues (split or packed, one or several request queues): what
// Linux's virtio_blk does, for tests, fuzzing and load generation. A request is a 16-byte header
// {u32 type; u32 reserved; u64 sector}, data, and a 1-byte status the device writes last. Two
// APIs: a fast one (acquire / submit / kick / reap / release, no allocation per request) and a
// promise one on top (read, write, flush, getId, discard, writeZeroes, request for any type).
import type { GuestMemoryArena, GuestMemoryRegion } from './guest-memory-arena.ts';
import { DriverQueueError, type BufferList, type DriverQueue } from './driver-queue.ts';
import { CompletionPump, type CompletionMode } from './completion-pump.ts';
import { BlkRequestSlot, type BlkResult } from './blk-request-slot.ts';
import { VirtioBlkError } from './virtio-blk-error.ts';
import type { QemuLikeSession } from './qemu-like-session.ts';
import * as B from './virtio-blk-wire.ts';

export type { BlkResult } from './blk-request-slot.ts';
export { BlkRequestSlot } from './blk-request-slot.ts';
export { VirtioBlkError, type VirtioBlkErrorCode } from './virtio-blk-error.ts';

export interface VirtioBlkDriverOptions {
  arena: GuestMemoryArena;
  requestQueues: readonly DriverQueue[];
  /** Request slots per queue (default min(32, what the ring holds)). */
  slotsPerQueue?: number;
  /** Data buffer per slot (default 64 KiB). */
  maxDataBytes?: number;
  /** Region for data buffers (default: the last region). */
  dataRegion?: number;
  /** Region for headers and status bytes (default 0). */
  headerRegion?: number;
  /** Split the 16-byte header into two non-adjacent descriptors at this byte (0 = one descriptor). */
  headerSplitAt?: number;
  /** Split data into descriptors of at most this many bytes (0 = one descriptor). */
  dataSegmentBytes?: number;
  /** Header and data-out in one descriptor (the header sits right before the data). */
  headerWithData?: boolean;
  /** Data-in and the status byte in one descriptor (the status byte right after the data). */
  statusWithData?: boolean;
  /** Put each request chain into an indirect table. */
  indirect?: boolean;
  /** Promise API timeout per request (default 5000 ms). */
  timeoutMs?: number;
  completion?: CompletionMode;
}

export interface BlkRequestOptions {
  qi?: number;
  /** The header's reserved field (hostile tests). */
  reserved?: number;
  timeoutMs?: number;
}

const POISON = 0xa5;
const GAP_POISON = 0xee;
const MERGED_HEADER_LEAD = 4096;

function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, n: number): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i];
}

export class VirtioBlkDriver {
  readonly arena: GuestMemoryArena;
  readonly requestQueues: readonly DriverQueue[];
  readonly slots: BlkRequestSlot[] = [];
  /** After reap(): fast-API slots that completed, [0, n). Release them when done. */
  readonly completed: BlkRequestSlot[];
  /** Queue validation failures seen by the completion pump (device bugs). */
  readonly errors: Error[] = [];
  private readonly o: VirtioBlkDriverOptions;
  private readonly freeSlots: number[][];
  private readonly headerRegion: GuestMemoryRegion;
  private readonly dataRegion: GuestMemoryRegion;
  private readonly pump: CompletionPump;
  private closed = false;

  constructor(o: VirtioBlkDriverOptions) {
    this.o = o;
    this.arena = o.arena;
    this.requestQueues = o.requestQueues;
    if (o.requestQueues.length === 0) throw new VirtioBlkError('BAD_ARGUMENT', 'a virtio-blk driver needs at least one request queue');
    const hs = o.headerSplitAt ?? 0;
    if (hs < 0 || hs >= B.VIRTIO_BLK_OUTHDR_SIZE || (hs > 0 && o.headerWithData)) {
      throw new VirtioBlkError('BAD_ARGUMENT', `headerSplitAt ${hs} must be inside the ${B.VIRTIO_BLK_OUTHDR_SIZE}-byte header, and not combined with headerWithData`);
    }
    const maxData = o.maxDataBytes ?? 65536;
    const seg = o.dataSegmentBytes ?? 0;
    // Longest chain: header parts + data segments (+1: data-in may start mid-segment) + status.
    const maxChain = (hs > 0 ? 2 : 1) + (seg > 0 ? Math.ceil(maxData / seg) + 1 : 1) + 1;
    for (const q of o.requestQueues) {
      const limit = o.indirect ? q.indirectMax : q.size;
      if (maxChain > limit) {
        throw new VirtioBlkError('BAD_ARGUMENT', `chains of up to ${maxChain} descriptors do not fit ${o.indirect ? 'the indirect table' : 'the queue'} (${limit})`);
      }
    }
    const headerRegionIndex = o.headerRegion ?? 0;
    const dataRegionIndex = o.dataRegion ?? o.arena.regions.length - 1;
    this.headerRegion = o.arena.regions[headerRegionIndex];
    this.dataRegion = o.arena.regions[dataRegionIndex];
    const perQueue = o.slotsPerQueue ?? Math.max(1, Math.min(32, ...o.requestQueues.map((q) => (o.indirect ? q.size : Math.floor(q.size / 3)))));
    this.freeSlots = o.requestQueues.map(() => []);
    const a = o.arena;
    for (let qi = 0; qi < o.requestQueues.length; qi++) {
      for (let k = 0; k < perQueue; k++) {
        const headerGpaA = a.alloc(B.VIRTIO_BLK_OUTHDR_SIZE, 16, headerRegionIndex);
        if (hs > 0) a.allocFilled(64, GAP_POISON, 16, headerRegionIndex);
        const headerGpaB = hs > 0 ? a.alloc(B.VIRTIO_BLK_OUTHDR_SIZE, 16, headerRegionIndex) : headerGpaA;
        const statusGpa = a.alloc(16, 16, headerRegionIndex);
        // The merged layouts need 16 bytes before the data and one after it.
        const lead = o.headerWithData ? MERGED_HEADER_LEAD : 0;
        const dataGpa = a.alloc(lead + maxData + 16, 4096, dataRegionIndex) + lead;
        const layout = { headerGpaA, headerGpaB, statusGpa, dataGpa, mergedHeaderGpa: dataGpa - B.VIRTIO_BLK_OUTHDR_SIZE };
        const slot = new BlkRequestSlot(this.slots.length, qi, a, layout, maxData, maxChain);
        this.slots.push(slot);
        this.freeSlots[qi].push(slot.index);
      }
    }
    this.completed = new Array<BlkRequestSlot>(this.slots.length);
    this.pump = new CompletionPump(o.requestQueues, (q) => this.reapQueue(q), (e) => this.errors.push(e));
  }

  /** A driver on every queue of a QEMU-like blk session (all queues are request queues). */
  static fromSession(session: QemuLikeSession<DriverQueue>, opts: Omit<VirtioBlkDriverOptions, 'arena' | 'requestQueues'> = {}): VirtioBlkDriver {
    const qs = session.queues;
    if (qs.length === 0 || qs.some((q) => q === null)) throw new VirtioBlkError('BAD_ARGUMENT', 'a virtio-blk session needs every queue initialised');
    return new VirtioBlkDriver({ ...opts, arena: session.arena, requestQueues: qs as DriverQueue[] });
  }

  /** Starts the completion pump (per the completion option). */
  start(): void {
    this.pump.start(this.o.completion ?? 'interrupt');
  }

  /** Stops the pump and fails every pending promise with CLOSED. The queues are not closed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pump.stop();
    const err = new VirtioBlkError('CLOSED', 'driver closed');
    for (const s of this.slots) this.settle(s, null, err);
  }

  // ---- fast API ---------------------------------------------------------------------------------

  /** A free slot of request queue qi, or null. */
  acquire(qi = 0): BlkRequestSlot | null {
    const i = this.freeSlots[qi].pop();
    if (i === undefined) return null;
    const s = this.slots[i];
    s.acquired = true;
    s.abandoned = false;
    return s;
  }

  release(slot: BlkRequestSlot): void {
    if (!slot.acquired || slot.inFlight) return;
    slot.acquired = false;
    this.freeSlots[slot.queueIndex].push(slot.index);
  }

  /**
   * Writes the slot's header (type, reserved, sector) into guest memory, poisons the status byte,
   * builds the chain (header, data-out, data-in, status) per the layout options and adds it;
   * false when the queue has no room. Call kick() after.
   */
  submit(slot: BlkRequestSlot): boolean {
    const o = this.o;
    if (slot.dataOutLen < 0 || slot.dataInLen < 0 || slot.dataInOffset + slot.dataInLen > slot.maxDataBytes) {
      throw new VirtioBlkError('BAD_ARGUMENT', `data-out ${slot.dataOutLen} + data-in ${slot.dataInLen} bytes exceed the slot's ${slot.maxDataBytes}`);
    }
    const hdr = slot.headerStage;
    B.putBlkOutHdr(hdr, 0, slot.type, slot.sector, slot.reserved);
    const L = slot.layout;
    const hs = o.headerSplitAt ?? 0;
    const out = slot.out.clear();
    const inb = slot.in.clear();
    const hm = this.headerRegion.bytes;
    const hb = this.headerRegion.guestPhysAddr;
    if (o.headerWithData) {
      copyBytes(hdr, 0, this.dataRegion.bytes, L.mergedHeaderGpa - this.dataRegion.guestPhysAddr, B.VIRTIO_BLK_OUTHDR_SIZE);
      out.push(L.mergedHeaderGpa, B.VIRTIO_BLK_OUTHDR_SIZE + slot.dataOutLen);
    } else {
      if (hs > 0) {
        copyBytes(hdr, 0, hm, L.headerGpaA - hb, hs);
        copyBytes(hdr, hs, hm, L.headerGpaB - hb, B.VIRTIO_BLK_OUTHDR_SIZE - hs);
        out.push(L.headerGpaA, hs).push(L.headerGpaB, B.VIRTIO_BLK_OUTHDR_SIZE - hs);
      } else {
        copyBytes(hdr, 0, hm, L.headerGpaA - hb, B.VIRTIO_BLK_OUTHDR_SIZE);
        out.push(L.headerGpaA, B.VIRTIO_BLK_OUTHDR_SIZE);
      }
      this.pushData(out, L.dataGpa, slot.dataOutLen);
    }
    const inStart = inb.count;
    this.pushData(inb, L.dataGpa + slot.dataInOffset, slot.dataInLen);
    if (o.statusWithData && inb.count > inStart) {
      inb.lens[inb.count - 1] += B.VIRTIO_BLK_STATUS_SIZE;
      slot.statusGpa = L.dataGpa + slot.dataInOffset + slot.dataInLen;
      slot.statusMem = this.dataRegion.bytes;
      slot.statusOff = slot.statusGpa - this.dataRegion.guestPhysAddr;
    } else {
      inb.push(L.statusGpa, B.VIRTIO_BLK_STATUS_SIZE);
      slot.statusGpa = L.statusGpa;
      slot.statusMem = hm;
      slot.statusOff = L.statusGpa - hb;
    }
    slot.statusMem[slot.statusOff] = POISON;
    const q = this.requestQueues[slot.queueIndex];
    if (q.add(out, inb, slot.index, o.indirect ?? false) < 0) return false;
    slot.inFlight = true;
    return true;
  }

  private pushData(list: BufferList, gpa: number, len: number): void {
    if (len === 0) return;
    const seg = this.o.dataSegmentBytes ?? 0;
    if (seg <= 0) {
      list.push(gpa, len);
      return;
    }
    for (let off = 0; off < len; off += seg) list.push(gpa + off, Math.min(seg, len - off));
  }

  kick(qi = 0): boolean {
    return this.requestQueues[qi].kick();
  }

  /**
   * Reaps request queue qi: reads each completion's status byte into its slot. Promise-API slots
   * are settled; fast-API slots go to completed[0, n). Returns n. Throws DriverQueueError on a device bug.
   */
  reap(qi = 0): number {
    const q = this.requestQueues[qi];
    const n = q.pollUsed();
    let out = 0;
    for (let k = 0; k < n; k++) {
      const slot = this.slots[q.completedTokens[k]];
      slot.inFlight = false;
      slot.usedLen = q.completedLens[k];
      slot.status = slot.statusMem[slot.statusOff];
      if (slot.resolve || slot.abandoned) this.finishPromise(slot);
      else this.completed[out++] = slot;
    }
    return out;
  }

  // ---- promise API ------------------------------------------------------------------------------

  /** Any request: type (any u32), sector, data-out bytes and data-in length. */
  request(type: number, sector: number, dataOut: Uint8Array | null, dataInLen: number, opts: BlkRequestOptions = {}): Promise<BlkResult> {
    if (this.closed) return Promise.reject(new VirtioBlkError('CLOSED', 'driver closed'));
    const qi = opts.qi ?? 0;
    if (!Number.isInteger(qi) || qi < 0 || qi >= this.requestQueues.length) {
      return Promise.reject(new VirtioBlkError('BAD_ARGUMENT', `no request queue ${qi} (have ${this.requestQueues.length})`));
    }
    if (!Number.isSafeInteger(sector) || sector < 0) return Promise.reject(new VirtioBlkError('BAD_ARGUMENT', `sector ${sector} is not a u64 below 2^53`));
    const slot = this.acquire(qi);
    if (!slot) return Promise.reject(new VirtioBlkError('NO_FREE_SLOT', `all slots of request queue ${qi} are busy`));
    const outLen = dataOut ? dataOut.length : 0;
    if (((outLen + 7) & ~7) + dataInLen > slot.maxDataBytes) {
      this.release(slot);
      return Promise.reject(new VirtioBlkError('BAD_ARGUMENT', `data ${outLen}+${dataInLen} bytes exceed the slot's ${slot.maxDataBytes}`));
    }
    slot.type = type >>> 0;
    slot.reserved = (opts.reserved ?? 0) >>> 0;
    slot.sector = sector;
    slot.dataOutLen = outLen;
    slot.dataInLen = dataInLen;
    if (dataOut) slot.data.set(dataOut, 0);
    slot.data.fill(POISON, slot.dataInOffset, slot.dataInOffset + dataInLen);
    let added: boolean;
    try {
      added = this.submit(slot);
    } catch (e) {
      this.release(slot);
      return Promise.reject(e instanceof DriverQueueError ? new VirtioBlkError('QUEUE_BROKEN', e.message) : e);
    }
    if (!added) {
      this.release(slot);
      return Promise.reject(new VirtioBlkError('QUEUE_FULL', `request queue ${qi} has no free descriptors`));
    }
    const timeoutMs = opts.timeoutMs ?? this.o.timeoutMs ?? 5000;
    const p = new Promise<BlkResult>((resolve, reject) => {
      slot.resolve = resolve;
      slot.reject = reject;
      slot.timer = setTimeout(() => {
        slot.abandoned = true;
        this.settle(slot, null, new VirtioBlkError('TIMEOUT', `request type ${type} sector ${sector} did not complete in ${timeoutMs} ms`));
      }, timeoutMs);
    });
    this.kick(qi);
    return p;
  }

  /** IN: count 512-byte sectors from sector. */
  read(sector: number, count: number, opts?: BlkRequestOptions): Promise<BlkResult> {
    return this.request(B.VIRTIO_BLK_T_IN, sector, null, count * B.VIRTIO_BLK_SECTOR_SIZE, opts);
  }

  /** OUT: data.length must be a multiple of 512 (use request() to send anything else). */
  write(sector: number, data: Uint8Array, opts?: BlkRequestOptions): Promise<BlkResult> {
    if (data.length % B.VIRTIO_BLK_SECTOR_SIZE !== 0) {
      return Promise.reject(new VirtioBlkError('BAD_ARGUMENT', `write of ${data.length} bytes is not a multiple of ${B.VIRTIO_BLK_SECTOR_SIZE}`));
    }
    return this.request(B.VIRTIO_BLK_T_OUT, sector, data, 0, opts);
  }

  flush(opts?: BlkRequestOptions): Promise<BlkResult> {
    return this.request(B.VIRTIO_BLK_T_FLUSH, 0, null, 0, opts);
  }

  /** GET_ID: the 20-byte serial, and it decoded up to the first NUL. */
  async getId(opts?: BlkRequestOptions): Promise<BlkResult & { id: string }> {
    const r = await this.request(B.VIRTIO_BLK_T_GET_ID, 0, null, B.VIRTIO_BLK_ID_BYTES, opts);
    return { ...r, id: B.decodeBlkId(r.data) };
  }

  discard(segments: readonly B.BlkSegment[], opts?: BlkRequestOptions): Promise<BlkResult> {
    return this.request(B.VIRTIO_BLK_T_DISCARD, 0, this.segmentBytes(segments, -1), 0, opts);
  }

  /** WRITE_ZEROES; unmap sets flag bit 0 on every segment (per-segment flags are used when unmap is undefined). */
  writeZeroes(segments: readonly B.BlkSegment[], unmap?: boolean, opts?: BlkRequestOptions): Promise<BlkResult> {
    const flags = unmap === undefined ? -1 : unmap ? B.VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
    return this.request(B.VIRTIO_BLK_T_WRITE_ZEROES, 0, this.segmentBytes(segments, flags), 0, opts);
  }

  secureErase(segments: readonly B.BlkSegment[], opts?: BlkRequestOptions): Promise<BlkResult> {
    return this.request(B.VIRTIO_BLK_T_SECURE_ERASE, 0, this.segmentBytes(segments, -1), 0, opts);
  }

  private segmentBytes(segments: readonly B.BlkSegment[], flags: number): Uint8Array {
    const b = new Uint8Array(B.VIRTIO_BLK_DISCARD_SEGMENT_SIZE * segments.length);
    B.putBlkSegments(b, 0, segments, flags);
    return b;
  }

  private finishPromise(slot: BlkRequestSlot): void {
    if (slot.abandoned) {
      slot.abandoned = false;
      this.release(slot);
      return;
    }
    const result: BlkResult = {
      status: slot.status,
      data: slot.data.slice(slot.dataInOffset, slot.dataInOffset + slot.dataInLen),
      usedLen: slot.usedLen,
    };
    this.settle(slot, result, null);
  }

  private settle(slot: BlkRequestSlot, result: BlkResult | null, err: Error | null): void {
    const resolve = slot.resolve;
    const reject = slot.reject;
    if (!resolve || !reject) return;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.resolve = null;
    slot.reject = null;
    if (!slot.inFlight) this.release(slot);
    if (result) resolve(result);
    else if (err) reject(err);
  }

  private reapQueue(q: DriverQueue): void {
    const qi = this.requestQueues.indexOf(q);
    try {
      const n = this.reap(qi);
      if (n > 0) this.errors.push(new VirtioBlkError('BAD_ARGUMENT', `${n} fast-API completions reaped by the promise pump`));
    } catch (e) {
      if (this.errors.includes(e as Error)) return;
      this.errors.push(e as Error);
      const err = new VirtioBlkError('QUEUE_BROKEN', `queue broken by the device: ${(e as Error).message}`);
      for (const s of this.slots) if (s.queueIndex === qi) this.settle(s, null, err);
    }
  }
}
