// What every vhost-user controller shares: the socket, the device in a reactor, and forwarding
// vhost-user lifecycle calls to that reactor. Device kinds (scsi, blk) extend it.
import { VhostUserServer } from '../vhost-user/server.ts';
import type { VhostUserDevice, VhostUserRegion, VringSetup } from '../vhost-user/device.ts';
import type { ReactorHandle } from '../reactor/reactor-handle.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import type { Bdev } from '../bdev/bdev.ts';
import type { Logger } from '../log/logger.ts';
import type { ControllerInfo } from '../rpc/vhost-api.ts';
import { formatCpumask } from '../reactor/cpumask.ts';

let nextDeviceId = 1;

export type ConfigCall = { method: string; params: Record<string, unknown> };

export class VhostController implements VhostUserDevice {
  readonly name: string;
  readonly kind: 'scsi' | 'blk';
  readonly socketPath: string;
  readonly cpus: number[];
  readonly deviceId = nextDeviceId++;
  protected readonly reactor: ReactorHandle;
  protected readonly bdevs: BdevRegistry;
  protected readonly logger: Logger;
  protected readonly server: VhostUserServer;
  protected readonly runningRings = new Set<number>();
  private sessionConnected = false;

  constructor(kind: 'scsi' | 'blk', name: string, socketPath: string, cpus: number[], reactor: ReactorHandle, bdevs: BdevRegistry, logger: Logger) {
    this.kind = kind;
    this.name = name;
    this.socketPath = socketPath;
    this.cpus = cpus;
    this.reactor = reactor;
    this.bdevs = bdevs;
    this.logger = logger.child({ ctrlr: name });
    this.server = new VhostUserServer(socketPath, this, this.logger);
  }

  /** Creates the device in its reactor (after `prepare`) and starts listening. */
  async start(): Promise<void> {
    await this.reactor.request({ op: 'device.create', deviceId: this.deviceId, kind: this.kind, name: this.name });
    try {
      await this.prepare();
      this.server.listen();
    } catch (e) {
      await this.reactor.request({ op: 'device.destroy', deviceId: this.deviceId }).catch(() => {});
      await this.release();
      throw e;
    }
    this.reactor.load++;
  }

  /** Kind-specific set-up once the device exists in the reactor (attach the bdev...). */
  protected async prepare(): Promise<void> {}

  /** Kind-specific tear-down after the device left the reactor (release claims...). */
  protected async release(): Promise<void> {}

  async destroy(): Promise<void> {
    await this.server.close();
    await this.detachAll();
    await this.reactor.request({ op: 'device.destroy', deviceId: this.deviceId });
    await this.release();
    this.reactor.load--;
  }

  /** Detaches bdevs while the device still exists (scsi: remove targets). */
  protected async detachAll(): Promise<void> {}

  backendSpecific(): Record<string, unknown> {
    return {};
  }

  info(): ControllerInfo {
    return {
      ctrlr: this.name,
      cpumask: formatCpumask(this.cpus),
      delay_base_us: 0,
      iops_threshold: 60000,
      socket: this.socketPath,
      sessions: this.sessionConnected
        ? [{ vid: this.deviceId, id: 0, name: `${this.name}s0`, started: this.runningRings.size > 0 }]
        : [],
      backend_specific: this.backendSpecific(),
    };
  }

  configCalls(): ConfigCall[] {
    return [];
  }

  /** A bdev changed size; controllers using it pass the news on to their device and guest. */
  async bdevResized(_bdev: Bdev): Promise<void> {}

  /** Whether vhost_delete_controller must refuse (scsi: targets left). */
  inUse(): string | null {
    return null;
  }

  /** Sends a back-end request (e.g. CONFIG_CHANGE_MSG) if a front-end with a back-end channel is attached. */
  protected sendBackendRequest(request: number, payload: Uint8Array): boolean {
    return this.server.connection?.sendBackendRequest(request, payload) ?? false;
  }

  // --- VhostUserDevice: device kinds override the feature/config parts ---

  deviceFeatures(): bigint {
    return 0n;
  }

  protocolFeatures(): bigint {
    return 0n;
  }

  maxQueues(): number {
    return 1;
  }

  getConfig(_offset: number, _size: number): Uint8Array | null {
    return null;
  }

  setConfig(_offset: number, _data: Uint8Array, _flags: number): boolean {
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
