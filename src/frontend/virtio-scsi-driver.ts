// A virtio-scsi driver over DriverQueues (split or packed): what Linux's virtio_scsi does, for
// tests, fuzzing and load generation. Two APIs: a fast one (acquire / submit / kick / reap / release, no
// allocation per request) and a promise one (command() and the convenience calls) on top.
import type { GuestMemoryArena, GuestMemoryRegion } from './guest-memory-arena.ts';
import { DriverQueueError, type BufferList, type DriverQueue } from './driver-queue.ts';
import { CompletionPump, type CompletionMode } from './completion-pump.ts';
import { ScsiRequestSlot, type ScsiAddress, type ScsiCommandResult } from './scsi-request-slot.ts';
import { parseSense } from './scsi-cdb.ts';
import { ScsiLunCommands } from './scsi-lun-commands.ts';
import { ScsiControlQueue, type AnResult } from './scsi-control-queue.ts';
import { ScsiEventQueue } from './scsi-event-queue.ts';
import { VirtioScsiError } from './virtio-scsi-error.ts';
import type { QemuLikeSession } from './qemu-like-session.ts';
import * as W from './virtio-scsi-wire.ts';

export type { ScsiAddress, ScsiCommandResult } from './scsi-request-slot.ts';
export { VirtioScsiError, type VirtioScsiErrorCode } from './virtio-scsi-error.ts';

export interface VirtioScsiDriverOptions {
  arena: GuestMemoryArena;
  controlQueue: DriverQueue;
  eventQueue: DriverQueue | null;
  requestQueues: readonly DriverQueue[];
  /** Request slots per request queue (default min(queue size, 32)). */
  slotsPerQueue?: number;
  /** Data buffer per slot (default 64 KiB). */
  maxDataBytes?: number;
  /** Region for data buffers (default: the last region, so data and rings live in different regions). */
  dataRegion?: number;
  /** Region for headers and responses (default 0). */
  headerRegion?: number;
  cdbSize?: number;
  senseSize?: number;
  /** Split the request header into two descriptors at this byte (0 = one descriptor); the parts are not adjacent. */
  headerSplitAt?: number;
  /** Same for the response. */
  responseSplitAt?: number;
  /** Split the data buffer into descriptors of at most this many bytes (0 = one descriptor). */
  dataSegmentBytes?: number;
  /** Put each request chain into an indirect table. */
  indirect?: boolean;
  /** Event buffers kept posted on the event queue (default 8). */
  eventBuffers?: number;
  /** Promise API timeout per command (default 5000 ms). */
  timeoutMs?: number;
  /** How the promise API learns of completions: call eventfds (default), a poll timer, or only manual reap(). */
  completion?: CompletionMode;
  defaultAddress?: ScsiAddress;
}

const POISON = 0xa5;
const GAP_POISON = 0xee;

function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, n: number): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i];
}

export class VirtioScsiDriver {
  readonly arena: GuestMemoryArena;
  readonly control: ScsiControlQueue;
  readonly events: ScsiEventQueue | null;
  readonly requestQueues: readonly DriverQueue[];
  readonly slots: ScsiRequestSlot[] = [];
  /** After reap(): slots of the fast API that completed, [0, n). Release them when done. */
  readonly completed: ScsiRequestSlot[];
  /** Queue validation failures seen by the completion pump (device bugs). */
  readonly errors: Error[] = [];
  readonly cdbSize: number;
  readonly senseSize: number;
  readonly headerSize: number;
  readonly respSize: number;
  defaultAddress: ScsiAddress;
  private readonly o: VirtioScsiDriverOptions;
  private readonly freeSlots: number[][];
  private readonly headerRegion: GuestMemoryRegion;
  private nextId = 1;
  private pump: CompletionPump | null = null;
  private closed = false;

  constructor(o: VirtioScsiDriverOptions) {
    this.o = o;
    this.arena = o.arena;
    this.requestQueues = o.requestQueues;
    this.cdbSize = o.cdbSize ?? W.VIRTIO_SCSI_CDB_DEFAULT_SIZE;
    this.senseSize = o.senseSize ?? W.VIRTIO_SCSI_SENSE_DEFAULT_SIZE;
    this.headerSize = W.cmdReqSize(this.cdbSize);
    this.respSize = W.cmdRespSize(this.senseSize);
    this.defaultAddress = o.defaultAddress ?? { target: 0, lun: 0 };
    const hs = o.headerSplitAt ?? 0;
    const rs = o.responseSplitAt ?? 0;
    if (hs < 0 || hs >= this.headerSize || rs < 0 || rs >= this.respSize) {
      throw new VirtioScsiError('BAD_ARGUMENT', `split points must be inside the header (${this.headerSize}) and response (${this.respSize})`);
    }
    const maxData = o.maxDataBytes ?? 65536;
    const seg = o.dataSegmentBytes ?? 0;
    const dataDescs = seg > 0 ? Math.ceil(maxData / seg) : 1;
    // Longest chain: header parts + response parts + data (out and in together hold at most
    // maxData bytes, so at most one more segment than a single direction).
    const headerDescs = (hs > 0 ? 2 : 1) + (rs > 0 ? 2 : 1);
    const maxChain = headerDescs + dataDescs + 1;
    const headerRegionIndex = o.headerRegion ?? 0;
    const dataRegionIndex = o.dataRegion ?? o.arena.regions.length - 1;
    this.headerRegion = o.arena.regions[headerRegionIndex];
    for (const q of o.requestQueues) {
      const limit = o.indirect ? q.indirectMax : q.size;
      if (maxChain > limit) {
        throw new VirtioScsiError('BAD_ARGUMENT', `chains of up to ${maxChain} descriptors do not fit ${o.indirect ? 'the indirect table' : 'the queue'} (${limit})`);
      }
    }
    const perSide = maxChain;
    const perQueue = o.slotsPerQueue ?? Math.max(1, Math.min(32, ...o.requestQueues.map((q) => (o.indirect ? q.size : Math.floor(q.size / (headerDescs + 1))))));
    this.freeSlots = o.requestQueues.map(() => []);
    for (let qi = 0; qi < o.requestQueues.length; qi++) {
      for (let k = 0; k < perQueue; k++) {
        const a = o.arena;
        const headerGpaA = a.alloc(this.headerSize, 16, headerRegionIndex);
        if (hs > 0) a.allocFilled(64, GAP_POISON, 16, headerRegionIndex);
        const headerGpaB = hs > 0 ? a.alloc(this.headerSize, 16, headerRegionIndex) : headerGpaA;
        const respGpaA = a.alloc(this.respSize, 16, headerRegionIndex);
        if (rs > 0) a.allocFilled(64, GAP_POISON, 16, headerRegionIndex);
        const respGpaB = rs > 0 ? a.alloc(this.respSize, 16, headerRegionIndex) : respGpaA;
        const dataGpa = a.alloc(maxData, 4096, dataRegionIndex);
        const slot = new ScsiRequestSlot(this.slots.length, qi, a, { headerGpaA, headerGpaB, respGpaA, respGpaB, dataGpa },
          maxData, this.cdbSize, this.senseSize, this.headerSize, this.respSize, perSide);
        this.slots.push(slot);
        this.freeSlots[qi].push(slot.index);
      }
    }
    this.completed = new Array<ScsiRequestSlot>(this.slots.length);
    this.control = new ScsiControlQueue(o.arena, o.controlQueue, headerRegionIndex, o.timeoutMs ?? 5000);
    this.events = o.eventQueue ? new ScsiEventQueue(o.arena, o.eventQueue, o.eventBuffers ?? 8, headerRegionIndex) : null;
  }

  /** A driver on a QEMU-like session's queues: 0 control, 1 event, 2.. requests. */
  static fromSession(session: QemuLikeSession<DriverQueue>, opts: Omit<VirtioScsiDriverOptions, 'arena' | 'controlQueue' | 'eventQueue' | 'requestQueues'> = {}): VirtioScsiDriver {
    const [control, event, ...requests] = session.queues;
    if (!control || requests.length === 0 || requests.some((q) => q === null)) {
      throw new VirtioScsiError('BAD_ARGUMENT', 'a virtio-scsi session needs an initialised control queue and request queues 2..');
    }
    return new VirtioScsiDriver({ ...opts, arena: session.arena, controlQueue: control, eventQueue: event, requestQueues: requests as DriverQueue[] });
  }

  /** Posts the event buffers and starts the completion pump (per the completion option). */
  start(): void {
    this.events?.start();
    const queues = [this.control.queue, ...(this.events ? [this.events.queue] : []), ...this.requestQueues];
    this.pump?.stop();
    this.pump = new CompletionPump(queues, (q) => this.reapQueue(q), (e) => this.errors.push(e));
    this.pump.start(this.o.completion ?? 'interrupt');
  }

  /** Stops the pump and fails every pending promise with CLOSED. The queues are not closed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pump?.stop();
    const err = new VirtioScsiError('CLOSED', 'driver closed');
    for (const s of this.slots) this.settle(s, null, err);
    this.control.failAll(err);
  }

  // ---- fast API ---------------------------------------------------------------------------------

  /** A free slot of request queue qi, or null. */
  acquire(qi = 0): ScsiRequestSlot | null {
    const i = this.freeSlots[qi].pop();
    if (i === undefined) return null;
    const s = this.slots[i];
    s.acquired = true;
    s.abandoned = false;
    return s;
  }

  release(slot: ScsiRequestSlot): void {
    if (!slot.acquired || slot.inFlight) return;
    slot.acquired = false;
    this.freeSlots[slot.queueIndex].push(slot.index);
  }

  /**
   * Writes the slot's header (lunBytes, id, attributes, cdb) into guest memory, poisons the
   * response, builds the chain and adds it; false when the queue has no room. Call kick() after.
   */
  submit(slot: ScsiRequestSlot): boolean {
    const o = this.o;
    if (slot.dataOutLen < 0 || slot.dataInLen < 0 || slot.dataInOffset + slot.dataInLen > slot.maxDataBytes) {
      throw new VirtioScsiError('BAD_ARGUMENT', `data-out ${slot.dataOutLen} + data-in ${slot.dataInLen} bytes exceed the slot's ${slot.maxDataBytes}`);
    }
    if (slot.cdbLen > this.cdbSize) throw new VirtioScsiError('BAD_ARGUMENT', `CDB of ${slot.cdbLen} bytes exceeds cdb_size ${this.cdbSize}`);
    slot.id = this.nextId++;
    const hdr = slot.headerStage;
    copyBytes(slot.lunBytes, 0, hdr, 0, 8);
    W.putCmdReqAfterLun(hdr, 0, slot.id, slot.taskAttr, slot.prio, slot.crn, slot.cdb, slot.cdbLen, this.cdbSize);
    const L = slot.layout;
    const hs = o.headerSplitAt ?? 0;
    const rs = o.responseSplitAt ?? 0;
    const mem = this.headerRegion.bytes;
    const base = this.headerRegion.guestPhysAddr;
    const out = slot.out.clear();
    const inb = slot.in.clear();
    if (hs > 0) {
      copyBytes(hdr, 0, mem, L.headerGpaA - base, hs);
      copyBytes(hdr, hs, mem, L.headerGpaB - base, this.headerSize - hs);
      out.push(L.headerGpaA, hs).push(L.headerGpaB, this.headerSize - hs);
    } else {
      copyBytes(hdr, 0, mem, L.headerGpaA - base, this.headerSize);
      out.push(L.headerGpaA, this.headerSize);
    }
    this.pushData(out, L.dataGpa, slot.dataOutLen);
    mem.fill(POISON, L.respGpaA - base, L.respGpaA - base + this.respSize);
    if (rs > 0) {
      mem.fill(POISON, L.respGpaB - base, L.respGpaB - base + this.respSize);
      inb.push(L.respGpaA, rs).push(L.respGpaB, this.respSize - rs);
    } else {
      inb.push(L.respGpaA, this.respSize);
    }
    this.pushData(inb, L.dataGpa + slot.dataInOffset, slot.dataInLen);
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
   * Reaps request queue qi: decodes each completion into its slot. Promise-API slots are settled;
   * fast-API slots go to completed[0, n). Returns n. Throws DriverQueueError on a device bug.
   */
  reap(qi = 0): number {
    const q = this.requestQueues[qi];
    const n = q.pollUsed();
    let out = 0;
    for (let k = 0; k < n; k++) {
      const slot = this.slots[q.completedTokens[k]];
      this.readResponse(slot, q.completedLens[k]);
      if (slot.resolve || slot.abandoned) this.finishPromise(slot);
      else this.completed[out++] = slot;
    }
    return out;
  }

  private readResponse(slot: ScsiRequestSlot, usedLen: number): void {
    slot.inFlight = false;
    slot.usedLen = usedLen;
    const L = slot.layout;
    const mem = this.headerRegion.bytes;
    const base = this.headerRegion.guestPhysAddr;
    const rs = this.o.responseSplitAt ?? 0;
    if (rs > 0) {
      copyBytes(mem, L.respGpaA - base, slot.respStage, 0, rs);
      copyBytes(mem, L.respGpaB - base, slot.respStage, rs, this.respSize - rs);
    } else {
      copyBytes(mem, L.respGpaA - base, slot.respStage, 0, this.respSize);
    }
    slot.resp.decode(slot.respStage, 0);
    copyBytes(slot.respStage, W.VIRTIO_SCSI_CMD_RESP_FIXED_SIZE, slot.sense, 0, this.senseSize);
  }

  /** The request id (task tag) of the command submitted last: what ABORT TASK / QUERY TASK name. */
  get lastRequestId(): number {
    return this.nextId - 1;
  }

  // ---- promise API ------------------------------------------------------------------------------

  /**
   * Sends one command and resolves with its result. at defaults to defaultAddress; lunBytes
   * (8 bytes) overrides the LUN field entirely (hostile tests).
   */
  command(cdb: Uint8Array, dataOut: Uint8Array | null, dataInLen: number, at: ScsiAddress = this.defaultAddress,
    opts: { qi?: number; taskAttr?: number; lunBytes?: Uint8Array; timeoutMs?: number } = {}): Promise<ScsiCommandResult> {
    if (this.closed) return Promise.reject(new VirtioScsiError('CLOSED', 'driver closed'));
    const qi = opts.qi ?? 0;
    const slot = this.acquire(qi);
    if (!slot) return Promise.reject(new VirtioScsiError('NO_FREE_SLOT', `all slots of request queue ${qi} are busy`));
    const outLen = dataOut ? dataOut.length : 0;
    if (cdb.length > this.cdbSize || ((outLen + 7) & ~7) + dataInLen > slot.maxDataBytes) {
      this.release(slot);
      return Promise.reject(new VirtioScsiError('BAD_ARGUMENT', `CDB ${cdb.length} bytes or data ${outLen}+${dataInLen} bytes too large`));
    }
    if (opts.lunBytes) slot.lunBytes.set(opts.lunBytes.subarray(0, 8));
    else slot.setAddress(at.target, at.lun);
    slot.cdb.fill(0);
    slot.cdb.set(cdb);
    slot.cdbLen = cdb.length;
    slot.taskAttr = opts.taskAttr ?? W.VIRTIO_SCSI_S_SIMPLE;
    slot.dataOutLen = outLen;
    slot.dataInLen = dataInLen;
    if (dataOut) slot.data.set(dataOut, 0);
    slot.data.fill(POISON, slot.dataInOffset, slot.dataInOffset + dataInLen);
    let added: boolean;
    try {
      added = this.submit(slot);
    } catch (e) {
      this.release(slot);
      return Promise.reject(e instanceof DriverQueueError ? new VirtioScsiError('QUEUE_BROKEN', e.message) : e);
    }
    if (!added) {
      this.release(slot);
      return Promise.reject(new VirtioScsiError('QUEUE_FULL', `request queue ${qi} has no free descriptors`));
    }
    const p = new Promise<ScsiCommandResult>((resolve, reject) => {
      slot.resolve = resolve;
      slot.reject = reject;
      slot.timer = setTimeout(() => {
        slot.abandoned = true;
        this.settle(slot, null, new VirtioScsiError('TIMEOUT', `command 0x${cdb[0].toString(16)} (id ${slot.id}) did not complete in ${opts.timeoutMs ?? this.o.timeoutMs ?? 5000} ms`));
      }, opts.timeoutMs ?? this.o.timeoutMs ?? 5000);
    });
    this.kick(qi);
    return p;
  }

  private finishPromise(slot: ScsiRequestSlot): void {
    if (slot.abandoned) {
      slot.abandoned = false;
      this.release(slot);
      return;
    }
    const r = slot.resp;
    const senseBytes = slot.sense.slice(0, Math.min(r.senseLen, this.senseSize));
    const si = parseSense(senseBytes);
    const transferred = slot.dataInLen - Math.min(r.residual, slot.dataInLen);
    const result: ScsiCommandResult = {
      response: r.response, status: r.status, statusQualifier: r.statusQualifier, senseLen: r.senseLen, residual: r.residual,
      sense: senseBytes, senseKey: si ? si.key : -1, asc: si ? si.asc : -1, ascq: si ? si.ascq : -1,
      data: slot.data.slice(slot.dataInOffset, slot.dataInOffset + transferred), usedLen: slot.usedLen,
    };
    this.settle(slot, result, null);
  }

  private settle(slot: ScsiRequestSlot, result: ScsiCommandResult | null, err: Error | null): void {
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
    try {
      if (q === this.control.queue) this.control.reap();
      else if (q === this.events?.queue) this.events.reap();
      else {
        const qi = this.requestQueues.indexOf(q);
        const n = this.reap(qi);
        if (n > 0) this.errors.push(new VirtioScsiError('BAD_ARGUMENT', `${n} fast-API completions reaped by the promise pump`));
      }
    } catch (e) {
      this.queueBroken(q, e as Error);
    }
  }

  private queueBroken(q: DriverQueue, e: Error): void {
    if (this.errors.includes(e)) return;
    this.errors.push(e);
    const err = new VirtioScsiError('QUEUE_BROKEN', `queue broken by the device: ${e.message}`);
    if (q === this.control.queue) this.control.failAll(err);
    const qi = this.requestQueues.indexOf(q);
    if (qi >= 0) for (const s of this.slots) if (s.queueIndex === qi) this.settle(s, null, err);
  }

  // ---- control and event queues -----------------------------------------------------------------

  /** A task management function; resolves with the response byte (VIRTIO_SCSI_S_FUNCTION_*). */
  tmf(subtype: number, at: ScsiAddress = this.defaultAddress, taskId = 0): Promise<number> {
    return this.closed ? Promise.reject(new VirtioScsiError('CLOSED', 'driver closed')) : this.control.tmf(subtype, at, taskId);
  }

  anQuery(eventRequested: number, at: ScsiAddress = this.defaultAddress): Promise<AnResult> {
    return this.control.asyncNotification(W.VIRTIO_SCSI_T_AN_QUERY, eventRequested, at);
  }

  anSubscribe(eventRequested: number, at: ScsiAddress = this.defaultAddress): Promise<AnResult> {
    return this.control.asyncNotification(W.VIRTIO_SCSI_T_AN_SUBSCRIBE, eventRequested, at);
  }

  /** The next event from the event queue not yet returned, waiting up to timeoutMs. */
  nextEvent(timeoutMs = this.o.timeoutMs ?? 5000): Promise<W.ScsiEvent> {
    if (!this.events) return Promise.reject(new VirtioScsiError('BAD_ARGUMENT', 'driver has no event queue'));
    return this.events.next(timeoutMs);
  }

  /** Convenience commands against one LUN (testUnitReady, inquiry, read10, ...). */
  lun(at: ScsiAddress = this.defaultAddress): ScsiLunCommands {
    return new ScsiLunCommands(this, at);
  }
}

export { DriverQueueError, ScsiLunCommands };
