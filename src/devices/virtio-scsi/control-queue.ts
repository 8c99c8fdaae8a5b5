// The virtio-scsi control queue: task management functions and asynchronous-notification queries.
// A TMF that must wait for in-flight commands (resets, aborts) answers once they completed. When
// the device's request queues run in several reactors, TMFs go through a relay to all of them.
import { DescriptorChain } from '../../virtio/descriptor-chain.ts';
import type { Virtqueue } from '../../virtio/virtqueue.ts';
import type { QueueProcessor } from '../queue-processor.ts';
import type { ScsiTargetSet } from './target-set.ts';
import { lunFieldLun, lunFieldTarget } from './lun-address.ts';
import type { ScsiTmfWaiter } from '../../scsi/task-management.ts';
import { SCSI_TMF_FUNCTION_COMPLETE, SCSI_TMF_FUNCTION_SUCCEEDED, SCSI_TMF_INCORRECT_LUN } from '../../scsi/scsi-constants.ts';
import { isTaskTmf, runTmf, type ScsiTmfRelay } from './tmf-dispatch.ts';
import {
  VIRTIO_SCSI_AN_REQ_SIZE,
  VIRTIO_SCSI_AN_RESP_SIZE,
  VIRTIO_SCSI_S_BAD_TARGET,
  VIRTIO_SCSI_S_FAILURE,
  VIRTIO_SCSI_S_OK,
  VIRTIO_SCSI_T_AN_QUERY,
  VIRTIO_SCSI_T_AN_SUBSCRIBE,
  VIRTIO_SCSI_T_TMF,
  VIRTIO_SCSI_TMF_REQ_SIZE,
  VIRTIO_SCSI_S_FUNCTION_COMPLETE,
  VIRTIO_SCSI_S_FUNCTION_REJECTED,
  VIRTIO_SCSI_S_FUNCTION_SUCCEEDED,
  VIRTIO_SCSI_S_INCORRECT_LUN,
} from './virtio-scsi-constants.ts';

const POOL = 64;

class ControlRequest implements ScsiTmfWaiter {
  readonly chain = new DescriptorChain(16);
  readonly buf = new Uint8Array(VIRTIO_SCSI_TMF_REQ_SIZE);
  readonly view = new DataView(this.buf.buffer);
  readonly reply = new Uint8Array(VIRTIO_SCSI_AN_RESP_SIZE);
  readonly queue: ScsiControlQueue;
  waiting = false;
  constructor(queue: ScsiControlQueue) {
    this.queue = queue;
  }
  scsiTmfDone(response: number): void {
    this.waiting = false;
    this.queue.tmfDone(this, response);
  }
}

/** SCSI layer TMF responses -> virtio-scsi response codes. */
function tmfResponse(scsi: number): number {
  switch (scsi) {
    case SCSI_TMF_FUNCTION_COMPLETE:
      return VIRTIO_SCSI_S_FUNCTION_COMPLETE;
    case SCSI_TMF_FUNCTION_SUCCEEDED:
      return VIRTIO_SCSI_S_FUNCTION_SUCCEEDED;
    case SCSI_TMF_INCORRECT_LUN:
      return VIRTIO_SCSI_S_INCORRECT_LUN;
    default:
      return VIRTIO_SCSI_S_FUNCTION_REJECTED;
  }
}

export class ScsiControlQueue implements QueueProcessor {
  readonly index: number;
  private readonly targets: ScsiTargetSet;
  private readonly markDirty: (index: number) => void;
  private vq: Virtqueue | null = null;
  private readonly free: ControlRequest[] = [];
  private waitingCount = 0;
  /** Null: every task of the device lives in this reactor, TMFs run here. */
  private readonly relay: ScsiTmfRelay | null;
  /** Relayed TMFs by token, until relayDone answers them. */
  private readonly relayed = new Map<number, ControlRequest>();
  private nextToken = 1;

  constructor(index: number, targets: ScsiTargetSet, markDirty: (index: number) => void, relay: ScsiTmfRelay | null = null) {
    this.index = index;
    this.targets = targets;
    this.markDirty = markDirty;
    this.relay = relay;
    for (let i = 0; i < POOL; i++) this.free.push(new ControlRequest(this));
  }

  attach(vq: Virtqueue): void {
    this.vq = vq;
  }

  detach(): void {
    this.vq = null;
  }

  wantsAvail(): boolean {
    return true;
  }

  inflight(): number {
    return this.waitingCount;
  }

  process(): number {
    const vq = this.vq;
    if (!vq) return 0;
    let n = 0;
    while (this.free.length > 0) {
      const req = this.free[this.free.length - 1];
      if (!vq.pop(req.chain)) break;
      this.free.pop();
      n++;
      this.handle(req);
    }
    return n;
  }

  private handle(req: ControlRequest): void {
    const out = req.chain.out;
    const b = req.buf;
    b.fill(0);
    out.copyOut(0, b, 0, Math.min(out.length, VIRTIO_SCSI_TMF_REQ_SIZE));
    const type = out.length >= 4 ? req.view.getUint32(0, true) : -1;
    if (type === VIRTIO_SCSI_T_TMF) {
      if (out.length < VIRTIO_SCSI_TMF_REQ_SIZE || req.chain.in.length < 1) return this.finish(req, VIRTIO_SCSI_S_FAILURE, 1);
      const subtype = req.view.getUint32(4, true);
      const targetNum = lunFieldTarget(b, 8);
      const lun = lunFieldLun(b, 8);
      const target = targetNum < 0 ? null : this.targets.get(targetNum);
      if (!target) return this.finish(req, VIRTIO_SCSI_S_BAD_TARGET, 1);
      const tagLo = req.view.getUint32(16, true);
      const tagHi = req.view.getUint32(20, true);
      req.waiting = true;
      this.waitingCount++;
      if (this.relay !== null && isTaskTmf(subtype)) {
        const token = this.nextToken++;
        this.relayed.set(token, req);
        return this.relay.relayTmf(token, subtype, targetNum, lun, tagLo, tagHi);
      }
      // Answers through req.scsiTmfDone, now or once the affected commands completed.
      return runTmf(target, subtype, lun, tagLo, tagHi, req);
    }
    if (type === VIRTIO_SCSI_T_AN_QUERY || type === VIRTIO_SCSI_T_AN_SUBSCRIBE) {
      if (out.length < VIRTIO_SCSI_AN_REQ_SIZE || req.chain.in.length < VIRTIO_SCSI_AN_RESP_SIZE) {
        return this.finish(req, VIRTIO_SCSI_S_FAILURE, Math.min(req.chain.in.length, 1));
      }
      const target = lunFieldTarget(b, 4);
      // No asynchronous events (media change, power management...) are supported: event_actual = 0.
      req.reply.fill(0);
      req.reply[4] = target < 0 || !this.targets.has(target) ? VIRTIO_SCSI_S_BAD_TARGET : VIRTIO_SCSI_S_OK;
      req.chain.in.copyIn(0, req.reply, 0, VIRTIO_SCSI_AN_RESP_SIZE);
      return this.push(req, VIRTIO_SCSI_AN_RESP_SIZE);
    }
    // Unknown request type: nothing sensible can be written back.
    this.push(req, 0);
  }

  tmfDone(req: ControlRequest, scsiResponse: number): void {
    this.waitingCount--;
    this.finish(req, tmfResponse(scsiResponse), 1);
  }

  /**
   * The combined answer of a relayed TMF (`failed`: a reactor could not run it). False when the
   * token is unknown: the request was dropped by a reset meanwhile.
   */
  relayDone(token: number, scsiResponse: number, failed: boolean): boolean {
    const req = this.relayed.get(token);
    if (req === undefined) return false;
    this.relayed.delete(token);
    req.waiting = false;
    this.waitingCount--;
    this.finish(req, failed ? VIRTIO_SCSI_S_FAILURE : tmfResponse(scsiResponse), 1);
    return true;
  }

  /**
   * Device reset or close: relayed TMFs are forgotten as the guest forgot them; their late answers
   * find no token. Nothing goes into the ring (it is stopped or being reinitialised).
   */
  dropRelayed(): void {
    for (const req of this.relayed.values()) {
      req.waiting = false;
      this.waitingCount--;
      req.chain.out.reset();
      req.chain.in.reset();
      this.free.push(req);
    }
    this.relayed.clear();
  }

  private finish(req: ControlRequest, response: number, len: number): void {
    if (len > 0) {
      req.reply[0] = response;
      req.chain.in.copyIn(0, req.reply, 0, 1);
    }
    this.push(req, len);
  }

  private push(req: ControlRequest, len: number): void {
    if (this.vq) {
      this.vq.pushUsed(req.chain, len);
      this.markDirty(this.index);
    }
    req.chain.out.reset();
    req.chain.in.reset();
    this.free.push(req);
  }
}
