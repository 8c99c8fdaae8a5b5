// What every vhost-user controller shares: the socket, the device in its reactors, and forwarding
// vhost-user lifecycle calls to them. A device may live in several reactors (one instance each);
// each of its queues runs in exactly one. Device kinds (scsi, blk) extend it.
import { VhostUserServer } from '../vhost-user/server.ts';
import type { InflightRegion, VhostUserDevice, VhostUserRegion, VringSetup } from '../vhost-user/device.ts';
import type { ReactorHandle } from '../reactor/reactor-handle.ts';
import type { ReactorCommand } from '../reactor/mailbox-messages.ts';
import { dupFd } from '../sys/fd.ts';
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
  /** Reactors holding an instance of the device; the first also runs queues that must stay together. */
  protected readonly reactors: ReactorHandle[];
  /** Queue index -> reactor, assigned at the queue's first start and kept. */
  private readonly placement = new Map<number, ReactorHandle>();
  protected readonly bdevs: BdevRegistry;
  protected readonly logger: Logger;
  protected readonly server: VhostUserServer;
  protected readonly runningRings = new Set<number>();
  private sessionConnected = false;
  private delayBaseUs = 0;
  private iopsThreshold = 60000;

  constructor(kind: 'scsi' | 'blk', name: string, socketPath: string, cpus: number[], reactors: ReactorHandle[], bdevs: BdevRegistry, logger: Logger) {
    this.kind = kind;
    this.name = name;
    this.socketPath = socketPath;
    this.cpus = cpus;
    this.reactors = reactors;
    this.bdevs = bdevs;
    this.logger = logger.child({ ctrlr: name });
    this.server = new VhostUserServer(socketPath, this, this.logger);
  }

  /** Creates the device in its reactor (after `prepare`) and starts listening. */
  async start(): Promise<void> {
    const shared = this.reactors.length > 1;
    await Promise.all(
      this.reactors.map((r, i) => r.request({ op: 'device.create', deviceId: this.deviceId, kind: this.kind, name: this.name, placement: { home: i === 0, shared } })),
    );
    try {
      await this.prepare();
      this.server.listen();
    } catch (e) {
      await this.broadcast({ op: 'device.destroy', deviceId: this.deviceId }).catch(() => {});
      await this.release();
      throw e;
    }
  }

  /**
   * The reactor that runs queue `index` (least loaded of the controller's at first use). Queues
   * kept on the home reactor carry no I/O (scsi control and event): they count for no load.
   */
  protected reactorFor(index: number): ReactorHandle {
    let r = this.placement.get(index);
    if (!r) {
      r = this.reactors[0];
      if (this.spreadQueue(index)) {
        for (const c of this.reactors) if (c.load < r.load) r = c;
        r.load++;
      }
      this.placement.set(index, r);
    }
    return r;
  }

  /** Whether queue `index` may run on another reactor than the first, the home (scsi: request queues only). */
  protected spreadQueue(_index: number): boolean {
    return true;
  }

  /** vhost_controller_set_coalescing (SPDK): applies to every queue of the controller. */
  async setCoalescing(delayBaseUs: number, iopsThreshold: number): Promise<void> {
    await this.broadcast({ op: 'device.coalescing', deviceId: this.deviceId, delayBaseUs, iopsThreshold });
    this.delayBaseUs = delayBaseUs;
    this.iopsThreshold = iopsThreshold;
  }

  /** The coalescing call for save_config, when it differs from the default. */
  protected coalescingCall(): ConfigCall[] {
    if (this.delayBaseUs === 0) return [];
    return [{ method: 'vhost_controller_set_coalescing', params: { ctrlr: this.name, delay_base_us: this.delayBaseUs, iops_threshold: this.iopsThreshold } }];
  }

  /** Sends a command to every reactor holding the device. */
  protected async broadcast(cmd: ReactorCommand): Promise<void> {
    await Promise.all(this.reactors.map((r) => r.request(cmd)));
  }

  /** CPUs of the reactors running this controller's queues. */
  queuePlacement(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const [q, r] of this.placement) out[q] = r.cpu;
    return out;
  }

  /** Kind-specific set-up once the device exists in the reactor (attach the bdev...). */
  protected async prepare(): Promise<void> {}

  /** Kind-specific tear-down after the device left the reactor (release claims...). */
  protected async release(): Promise<void> {}

  async destroy(): Promise<void> {
    await this.server.close();
    await this.detachAll();
    await this.broadcast({ op: 'device.destroy', deviceId: this.deviceId });
    await this.release();
    for (const [index, r] of this.placement) if (this.spreadQueue(index)) r.load--;
    this.placement.clear();
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
      delay_base_us: this.delayBaseUs,
      iops_threshold: this.iopsThreshold,
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
    await this.broadcast({ op: 'device.features', deviceId: this.deviceId, features });
  }

  async setInflight(region: InflightRegion): Promise<void> {
    // Each reactor maps the region itself and closes the fd it gets.
    const copies = this.reactors.map((_, i) => (i === 0 ? region : { ...region, fd: dupFd(region.fd) }));
    await Promise.all(this.reactors.map((r, i) => r.request({ op: 'device.inflight', deviceId: this.deviceId, region: copies[i] })));
  }

  async setMemory(regions: VhostUserRegion[]): Promise<void> {
    // Each reactor maps the regions itself and closes the fds it gets: give each its own copies.
    const copies = this.reactors.map((_, i) => (i === 0 ? regions : regions.map((r) => ({ ...r, fd: dupFd(r.fd) }))));
    await Promise.all(this.reactors.map((r, i) => r.request({ op: 'device.memory', deviceId: this.deviceId, regions: copies[i] })));
  }

  async startRing(setup: VringSetup): Promise<void> {
    await this.reactorFor(setup.index).request({ op: 'ring.start', deviceId: this.deviceId, setup });
    this.runningRings.add(setup.index);
  }

  async stopRing(index: number): Promise<number> {
    const last = await this.reactorFor(index).request({ op: 'ring.stop', deviceId: this.deviceId, index });
    this.runningRings.delete(index);
    return last;
  }

  async setRingCallFd(index: number, fd: number): Promise<void> {
    await this.reactorFor(index).request({ op: 'ring.call', deviceId: this.deviceId, index, fd });
  }

  async reset(): Promise<void> {
    await this.broadcast({ op: 'device.reset', deviceId: this.deviceId });
  }

  async disconnected(): Promise<void> {
    this.sessionConnected = false;
    this.runningRings.clear();
    await this.broadcast({ op: 'device.disconnect', deviceId: this.deviceId });
    this.logger.info('front-end disconnected');
  }
}
