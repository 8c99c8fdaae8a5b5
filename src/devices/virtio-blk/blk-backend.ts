// The bdev behind a virtio-blk device inside a reactor, shared by its request queues.
import type { BdevChannel } from '../../bdev/bdev.ts';
import { VIRTIO_BLK_ID_BYTES } from './virtio-blk-constants.ts';

export class BlkBackend {
  channel: BdevChannel | null = null;
  readOnly = false;
  discard = false;
  unmapReadsZero = false;
  writeback = false;
  readonly serial = new Uint8Array(VIRTIO_BLK_ID_BYTES);

  setSerial(s: string): void {
    this.serial.fill(0);
    const b = new TextEncoder().encode(s).subarray(0, VIRTIO_BLK_ID_BYTES);
    this.serial.set(b);
  }
}
