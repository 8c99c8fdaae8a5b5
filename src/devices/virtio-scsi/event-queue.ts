// The virtio-scsi event queue. Buffers stay in the avail ring until an event needs one, so the
// guest keeps them for later events; events that find no buffer set EVENTS_MISSED on the next.
import { DescriptorChain } from '../../virtio/descriptor-chain.ts';
import type { Virtqueue } from '../../virtio/virtqueue.ts';
import type { QueueProcessor } from '../queue-processor.ts';
import { writeLunField } from './lun-address.ts';
import { VIRTIO_SCSI_EVENT_SIZE, VIRTIO_SCSI_T_EVENTS_MISSED } from './virtio-scsi-constants.ts';

const MAX_PENDING = 64;

export class ScsiEventQueue implements QueueProcessor {
  readonly index: number;
  private readonly markDirty: (index: number) => void;
  private vq: Virtqueue | null = null;
  private readonly chain = new DescriptorChain(8);
  private readonly entry = new Uint8Array(VIRTIO_SCSI_EVENT_SIZE);
  private readonly view = new DataView(this.entry.buffer);
  private readonly events = new Uint32Array(MAX_PENDING * 4);
  private head = 0;
  private count = 0;
  private missed = false;

  constructor(index: number, markDirty: (index: number) => void) {
    this.index = index;
    this.markDirty = markDirty;
  }

  attach(vq: Virtqueue): void {
    this.vq = vq;
  }

  detach(): void {
    this.vq = null;
  }

  wantsAvail(): boolean {
    return this.count > 0;
  }

  inflight(): number {
    return 0;
  }

  /** Queues an event for delivery (control plane changes: hotplug, capacity change). */
  post(event: number, target: number, lun: number, reason: number): void {
    if (this.count === MAX_PENDING) {
      this.head = (this.head + 1) % MAX_PENDING;
      this.count--;
      this.missed = true;
    }
    const i = ((this.head + this.count) % MAX_PENDING) * 4;
    this.events[i] = event;
    this.events[i + 1] = target;
    this.events[i + 2] = lun;
    this.events[i + 3] = reason;
    this.count++;
  }

  /** Pending events and whether the guest missed any. */
  pendingCount(): number {
    return this.count;
  }

  process(): number {
    const vq = this.vq;
    if (!vq || this.count === 0) return 0;
    let n = 0;
    while (this.count > 0 && vq.pop(this.chain)) {
      const i = this.head * 4;
      let event = this.events[i];
      if (this.missed) {
        event = (event | VIRTIO_SCSI_T_EVENTS_MISSED) >>> 0;
        this.missed = false;
      }
      this.view.setUint32(0, event, true);
      writeLunField(this.entry, 4, this.events[i + 1], this.events[i + 2]);
      this.view.setUint32(12, this.events[i + 3], true);
      const written = this.chain.in.copyIn(0, this.entry, 0, VIRTIO_SCSI_EVENT_SIZE);
      vq.pushUsed(this.chain, written);
      this.head = (this.head + 1) % MAX_PENDING;
      this.count--;
      n++;
    }
    if (n > 0) this.markDirty(this.index);
    if (this.count > 0 && n === 0) this.missed = true;
    return n;
  }
}
