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
/** Response bytes before the sense data: sense_len, residual, status_qualifier, status, response. */
const RESP_FIXED_SIZE = VIRTIO_SCSI_RESP_SIZE - VIRTIO_SCSI_SENSE_SIZE;

function le32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

function putLe32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

class ScsiRequest implements ScsiTaskWaiter {
  readonly chain = new DescriptorChain(MAX_SEGMENTS);
  readonly task = new ScsiTask();
  /** The header when the guest split it over several segments (else it is read in place). */
  readonly header = new Uint8Array(VIRTIO_SCSI_REQ_PI_HEADER_SIZE);
  /** The response when the guest split its buffer (else it is written in place). */
  readonly response = new Uint8Array(VIRTIO_SCSI_RESP_SIZE);
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
    // The header is read in place when one segment holds it (Linux, SPDK, QEMU): every byte is
    // read once, so a guest changing it meanwhile cannot pass one check and act on another value.
    let h = out.bufs[0];
    let ho = out.offsets[0];
    if (out.lengths[0] < headerSize) {
      h = req.header;
      ho = 0;
      out.copyOut(0, h, 0, headerSize);
    }
    const target = lunFieldTarget(h, ho);
    const lun = lunFieldLun(h, ho);
    if (target < 0 || !this.targets.has(target)) {
      this.complete(req, VIRTIO_SCSI_S_BAD_TARGET);
      return;
    }
    task.tagLo = le32(h, ho + 8);
    task.tagHi = le32(h, ho + 12);
    task.taskAttr = h[ho + 16];
    let dataOutOffset = headerSize;
    let dataInOffset = VIRTIO_SCSI_RESP_SIZE;
    if (this.pi) {
      // Protection information is not supported: skip the PI bytes, pass the data on.
      dataOutOffset += le32(h, ho + 19);
      dataInOffset += le32(h, ho + 23);
    }
    const cdbOffset = ho + headerSize - VIRTIO_SCSI_CDB_SIZE;
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
    const inn = req.chain.in;
    let usedLen = 0;
    if (inn.length >= VIRTIO_SCSI_RESP_SIZE) {
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
      // Only sense_len bytes of sense are meaningful (the driver reads no more), so the rest of
      // the 96 is left as it is: zeroing it cost more than the rest of the response.
      const respLen = RESP_FIXED_SIZE + senseLen;
      let r = inn.bufs[0];
      let ro = inn.offsets[0];
      const inPlace = inn.lengths[0] >= respLen;
      if (!inPlace) {
        r = req.response;
        ro = 0;
      }
      putLe32(r, ro, senseLen);
      putLe32(r, ro + 4, residual);
      r[ro + 8] = 0;
      r[ro + 9] = 0;
      r[ro + 10] = status;
      r[ro + 11] = response;
      const sense = task.sense;
      for (let i = 0; i < senseLen; i++) r[ro + RESP_FIXED_SIZE + i] = sense[i];
      if (!inPlace) inn.copyIn(0, r, 0, respLen);
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
