// The virtio-blk device inside a reactor: every queue is a request queue over one bdev channel.
import type { QueueProcessor, VirtioDeviceModel } from '../queue-processor.ts';
import type { DeviceControl } from '../../reactor/mailbox-messages.ts';
import { openBdevChannel } from '../../bdev/channel-open.ts';
import { DeviceError } from '../device-error.ts';
import { BlkBackend } from './blk-backend.ts';
import { BlkRequestQueue } from './blk-request-queue.ts';

export class VirtioBlkModel implements VirtioDeviceModel {
  readonly kind = 'blk';
  private readonly backend = new BlkBackend();
  private readonly queues: BlkRequestQueue[] = [];
  private readonly markDirty: (index: number) => void;

  constructor(markDirty: (index: number) => void) {
    this.markDirty = markDirty;
  }

  processorFor(index: number): QueueProcessor | null {
    let q = this.queues[index];
    if (!q) {
      q = new BlkRequestQueue(index, this.backend, this.markDirty);
      this.queues[index] = q;
    }
    return q;
  }

  setFeatures(): void {}

  control(cmd: DeviceControl): void {
    const b = this.backend;
    switch (cmd.op) {
      case 'blk.bdev': {
        if (b.channel && this.inflight() > 0) throw new DeviceError('DEVICE_BUSY', 'cannot change the bdev with requests in flight');
        b.channel?.close();
        b.channel = null;
        const c = cmd.config;
        if (!c) return;
        b.channel = openBdevChannel(c.bdev);
        b.readOnly = c.readOnly;
        b.discard = c.unmap;
        b.unmapReadsZero = c.unmapReadsZero;
        b.writeback = c.writeback;
        b.setSerial(c.serial);
        return;
      }
      case 'blk.resize':
        b.channel?.resize(cmd.numBlocks);
        return;
      case 'blk.writeback':
        b.writeback = cmd.writeback;
        return;
      default:
        throw new DeviceError('WRONG_DEVICE_KIND', `a virtio-blk device cannot handle '${cmd.op}'`);
    }
  }

  private inflight(): number {
    let n = 0;
    for (const q of this.queues) if (q) n += q.inflight();
    return n;
  }

  pollBackends(): number {
    return this.backend.channel ? this.backend.channel.poll() : 0;
  }

  afterPoll(): void {}

  setAsleep(): void {}

  reset(): void {}

  close(): void {
    this.backend.channel?.close();
    this.backend.channel = null;
  }
}
