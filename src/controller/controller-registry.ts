// All vhost controllers of the daemon; the implementation of the vhost_* RPC methods.
import { join } from 'node:path';
import type { VhostApi, ControllerInfo } from '../rpc/vhost-api.ts';
import type { ReactorPool } from '../reactor/reactor-pool.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import type { Logger } from '../log/logger.ts';
import { parseCpumask } from '../reactor/cpumask.ts';
import { ScsiController } from './scsi-controller.ts';
import type { VhostController } from './vhost-controller.ts';
import { BlkController } from './blk-controller.ts';
import type { ReactorHandle } from '../reactor/reactor-handle.ts';
import { ControllerError, EBUSY, EEXIST, EINVAL, ENODEV } from './controller-error.ts';

const NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

export class ControllerRegistry implements VhostApi {
  readonly socketDir: string;
  private readonly reactors: ReactorPool;
  private readonly bdevs: BdevRegistry;
  private readonly logger: Logger;
  private readonly controllers = new Map<string, VhostController>();

  constructor(socketDir: string, reactors: ReactorPool, bdevs: BdevRegistry, logger: Logger) {
    this.socketDir = socketDir;
    this.reactors = reactors;
    this.bdevs = bdevs;
    this.logger = logger;
    bdevs.on('resized', (bdev) => {
      for (const c of this.controllers.values()) {
        c.bdevResized(bdev).catch((e: unknown) => this.logger.warn({ err: e, ctrlr: c.name, bdev: bdev.name }, 'resize not applied'));
      }
    });
  }

  private get(ctrlr: string): VhostController {
    const c = this.controllers.get(ctrlr);
    if (!c) throw new ControllerError('CONTROLLER_NOT_FOUND', ENODEV, `controller '${ctrlr}' does not exist`);
    return c;
  }

  private scsi(ctrlr: string): ScsiController {
    const c = this.get(ctrlr);
    if (!(c instanceof ScsiController)) throw new ControllerError('WRONG_CONTROLLER_TYPE', EINVAL, `controller '${ctrlr}' is not a vhost-scsi controller`);
    return c;
  }

  async createScsiController(ctrlr: string, cpumask: string | undefined): Promise<void> {
    // Request queues spread over every reactor of the mask, least loaded first; `reactor` is home.
    await this.create(ctrlr, cpumask, (cpus, reactor) =>
      new ScsiController(ctrlr, join(this.socketDir, ctrlr), cpus, this.reactors.all(cpus, reactor), this.bdevs, this.logger),
    );
  }

  async createBlkController(ctrlr: string, devName: string, opts: { readonly: boolean; packedRing: boolean; cpumask?: string }): Promise<void> {
    // A blk controller's queues spread over every reactor of its mask, least loaded first.
    await this.create(ctrlr, opts.cpumask, (cpus, reactor) =>
      new BlkController(ctrlr, join(this.socketDir, ctrlr), cpus, this.reactors.all(cpus, reactor), this.bdevs, this.logger, {
        bdevName: devName,
        readOnly: opts.readonly,
        packedRing: opts.packedRing,
      }),
    );
  }

  private async create(ctrlr: string, cpumask: string | undefined, make: (cpus: number[], reactor: ReactorHandle) => VhostController): Promise<void> {
    if (!NAME_RE.test(ctrlr)) {
      throw new ControllerError('BAD_NAME', EINVAL, `invalid controller name '${ctrlr}': 1-64 characters of A-Z a-z 0-9 _ . : -`);
    }
    if (this.controllers.has(ctrlr)) throw new ControllerError('CONTROLLER_EXISTS', EEXIST, `controller '${ctrlr}' already exists`);
    let cpus: number[];
    let reactor: ReactorHandle;
    try {
      cpus = cpumask === undefined ? this.reactors.cpus() : parseCpumask(cpumask);
      reactor = this.reactors.pick(cpus);
    } catch (e) {
      throw new ControllerError('BAD_CPUMASK', EINVAL, (e as Error).message);
    }
    const reactorCpus = this.reactors.cpus();
    const c = make(cpus.filter((x) => reactorCpus.includes(x)), reactor);
    this.controllers.set(ctrlr, c);
    try {
      await c.start();
    } catch (e) {
      this.controllers.delete(ctrlr);
      const err = e as { code?: string; message?: string };
      if (err.code === 'SOCKET_PATH_IN_USE' || err.code === 'EADDRINUSE') {
        throw new ControllerError('SOCKET_IN_USE', EEXIST, `socket ${c.socketPath} is in use: ${err.message}`);
      }
      throw e;
    }
    this.logger.info({ ctrlr, kind: c.kind, socket: c.socketPath, reactor: reactor.index }, 'controller created');
  }

  async addScsiTarget(ctrlr: string, scsiTargetNum: number, bdevName: string): Promise<number> {
    return this.scsi(ctrlr).addTarget(scsiTargetNum, bdevName);
  }

  async removeScsiTarget(ctrlr: string, scsiTargetNum: number): Promise<void> {
    await this.scsi(ctrlr).removeTarget(scsiTargetNum);
  }

  getControllers(name?: string): ControllerInfo[] {
    if (name !== undefined) return [this.get(name).info()];
    return [...this.controllers.values()].map((c) => c.info());
  }

  async setCoalescing(ctrlr: string, delayBaseUs: number, iopsThreshold: number): Promise<void> {
    if (!Number.isInteger(delayBaseUs) || delayBaseUs < 0 || delayBaseUs > 1_000_000) {
      throw new ControllerError('BAD_COALESCING', EINVAL, `delay_base_us ${delayBaseUs}: an integer 0..1000000 (0 = off)`);
    }
    if (!Number.isInteger(iopsThreshold) || iopsThreshold < 1) {
      throw new ControllerError('BAD_COALESCING', EINVAL, `iops_threshold ${iopsThreshold}: a positive integer`);
    }
    await this.get(ctrlr).setCoalescing(delayBaseUs, iopsThreshold);
  }

  async deleteController(ctrlr: string): Promise<void> {
    const c = this.get(ctrlr);
    const busy = c.inUse();
    if (busy) throw new ControllerError('CONTROLLER_IN_USE', EBUSY, busy);
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
