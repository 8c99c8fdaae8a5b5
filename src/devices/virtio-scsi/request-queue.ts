// A virtio-scsi request queue: header -> SCSI task -> response, with a preallocated request pool.
import { DescriptorChain } from '../../virtio/descriptor-chain.ts';
import type { Virtqueue } from '../../virtio/virtqueue.ts';
import { ScsiTask, type ScsiTaskWaiter } from '../../scsi/scsi-task.ts';
import type { QueueProcessor } from '../queue-processor.ts';
import { RequestPool } from '../request-pool.ts';
import type { ScsiTargetSet } from './target-set.ts';
import { lunFieldLun, lunFieldTarget } from './lun-address.ts';
import {
  VIRTIO_SCSI_CDB_SIZE,
  VIRTIO_SCSI_REQ_HEADER_SIZE,
  VIRTIO_SCSI_REQ_PI_HEADER_SIZE,
  VIRTIO_SCSI_RESP_SIZE,
  VIRTIO_SCSI_SENSE_SIZE,
  VIRTIO_SCSI_S_ABORTED,
  VIRTIO_SCSI_S_BAD_TARGET,
  VIRTIO_SCSI_S_FAILURE,
  VIRTIO_SCSI_S_OK,
} from './virtio-scsi-constants.ts';

/** Segments per chain: Linux uses seg_max (126) + header + response; indirect tables may hold more. */
export const MAX_SEGMENTS = 1024;

class ScsiRequest implements ScsiTaskWaiter {
  readonly chain = new DescriptorChain(MAX_SEGMENTS);
  readonly task = new ScsiTask();
  readonly header = new Uint8Array(VIRTIO_SCSI_REQ_PI_HEADER_SIZE);
  readonly headerView = new DataView(this.header.buffer);
  readonly response = new Uint8Array(VIRTIO_SCSI_RESP_SIZE);
  readonly responseView = new DataView(this.response.buffer);
  readonly queue: ScsiRequestQueue;
  constructor(queue: ScsiRequestQueue) {
    this.queue = queue;
    this.task.waiter = this;
    this.task.transportContext = this;
  }
  scsiTaskDone(): void {
    this.queue.complete(this, VIRTIO_SCSI_S_OK);
  }
}

export class ScsiRequestQueue implements QueueProcessor {
  readonly index: number;
  private readonly targets: ScsiTargetSet;
  private readonly markDirty: (index: number) => void;
  private vq: Virtqueue | null = null;
  private readonly requests = new RequestPool<ScsiRequest>(() => new ScsiRequest(this));
  /** T10_PI negotiated: the header carries pi_bytesout/pi_bytesin. */
  pi = false;

  constructor(index: number, targets: ScsiTargetSet, markDirty: (index: number) => void) {
    this.index = index;
    this.targets = targets;
    this.markDirty = markDirty;
  }

  attach(vq: Virtqueue): void {
    this.vq = vq;
    this.requests.grow(vq.size);
  }

  detach(): void {
    this.vq = null;
  }

  wantsAvail(): boolean {
    return true;
  }

  inflight(): number {
    return this.requests.active;
  }

  process(): number {
    const vq = this.vq;
    if (!vq) return 0;
    let n = 0;
    let req: ScsiRequest | null;
    while ((req = this.requests.take(vq)) !== null) {
      n++;
      this.start(req);
    }
    return n;
  }

  private start(req: ScsiRequest): void {
    const out = req.chain.out;
    const inn = req.chain.in;
    const headerSize = this.pi ? VIRTIO_SCSI_REQ_PI_HEADER_SIZE : VIRTIO_SCSI_REQ_HEADER_SIZE;
    const task = req.task;
    task.resetResult();
    task.dataOut = null;
    task.dataIn = null;
    task.dataOutLength = 0;
    task.dataInLength = 0;
    if (out.length < headerSize || inn.length < VIRTIO_SCSI_RESP_SIZE) {
      // No room for a header or a response: the request is malformed, answer what fits.
      this.complete(req, VIRTIO_SCSI_S_FAILURE);
      return;
    }
    const h = req.header;
    out.copyOut(0, h, 0, headerSize);
    const target = lunFieldTarget(h, 0);
    const lun = lunFieldLun(h, 0);
    if (target < 0 || !this.targets.has(target)) {
      this.complete(req, VIRTIO_SCSI_S_BAD_TARGET);
      return;
    }
    const hv = req.headerView;
    task.tagLo = hv.getUint32(8, true);
    task.tagHi = hv.getUint32(12, true);
    task.taskAttr = h[16];
    let dataOutOffset = headerSize;
    let dataInOffset = VIRTIO_SCSI_RESP_SIZE;
    if (this.pi) {
      // Protection information is not supported: skip the PI bytes, pass the data on.
      dataOutOffset += hv.getUint32(19, true);
      dataInOffset += hv.getUint32(23, true);
    }
    const cdbOffset = headerSize - VIRTIO_SCSI_CDB_SIZE;
    const cdb = task.cdb;
    for (let i = 0; i < VIRTIO_SCSI_CDB_SIZE; i++) cdb[i] = h[cdbOffset + i];
    task.cdbLength = VIRTIO_SCSI_CDB_SIZE;
    const outData = out.length - dataOutOffset;
    const inData = inn.length - dataInOffset;
    if (outData < 0 || inData < 0 || (outData > 0 && inData > 0)) {
      // Bidirectional commands need VIRTIO_SCSI_F_INOUT, which is not offered.
      this.complete(req, VIRTIO_SCSI_S_FAILURE);
      return;
    }
    if (outData > 0) {
      task.dataOut = out;
      task.dataOutOffset = dataOutOffset;
      task.dataOutLength = outData;
    }
    if (inData > 0) {
      task.dataIn = inn;
      task.dataInOffset = dataInOffset;
      task.dataInLength = inData;
    }
    this.targets.execute(target, lun, task);
  }

  /** Writes the response and returns the request to the pool. */
  complete(req: ScsiRequest, response: number): void {
    const task = req.task;
    const r = req.response;
    const rv = req.responseView;
    let usedLen = 0;
    if (req.chain.in.length >= VIRTIO_SCSI_RESP_SIZE) {
      let residual = 0;
      let senseLen = 0;
      let status = 0;
      if (response === VIRTIO_SCSI_S_OK) {
        if (task.aborted) response = VIRTIO_SCSI_S_ABORTED;
        status = task.status;
        senseLen = Math.min(task.senseLength, VIRTIO_SCSI_SENSE_SIZE);
        const windowLen = task.dataIn ? task.dataInLength : task.dataOutLength;
        residual = windowLen > task.transferred ? windowLen - task.transferred : 0;
      } else {
        const windowLen = task.dataIn ? task.dataInLength : task.dataOutLength;
        residual = windowLen;
      }
      rv.setUint32(0, senseLen, true);
      rv.setUint32(4, residual, true);
      rv.setUint16(8, 0, true);
      r[10] = status;
      r[11] = response;
      const sense = task.sense;
      for (let i = 0; i < VIRTIO_SCSI_SENSE_SIZE; i++) r[12 + i] = i < senseLen ? sense[i] : 0;
      req.chain.in.copyIn(0, r, 0, VIRTIO_SCSI_RESP_SIZE);
      usedLen = VIRTIO_SCSI_RESP_SIZE + (task.dataIn ? Math.min(task.transferred, task.dataInLength) : 0);
    }
    const vq = this.vq;
    if (vq) {
      vq.pushUsed(req.chain, usedLen);
      this.markDirty(this.index);
    }
    task.dataIn = null;
    task.dataOut = null;
    this.requests.give(req);
  }
}
