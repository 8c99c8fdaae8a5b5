// The method table vhostd serves: framework, bdev and vhost methods over one set of registries.
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import type { Logger } from '../log/logger.ts';
import { MethodTable } from './method-table.ts';
import { registerFrameworkMethods } from './framework-methods.ts';
import { registerBdevMethods } from './bdev-methods.ts';
import type { MallocHugepages } from '../bdev/modules/malloc.ts';
import { registerVhostMethods } from './vhost-methods.ts';
import { SubsystemConfigBuilder } from './subsystem-config.ts';
import { RbdClusterRegistry } from '../bdev/modules/rbd-cluster.ts';
import { NvmeControllerRegistry } from '../bdev/modules/nvme-controller.ts';
import type { VhostApi } from './vhost-api.ts';
import type { LvolModule } from '../lvol/lvol-module.ts';
import { OperationTracker } from '../lvol/operation-tracker.ts';
import { registerLvolMethods } from './lvol-methods.ts';
import { registerReactorMethods, type ReactorGcApi } from './reactor-methods.ts';

export interface VhostdMethodsOptions {
  bdevs: BdevRegistry;
  /** Without it the vhost_* methods are not offered. */
  vhost?: VhostApi;
  /** Without it the bdev_lvol_* methods are not offered. */
  lvols?: LvolModule;
  /** framework_wait_init waits for it (the start-up configuration replay). */
  initDone?: Promise<void>;
  logger?: Logger;
  /** Without it the vhostd_reactor_* methods are not offered. */
  reactors?: ReactorGcApi;
  /** Where bdev_malloc_create puts its RAM disks (default off). */
  mallocHugepages?: MallocHugepages;
}

export function createMethodTable(opts: VhostdMethodsOptions): MethodTable {
  const table = new MethodTable(opts.logger);
  const rbdClusters = new RbdClusterRegistry();
  const nvmeCtrlrs = new NvmeControllerRegistry();
  const config = new SubsystemConfigBuilder(
    opts.bdevs,
    opts.vhost,
    (b) => opts.logger?.warn({ bdev: b.name, module: b.moduleName }, 'bdev module cannot save its configuration; left out'),
    rbdClusters,
    nvmeCtrlrs,
  );
  registerFrameworkMethods(table, config, opts.initDone);
  registerBdevMethods(table, opts.bdevs, opts.lvols, opts.mallocHugepages, rbdClusters, nvmeCtrlrs);
  if (opts.lvols) registerLvolMethods(table, opts.lvols, new OperationTracker());
  if (opts.vhost) registerVhostMethods(table, opts.vhost);
  if (opts.reactors) registerReactorMethods(table, opts.reactors);
  return table;
}
