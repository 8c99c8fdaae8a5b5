// All vhost controllers of the daemon; the implementation of the vhost_* RPC methods.
import { join } from 'node:path';
import type { VhostApi, ControllerInfo } from '../rpc/vhost-api.ts';
import type { ReactorPool } from '../reactor/reactor-pool.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import type { Logger } from '../log/logger.ts';
import { parseCpumask } from '../reactor/cpumask.ts';
import { ScsiController } from './scsi-controller.ts';
import { ControllerError, EBUSY, EEXIST, EINVAL, ENODEV } from './controller-error.ts';

const NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

export class ControllerRegistry implements VhostApi {
  readonly socketDir: string;
  private readonly reactors: ReactorPool;
  private readonly bdevs: BdevRegistry;
  private readonly logger: Logger;
  private readonly controllers = new Map<string, ScsiController>();

  constructor(socketDir: string, reactors: ReactorPool, bdevs: BdevRegistry, logger: Logger) {
    this.socketDir = socketDir;
    this.reactors = reactors;
    this.bdevs = bdevs;
    this.logger = logger;
  }

  private get(ctrlr: string): ScsiController {
    const c = this.controllers.get(ctrlr);
    if (!c) throw new ControllerError('CONTROLLER_NOT_FOUND', ENODEV, `controller '${ctrlr}' does not exist`);
    return c;
  }

  async createScsiController(ctrlr: string, cpumask: string | undefined): Promise<void> {
    if (!NAME_RE.test(ctrlr)) {
      throw new ControllerError('BAD_NAME', EINVAL, `invalid controller name '${ctrlr}': 1-64 characters of A-Z a-z 0-9 _ . : -`);
    }
    if (this.controllers.has(ctrlr)) throw new ControllerError('CONTROLLER_EXISTS', EEXIST, `controller '${ctrlr}' already exists`);
    let cpus: number[];
    try {
      cpus = cpumask === undefined ? this.reactors.cpus() : parseCpumask(cpumask);
    } catch (e) {
      throw new ControllerError('BAD_CPUMASK', EINVAL, (e as Error).message);
    }
    let reactor;
    try {
      reactor = this.reactors.pick(cpus);
    } catch (e) {
      throw new ControllerError('BAD_CPUMASK', EINVAL, (e as Error).message);
    }
    const c = new ScsiController(ctrlr, join(this.socketDir, ctrlr), cpus.filter((x) => this.reactors.cpus().includes(x)), reactor, this.bdevs, this.logger);
    this.controllers.set(ctrlr, c);
    try {
      await c.start();
    } catch (e) {
      this.controllers.delete(ctrlr);
      const err = e as { code?: string; message?: string };
      if (err.code === 'EADDRINUSE' || err.code === 'SOCKET_IN_USE') {
        throw new ControllerError('SOCKET_IN_USE', EEXIST, `socket ${c.socketPath} is in use: ${err.message}`);
      }
      throw e;
    }
    this.logger.info({ ctrlr, socket: c.socketPath, reactor: reactor.index }, 'vhost-scsi controller created');
  }

  async addScsiTarget(ctrlr: string, scsiTargetNum: number, bdevName: string): Promise<number> {
    return this.get(ctrlr).addTarget(scsiTargetNum, bdevName);
  }

  async removeScsiTarget(ctrlr: string, scsiTargetNum: number): Promise<void> {
    await this.get(ctrlr).removeTarget(scsiTargetNum);
  }

  getControllers(name?: string): ControllerInfo[] {
    if (name !== undefined) return [this.get(name).info()];
    return [...this.controllers.values()].map((c) => c.info());
  }

  async deleteController(ctrlr: string): Promise<void> {
    const c = this.get(ctrlr);
    if (c.hasTargets()) {
      throw new ControllerError('CONTROLLER_IN_USE', EBUSY, `controller '${ctrlr}' still has targets: remove them first`);
    }
    await c.destroy();
    this.controllers.delete(ctrlr);
    this.logger.info({ ctrlr }, 'controller deleted');
  }

  configCalls(): { method: string; params: Record<string, unknown> }[] {
    return [...this.controllers.values()].flatMap((c) => c.configCalls());
  }

  /** Shutdown: close every controller (targets included). */
  async closeAll(): Promise<void> {
    for (const c of this.controllers.values()) {
      try {
        await c.destroy();
      } catch (e) {
        this.logger.warn({ err: e, ctrlr: c.name }, 'controller did not close cleanly');
      }
    }
    this.controllers.clear();
  }
}
