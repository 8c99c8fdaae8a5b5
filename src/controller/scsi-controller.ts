// A vhost-user-scsi controller: one socket, one virtio-scsi device on a reactor, up to 256 targets.
import { VhostUserServer } from '../vhost-user/server.ts';
import type { VhostUserDevice, VhostUserRegion, VringSetup } from '../vhost-user/device.ts';
import type { ReactorHandle } from '../reactor/reactor-handle.ts';
import type { Bdev } from '../bdev/bdev.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import type { Logger } from '../log/logger.ts';
import type { ControllerInfo, ScsiTargetInfo } from '../rpc/vhost-api.ts';
import { scsiLunInfoFromBdev } from '../scsi/scsi-lun-info.ts';
import { ControllerError, EBUSY, EINVAL, ENODEV } from './controller-error.ts';
import { configSlice, scsiConfigSpace } from './scsi-config-space.ts';
import { MAX_QUEUES } from '../devices/virtio-device.ts';
import { VIRTIO_SCSI_MAX_TARGETS } from '../devices/virtio-scsi/virtio-scsi-constants.ts';
import { formatCpumask } from '../reactor/cpumask.ts';

const VIRTIO_F_VERSION_1 = 32n;
const VIRTIO_RING_F_INDIRECT_DESC = 28n;
const VIRTIO_RING_F_EVENT_IDX = 29n;
const VIRTIO_SCSI_F_HOTPLUG = 1n;
const VIRTIO_SCSI_F_CHANGE = 2n;

// Protocol features: MQ 0, REPLY_ACK 3, BACKEND_REQ 5, CONFIG 9, RESET_DEVICE 13, CONFIGURE_MEM_SLOTS 15, STATUS 16.
const PROTOCOL_FEATURES = (1n << 0n) | (1n << 3n) | (1n << 5n) | (1n << 9n) | (1n << 13n) | (1n << 15n) | (1n << 16n);

let nextDeviceId = 1;

interface TargetEntry {
  num: number;
  bdev: Bdev;
}

export class ScsiController implements VhostUserDevice {
  readonly name: string;
  readonly socketPath: string;
  readonly cpus: number[];
  readonly deviceId = nextDeviceId++;
  private readonly reactor: ReactorHandle;
  private readonly bdevs: BdevRegistry;
  private readonly logger: Logger;
  private readonly server: VhostUserServer;
  private readonly targets = new Map<number, TargetEntry>();
  private runningRings = new Set<number>();
  private sessionConnected = false;

  constructor(name: string, socketPath: string, cpus: number[], reactor: ReactorHandle, bdevs: BdevRegistry, logger: Logger) {
    this.name = name;
    this.socketPath = socketPath;
    this.cpus = cpus;
    this.reactor = reactor;
    this.bdevs = bdevs;
    this.logger = logger.child({ ctrlr: name });
    this.server = new VhostUserServer(socketPath, this, this.logger);
  }

  async start(): Promise<void> {
    await this.reactor.request({ op: 'device.create', deviceId: this.deviceId, kind: 'scsi', name: this.name });
    try {
      this.server.listen();
    } catch (e) {
      await this.reactor.request({ op: 'device.destroy', deviceId: this.deviceId });
      throw e;
    }
    this.reactor.load++;
  }

  // --- targets (control plane) ---

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
      await this.reactor.request({
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
    await this.reactor.request({ op: 'scsi.target', deviceId: this.deviceId, target: num, luns: null });
    this.targets.delete(num);
    this.bdevs.release(t.bdev.name);
    this.logger.info({ target: num, bdev: t.bdev.name }, 'target removed');
  }

  hasTargets(): boolean {
    return this.targets.size > 0;
  }

  targetInfo(): ScsiTargetInfo[] {
    return [...this.targets.values()]
      .sort((a, b) => a.num - b.num)
      .map((t) => ({
        scsi_dev_num: t.num,
        id: t.num,
        target_name: `Target ${t.num}`,
        luns: [{ id: 0, bdev_name: t.bdev.name }],
      }));
  }

  info(): ControllerInfo {
    return {
      ctrlr: this.name,
      cpumask: formatCpumask(this.cpus),
      delay_base_us: 0,
      iops_threshold: 60000,
      socket: this.socketPath,
      sessions: this.sessionConnected ? [{ vid: this.deviceId, id: 0, name: `${this.name}s0`, started: this.runningRings.size > 0 }] : [],
      backend_specific: { scsi: this.targetInfo() },
    };
  }

  configCalls(): { method: string; params: Record<string, unknown> }[] {
    const calls: { method: string; params: Record<string, unknown> }[] = [
      { method: 'vhost_create_scsi_controller', params: { ctrlr: this.name, cpumask: formatCpumask(this.cpus) } },
    ];
    for (const t of [...this.targets.values()].sort((a, b) => a.num - b.num)) {
      calls.push({ method: 'vhost_scsi_controller_add_target', params: { ctrlr: this.name, scsi_target_num: t.num, bdev_name: t.bdev.name } });
    }
    return calls;
  }

  async destroy(): Promise<void> {
    await this.server.close();
    for (const num of [...this.targets.keys()]) await this.removeTarget(num);
    await this.reactor.request({ op: 'device.destroy', deviceId: this.deviceId });
    this.reactor.load--;
  }

  // --- VhostUserDevice ---

  deviceFeatures(): bigint {
    return (
      (1n << VIRTIO_F_VERSION_1) |
      (1n << VIRTIO_RING_F_INDIRECT_DESC) |
      (1n << VIRTIO_RING_F_EVENT_IDX) |
      (1n << VIRTIO_SCSI_F_HOTPLUG) |
      (1n << VIRTIO_SCSI_F_CHANGE)
    );
  }

  protocolFeatures(): bigint {
    return PROTOCOL_FEATURES;
  }

  maxQueues(): number {
    return MAX_QUEUES;
  }

  getConfig(offset: number, size: number): Uint8Array | null {
    return configSlice(scsiConfigSpace(MAX_QUEUES - 2), offset, size);
  }

  setConfig(): boolean {
    return false;
  }

  connected(): void {
    this.sessionConnected = true;
    this.logger.info('front-end connected');
  }

  async setFeatures(features: bigint): Promise<void> {
    await this.reactor.request({ op: 'device.features', deviceId: this.deviceId, features });
  }

  async setMemory(regions: VhostUserRegion[]): Promise<void> {
    await this.reactor.request({ op: 'device.memory', deviceId: this.deviceId, regions });
  }

  async startRing(setup: VringSetup): Promise<void> {
    await this.reactor.request({ op: 'ring.start', deviceId: this.deviceId, setup });
    this.runningRings.add(setup.index);
  }

  async stopRing(index: number): Promise<number> {
    const last = await this.reactor.request({ op: 'ring.stop', deviceId: this.deviceId, index });
    this.runningRings.delete(index);
    return last;
  }

  async setRingCallFd(index: number, fd: number): Promise<void> {
    await this.reactor.request({ op: 'ring.call', deviceId: this.deviceId, index, fd });
  }

  async reset(): Promise<void> {
    await this.reactor.request({ op: 'device.reset', deviceId: this.deviceId });
  }

  async disconnected(): Promise<void> {
    this.sessionConnected = false;
    this.runningRings.clear();
    await this.reactor.request({ op: 'device.disconnect', deviceId: this.deviceId });
    this.logger.info('front-end disconnected');
  }
}
