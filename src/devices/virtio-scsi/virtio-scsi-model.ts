// The virtio-scsi device inside a reactor: queue 0 control, 1 event, 2.. requests, over a target set.
// A device spread over several reactors has an instance in each: the home one runs the control and
// event queues and posts events; every one holds all targets and runs TMFs on its own tasks.
import type { QueueProcessor, VirtioDeviceModel } from '../queue-processor.ts';
import type { DeviceControl, ScsiLunConfig, ScsiTmfCommand } from '../../reactor/mailbox-messages.ts';
import type { ScsiTmfWaiter } from '../../scsi/task-management.ts';
import { SCSI_TMF_FUNCTION_COMPLETE } from '../../scsi/scsi-constants.ts';
import { checkTmfFields, runTmf, type ScsiTmfRelay } from './tmf-dispatch.ts';
import { DeviceError } from '../device-error.ts';
import { ScsiTargetSet } from './target-set.ts';
import { ScsiControlQueue } from './control-queue.ts';
import { ScsiEventQueue } from './event-queue.ts';
import { ScsiRequestQueue } from './request-queue.ts';
import {
  VIRTIO_SCSI_CONTROLQ,
  VIRTIO_SCSI_EVENTQ,
  VIRTIO_SCSI_EVT_RESET_REMOVED,
  VIRTIO_SCSI_EVT_RESET_RESCAN,
  VIRTIO_SCSI_F_CHANGE,
  VIRTIO_SCSI_F_HOTPLUG,
  VIRTIO_SCSI_T_PARAM_CHANGE,
  VIRTIO_SCSI_F_T10_PI,
  VIRTIO_SCSI_T_TRANSPORT_RESET,
} from './virtio-scsi-constants.ts';

export class VirtioScsiModel implements VirtioDeviceModel {
  readonly kind = 'scsi';
  readonly targets: ScsiTargetSet;
  private readonly controlQueue: ScsiControlQueue;
  private readonly events: ScsiEventQueue;
  private readonly requests: ScsiRequestQueue[] = [];
  private readonly markDirty: (index: number) => void;
  private features = 0n;
  /** Runs the control and event queues and posts events (the guest must get each event once). */
  readonly home: boolean;

  /** `relay`: the home instance of a device spread over several reactors sends its TMFs there. */
  constructor(name: string, markDirty: (index: number) => void, home = true, relay: ScsiTmfRelay | null = null) {
    this.markDirty = markDirty;
    this.home = home;
    this.targets = new ScsiTargetSet(name);
    this.controlQueue = new ScsiControlQueue(VIRTIO_SCSI_CONTROLQ, this.targets, markDirty, relay);
    this.events = new ScsiEventQueue(VIRTIO_SCSI_EVENTQ, markDirty);
  }

  processorFor(index: number): QueueProcessor | null {
    if (index === VIRTIO_SCSI_CONTROLQ) return this.home ? this.controlQueue : null;
    if (index === VIRTIO_SCSI_EVENTQ) return this.home ? this.events : null;
    let q = this.requests[index];
    if (!q) {
      q = new ScsiRequestQueue(index, this.targets, this.markDirty);
      q.pi = (this.features & (1n << VIRTIO_SCSI_F_T10_PI)) !== 0n;
      this.requests[index] = q;
    }
    return q;
  }

  setFeatures(features: bigint): void {
    this.features = features;
    const pi = (features & (1n << VIRTIO_SCSI_F_T10_PI)) !== 0n;
    for (const q of this.requests) if (q) q.pi = pi;
  }

  /** Adds, replaces or (luns = null) removes a target; tells a hotplug-capable guest. */
  setTarget(target: number, luns: ScsiLunConfig[] | null): void {
    const existed = this.targets.has(target);
    this.targets.setTarget(target, luns);
    if (!this.home || (this.features & (1n << VIRTIO_SCSI_F_HOTPLUG)) === 0n) return;
    if (luns && !existed) this.events.post(VIRTIO_SCSI_T_TRANSPORT_RESET, target, 0, VIRTIO_SCSI_EVT_RESET_RESCAN);
    if (!luns && existed) this.events.post(VIRTIO_SCSI_T_TRANSPORT_RESET, target, 0, VIRTIO_SCSI_EVT_RESET_REMOVED);
  }

  control(cmd: DeviceControl): void {
    switch (cmd.op) {
      case 'scsi.target':
        return this.setTarget(cmd.target, cmd.luns);
      case 'scsi.resize': {
        if (!this.targets.resize(cmd.target, cmd.numBlocks)) return;
        // Capacity change: a PARAM_CHANGE event (ASC 2A/09) besides the LUN's unit attention.
        if (this.home && (this.features & (1n << VIRTIO_SCSI_F_CHANGE)) !== 0n) {
          this.events.post(VIRTIO_SCSI_T_PARAM_CHANGE, cmd.target, 0, 0x2a | (0x09 << 8));
        }
        return;
      }
      case 'scsi.tmfDone':
        if (!Number.isSafeInteger(cmd.token) || cmd.token < 1 || !Number.isInteger(cmd.response) || typeof cmd.failed !== 'boolean') {
          throw new DeviceError('BAD_TMF', 'scsi.tmfDone: token, response or failed malformed');
        }
        this.controlQueue.relayDone(cmd.token, cmd.response, cmd.failed);
        return;
      default:
        throw new DeviceError('WRONG_DEVICE_KIND', `a virtio-scsi device cannot handle '${cmd.op}'`);
    }
  }

  /** Queues an event (e.g. PARAM_CHANGE after a resize); only the home instance has an event queue. */
  postEvent(event: number, target: number, lun: number, reason: number): void {
    if (this.home) this.events.post(event, target, lun, reason);
  }

  /**
   * A relayed TMF on this instance's tasks: answers once they finished. A target this reactor
   * does not hold (added or removed meanwhile) has no task here: FUNCTION COMPLETE.
   */
  taskManagement(cmd: ScsiTmfCommand, waiter: ScsiTmfWaiter): void {
    checkTmfFields('scsi.tmf', cmd);
    const target = this.targets.get(cmd.target);
    if (target === null) return waiter.scsiTmfDone(SCSI_TMF_FUNCTION_COMPLETE);
    runTmf(target, cmd.subtype, cmd.lun, cmd.tagLo, cmd.tagHi, waiter);
  }

  pollBackends(): number {
    return this.targets.poll();
  }

  afterPoll(): void {
    this.targets.releaseRemoved();
  }

  setAsleep(asleep: boolean): void {
    this.targets.setAsleep(asleep);
  }

  reset(): void {
    this.features = 0n;
    this.controlQueue.dropRelayed();
    this.targets.reset();
  }

  close(): void {
    this.controlQueue.dropRelayed();
    this.targets.close();
  }
}
