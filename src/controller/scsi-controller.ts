// A vhost-user-scsi controller: up to 256 targets, one LUN (0) each, on a virtio-scsi device.
// Its request queues spread over the reactors of its cpumask like blk's; the control and event
// queues stay on the home reactor, and TMFs reach every reactor through ScsiTmfRelay.
import type { ReactorHandle } from '../reactor/reactor-handle.ts';
import type { Bdev } from '../bdev/bdev.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import type { Logger } from '../log/logger.ts';
import type { ScsiTargetInfo } from '../rpc/vhost-api.ts';
import { scsiLunInfoFromBdev } from '../scsi/scsi-lun-info.ts';
import { createLunSharedState } from '../scsi/lun-shared-state.ts';
import { ControllerError, EBUSY, EINVAL, ENODEV } from './controller-error.ts';
import { scsiConfigSpace } from './scsi-config-space.ts';
import { configSlice } from './config-slice.ts';
import { MAX_QUEUES } from '../devices/virtio-device.ts';
import { VIRTIO_SCSI_MAX_TARGETS, VIRTIO_SCSI_REQUESTQ_BASE } from '../devices/virtio-scsi/virtio-scsi-constants.ts';
import type { DeviceControl } from '../reactor/mailbox-messages.ts';
import { ScsiTmfRelay } from './scsi-tmf-relay.ts';
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
  /** Only when the controller has several reactors: one reactor runs its TMFs locally. */
  private readonly tmfRelay: ScsiTmfRelay | null;

  /** `reactors`: every reactor of the cpumask, the home (least loaded) first. */
  constructor(name: string, socketPath: string, cpus: number[], reactors: ReactorHandle[], bdevs: BdevRegistry, logger: Logger) {
    super('scsi', name, socketPath, cpus, reactors, bdevs, logger);
    this.tmfRelay = reactors.length > 1 ? new ScsiTmfRelay(this.deviceId, reactors, this.logger) : null;
  }

  protected override async prepare(): Promise<void> {
    this.tmfRelay?.listen();
  }

  protected override async release(): Promise<void> {
    this.tmfRelay?.close();
  }

  /**
   * Sends a target change to every reactor; when some refuse, the ones that took it drop it again,
   * so all reactors keep the same targets.
   */
  private async broadcastTarget(cmd: DeviceControl & { op: 'scsi.target' }): Promise<void> {
    const results = await Promise.allSettled(this.reactors.map((r) => r.request(cmd)));
    const failed = results.find((r) => r.status === 'rejected');
    if (!failed) return;
    if (cmd.luns !== null) {
      await Promise.all(
        this.reactors.map((r, i) => (results[i].status === 'fulfilled' ? r.request({ ...cmd, luns: null }).catch(() => {}) : undefined)),
      );
    }
    throw failed.reason;
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
      await this.broadcastTarget({
        op: 'scsi.target',
        deviceId: this.deviceId,
        target: num,
        luns: [{ lunId: 0, info: scsiLunInfoFromBdev(bdev), bdev: bdev.channelSpec(), shared: createLunSharedState(this.reactors.length) }],
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
    await this.broadcastTarget({ op: 'scsi.target', deviceId: this.deviceId, target: num, luns: null });
    this.targets.delete(num);
    this.bdevs.release(t.bdev.name);
    this.logger.info({ target: num, bdev: t.bdev.name }, 'target removed');
  }

  /** Targets on a resized bdev: the LUN reports CAPACITY DATA HAS CHANGED and a PARAM_CHANGE event goes out. */
  override async bdevResized(bdev: Bdev): Promise<void> {
    for (const t of this.targets.values()) {
      if (t.bdev !== bdev) continue;
      await this.broadcast({ op: 'scsi.resize', deviceId: this.deviceId, target: t.num, numBlocks: bdev.numBlocks });
      this.logger.info({ target: t.num, numBlocks: bdev.numBlocks }, 'capacity changed');
    }
  }

  /** Request queues spread; control and event queues stay on the home reactor (its instance posts the events). */
  protected override spreadQueue(index: number): boolean {
    return index >= VIRTIO_SCSI_REQUESTQ_BASE;
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
    return { scsi: this.targetInfo(), queue_cpus: this.queuePlacement() };
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
