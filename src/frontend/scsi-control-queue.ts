// The virtio-scsi control queue (virtqueue 0): task management functions and asynchronous
// notification queries/subscriptions. Low rate, so a promise per request is fine here.
import type { GuestMemoryArena } from './guest-memory-arena.ts';
import { BufferList, type DriverQueue } from './driver-queue.ts';
import type { ScsiAddress } from './scsi-request-slot.ts';
import { VirtioScsiError } from './virtio-scsi-error.ts';
import * as W from './virtio-scsi-wire.ts';

const CONTROL_SLOTS = 4;
const CONTROL_BUF = 32;
const POISON = 0xa5;

interface ControlSlot {
  reqGpa: number;
  respGpa: number;
  out: BufferList;
  in: BufferList;
  busy: boolean;
  respLen: number;
  resolve: ((b: Uint8Array) => void) | null;
  reject: ((e: Error) => void) | null;
  timer: ReturnType<typeof setTimeout> | null;
}

export interface AnResult {
  eventActual: number;
  response: number;
}

export class ScsiControlQueue {
  readonly queue: DriverQueue;
  timeoutMs: number;
  private readonly arena: GuestMemoryArena;
  private readonly slots: ControlSlot[] = [];

  constructor(arena: GuestMemoryArena, queue: DriverQueue, regionIndex: number, timeoutMs: number) {
    this.arena = arena;
    this.queue = queue;
    this.timeoutMs = timeoutMs;
    for (let i = 0; i < CONTROL_SLOTS; i++) {
      this.slots.push({
        reqGpa: arena.alloc(CONTROL_BUF, 16, regionIndex),
        respGpa: arena.alloc(CONTROL_BUF, 16, regionIndex),
        out: new BufferList(1), in: new BufferList(1), busy: false, respLen: 0, resolve: null, reject: null, timer: null,
      });
    }
  }

  /** Sends req (device-readable) with a respLen-byte device-writable buffer; resolves with the response bytes. */
  request(req: Uint8Array, respLen: number, timeoutMs = this.timeoutMs): Promise<Uint8Array> {
    if (req.length > CONTROL_BUF || respLen > CONTROL_BUF) return Promise.reject(new VirtioScsiError('BAD_ARGUMENT', `control buffers hold ${CONTROL_BUF} bytes`));
    const token = this.slots.findIndex((x) => !x.busy);
    if (token < 0) return Promise.reject(new VirtioScsiError('NO_FREE_SLOT', 'all control slots are busy'));
    const c = this.slots[token];
    this.arena.bytesAt(c.reqGpa, req.length).set(req);
    this.arena.bytesAt(c.respGpa, respLen).fill(POISON);
    c.out.clear().push(c.reqGpa, req.length);
    c.in.clear().push(c.respGpa, respLen);
    if (this.queue.add(c.out, c.in, token, false) < 0) return Promise.reject(new VirtioScsiError('QUEUE_FULL', 'control queue full'));
    c.busy = true;
    c.respLen = respLen;
    const p = new Promise<Uint8Array>((resolve, reject) => {
      c.resolve = resolve;
      c.reject = reject;
      c.timer = setTimeout(() => this.settle(c, null, new VirtioScsiError('TIMEOUT', `control request did not complete in ${timeoutMs} ms`)), timeoutMs);
    });
    this.queue.kick();
    return p;
  }

  /** Reaps completions (throws DriverQueueError on a device bug). */
  reap(): void {
    const n = this.queue.pollUsed();
    for (let k = 0; k < n; k++) {
      const c = this.slots[this.queue.completedTokens[k]];
      c.busy = false;
      this.settle(c, this.arena.bytesAt(c.respGpa, c.respLen).slice(), null);
    }
  }

  failAll(err: Error): void {
    for (const c of this.slots) this.settle(c, null, err);
  }

  private settle(c: ControlSlot, resp: Uint8Array | null, err: Error | null): void {
    const resolve = c.resolve;
    const reject = c.reject;
    if (!resolve || !reject) return;
    if (c.timer) clearTimeout(c.timer);
    c.timer = null;
    c.resolve = null;
    c.reject = null;
    if (resp) resolve(resp);
    else if (err) reject(err);
  }

  /** A task management function; resolves with the response byte (VIRTIO_SCSI_S_FUNCTION_*, or an error code). */
  async tmf(subtype: number, at: ScsiAddress, taskId = 0): Promise<number> {
    const req = new Uint8Array(W.VIRTIO_SCSI_CTRL_TMF_REQ_SIZE);
    W.putTmfReq(req, 0, subtype, taskId);
    W.putLun(req, 8, at.target, at.lun);
    const r = await this.request(req, W.VIRTIO_SCSI_CTRL_TMF_RESP_SIZE);
    return r[0];
  }

  /** AN_QUERY (type 1) or AN_SUBSCRIBE (type 2). */
  async asyncNotification(type: number, eventRequested: number, at: ScsiAddress): Promise<AnResult> {
    const req = new Uint8Array(W.VIRTIO_SCSI_CTRL_AN_REQ_SIZE);
    W.putAnReq(req, 0, type, eventRequested);
    W.putLun(req, 4, at.target, at.lun);
    const r = await this.request(req, W.VIRTIO_SCSI_CTRL_AN_RESP_SIZE);
    return { eventActual: W.getU32(r, 0), response: r[4] };
  }
}
