// Creates the per-kind model of a device inside a reactor.
import type { VirtioDeviceModel } from './queue-processor.ts';
import { VirtioScsiModel } from './virtio-scsi/virtio-scsi-model.ts';
import { DeviceError } from './virtio-device.ts';

export function createDeviceModel(kind: string, deviceId: number, markDirty: (index: number) => void): VirtioDeviceModel {
  switch (kind) {
    case 'scsi':
      return new VirtioScsiModel(`scsi-${deviceId}`, markDirty);
    default:
      throw new DeviceError('UNKNOWN_DEVICE_KIND', `unknown device kind '${kind}'`);
  }
}
