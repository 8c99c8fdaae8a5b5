// The virtio-scsi device inside a reactor: queue 0 control, 1 event, 2.. requests, over a target set.
import type { QueueProcessor, VirtioDeviceModel } from '../queue-processor.ts';
import type { DeviceControl, ScsiLunConfig } from '../../reactor/mailbox-messages.ts';
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

  constructor(name: string, markDirty: (index: number) => void) {
    this.markDirty = markDirty;
    this.targets = new ScsiTargetSet(name);
    this.controlQueue = new ScsiControlQueue(VIRTIO_SCSI_CONTROLQ, this.targets, markDirty);
    this.events = new ScsiEventQueue(VIRTIO_SCSI_EVENTQ, markDirty);
  }

  processorFor(index: number): QueueProcessor | null {
    if (index === VIRTIO_SCSI_CONTROLQ) return this.controlQueue;
    if (index === VIRTIO_SCSI_EVENTQ) return this.events;
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
    if ((this.features & (1n << VIRTIO_SCSI_F_HOTPLUG)) === 0n) return;
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
        if ((this.features & (1n << VIRTIO_SCSI_F_CHANGE)) !== 0n) {
          this.events.post(VIRTIO_SCSI_T_PARAM_CHANGE, cmd.target, 0, 0x2a | (0x09 << 8));
        }
        return;
      }
      default:
        throw new DeviceError('WRONG_DEVICE_KIND', `a virtio-scsi device cannot handle '${cmd.op}'`);
    }
  }

  /** Queues an event (e.g. PARAM_CHANGE after a resize). */
  postEvent(event: number, target: number, lun: number, reason: number): void {
    this.events.post(event, target, lun, reason);
  }

  pollBackends(): number {
    return this.targets.poll();
  }

  afterPoll(): void {
    this.targets.releaseRemoved();
  }

  reset(): void {
    this.features = 0n;
    this.targets.reset();
  }

  close(): void {
    this.targets.close();
  }
}
