// A vhost-user-scsi controller: up to 256 targets, one LUN (0) each, on a virtio-scsi device.
import type { ReactorHandle } from '../reactor/reactor-handle.ts';
import type { Bdev } from '../bdev/bdev.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import type { Logger } from '../log/logger.ts';
import type { ScsiTargetInfo } from '../rpc/vhost-api.ts';
import { scsiLunInfoFromBdev } from '../scsi/scsi-lun-info.ts';
import { ControllerError, EBUSY, EINVAL, ENODEV } from './controller-error.ts';
import { scsiConfigSpace } from './scsi-config-space.ts';
import { configSlice } from './config-slice.ts';
import { MAX_QUEUES } from '../devices/virtio-device.ts';
import { VIRTIO_SCSI_MAX_TARGETS } from '../devices/virtio-scsi/virtio-scsi-constants.ts';
import { formatCpumask } from '../reactor/cpumask.ts';
import { VhostController, type ConfigCall } from './vhost-controller.ts';
import { RING_FEATURES, STORAGE_PROTOCOL_FEATURES, VIRTIO_F_RING_PACKED_BIT } from './feature-sets.ts';

const VIRTIO_SCSI_F_HOTPLUG = 1n;
const VIRTIO_SCSI_F_CHANGE = 2n;

interface TargetEntry {
  num: number;
  bdev: Bdev;
}

export class ScsiController extends VhostController {
  private readonly targets = new Map<number, TargetEntry>();

  constructor(name: string, socketPath: string, cpus: number[], reactor: ReactorHandle, bdevs: BdevRegistry, logger: Logger) {
    super('scsi', name, socketPath, cpus, [reactor], bdevs, logger);
  }

  async addTarget(num: number, bdevName: string): Promise<number> {
    if (num === -1) {
      num = 0;
      while (this.targets.has(num)) num++;
    }
    if (!Number.isInteger(num) || num < 0 || num >= VIRTIO_SCSI_MAX_TARGETS) {
      throw new ControllerError('BAD_TARGET_NUM', EINVAL, `scsi_target_num ${num} out of range (0..${VIRTIO_SCSI_MAX_TARGETS - 1}, or -1 for the first free one)`);
    }
    if (this.targets.has(num)) throw new ControllerError('TARGET_EXISTS', EBUSY, `controller ${this.name} already has target ${num}`);
    const bdev = this.bdevs.get(bdevName);
    if (!bdev) throw new ControllerError('BDEV_NOT_FOUND', ENODEV, `bdev '${bdevName}' does not exist`);
    this.bdevs.claim(bdev.name, `vhost-scsi ${this.name}`);
    try {
      await this.reactors[0].request({
        op: 'scsi.target',
        deviceId: this.deviceId,
        target: num,
        luns: [{ lunId: 0, info: scsiLunInfoFromBdev(bdev), bdev: bdev.channelSpec() }],
      });
    } catch (e) {
      this.bdevs.release(bdev.name);
      throw e;
    }
    this.targets.set(num, { num, bdev });
    this.logger.info({ target: num, bdev: bdev.name }, 'target added');
    return num;
  }

  async removeTarget(num: number): Promise<void> {
    const t = this.targets.get(num);
    if (!t) throw new ControllerError('TARGET_NOT_FOUND', ENODEV, `controller ${this.name} has no target ${num}`);
    await this.reactors[0].request({ op: 'scsi.target', deviceId: this.deviceId, target: num, luns: null });
    this.targets.delete(num);
    this.bdevs.release(t.bdev.name);
    this.logger.info({ target: num, bdev: t.bdev.name }, 'target removed');
  }

  /** Targets on a resized bdev: the LUN reports CAPACITY DATA HAS CHANGED and a PARAM_CHANGE event goes out. */
  override async bdevResized(bdev: Bdev): Promise<void> {
    for (const t of this.targets.values()) {
      if (t.bdev !== bdev) continue;
      await this.reactors[0].request({ op: 'scsi.resize', deviceId: this.deviceId, target: t.num, numBlocks: bdev.numBlocks });
      this.logger.info({ target: t.num, numBlocks: bdev.numBlocks }, 'capacity changed');
    }
  }

  /**
   * All queues of a SCSI controller share one reactor: task management (ABORT TASK, LUN RESET) must
   * see and wait for every in-flight command of the LUN, which lives in that reactor's LUN state.
   */
  protected override spreadQueue(): boolean {
    return false;
  }

  protected override async detachAll(): Promise<void> {
    for (const num of [...this.targets.keys()]) await this.removeTarget(num);
  }

  override inUse(): string | null {
    return this.targets.size > 0 ? `controller '${this.name}' still has targets: remove them first` : null;
  }

  targetInfo(): ScsiTargetInfo[] {
    return [...this.targets.values()]
      .sort((a, b) => a.num - b.num)
      .map((t) => ({ scsi_dev_num: t.num, id: t.num, target_name: `Target ${t.num}`, luns: [{ id: 0, bdev_name: t.bdev.name }] }));
  }

  override backendSpecific(): Record<string, unknown> {
    return { scsi: this.targetInfo() };
  }

  override configCalls(): ConfigCall[] {
    const calls: ConfigCall[] = [{ method: 'vhost_create_scsi_controller', params: { ctrlr: this.name, cpumask: formatCpumask(this.cpus) } }];
    for (const t of [...this.targets.values()].sort((a, b) => a.num - b.num)) {
      calls.push({ method: 'vhost_scsi_controller_add_target', params: { ctrlr: this.name, scsi_target_num: t.num, bdev_name: t.bdev.name } });
    }
    return [...calls, ...this.coalescingCall()];
  }

  override deviceFeatures(): bigint {
    // QEMU does not ask the back-end about packed rings for vhost-user-scsi (packed=on goes to the
    // guest regardless), so the bit is always offered: SET_FEATURES may carry it.
    return RING_FEATURES | VIRTIO_F_RING_PACKED_BIT | (1n << VIRTIO_SCSI_F_HOTPLUG) | (1n << VIRTIO_SCSI_F_CHANGE);
  }

  override protocolFeatures(): bigint {
    return STORAGE_PROTOCOL_FEATURES;
  }

  override maxQueues(): number {
    return MAX_QUEUES;
  }

  override getConfig(offset: number, size: number): Uint8Array | null {
    return configSlice(scsiConfigSpace(MAX_QUEUES - 2), offset, size);
  }
}
