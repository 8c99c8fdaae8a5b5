// Creates the per-kind model of a device inside a reactor.
import type { VirtioDeviceModel } from './queue-processor.ts';
import { VirtioScsiModel } from './virtio-scsi/virtio-scsi-model.ts';
import { VirtioBlkModel } from './virtio-blk/virtio-blk-model.ts';
import { DeviceError } from './device-error.ts';

export function createDeviceModel(kind: string, deviceId: number, markDirty: (index: number) => void): VirtioDeviceModel {
  switch (kind) {
    case 'scsi':
      return new VirtioScsiModel(`scsi-${deviceId}`, markDirty);
    case 'blk':
      return new VirtioBlkModel(markDirty);
    default:
      throw new DeviceError('UNKNOWN_DEVICE_KIND', `unknown device kind '${kind}'`);
  }
}
