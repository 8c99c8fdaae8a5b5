// Creates the per-kind model of a device inside a reactor.
import type { VirtioDeviceModel } from './queue-processor.ts';
import { VirtioScsiModel } from './virtio-scsi/virtio-scsi-model.ts';
import { VirtioBlkModel } from './virtio-blk/virtio-blk-model.ts';
import { DeviceError } from './device-error.ts';
import type { ScsiTmfRelay } from './virtio-scsi/tmf-dispatch.ts';

/** `home`: see DevicePlacement; `relay`: where a spread scsi device's home sends its TMFs (null: run them locally). */
export function createDeviceModel(kind: string, deviceId: number, markDirty: (index: number) => void, home = true, relay: ScsiTmfRelay | null = null): VirtioDeviceModel {
  switch (kind) {
    case 'scsi':
      return new VirtioScsiModel(`scsi-${deviceId}`, markDirty, home, relay);
    case 'blk':
      return new VirtioBlkModel(markDirty);
    default:
      throw new DeviceError('UNKNOWN_DEVICE_KIND', `unknown device kind '${kind}'`);
  }
}
