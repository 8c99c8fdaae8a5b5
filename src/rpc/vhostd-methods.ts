// The method table vhostd serves: framework, bdev and vhost methods over one set of registries.
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import type { Logger } from '../log/logger.ts';
import { MethodTable } from './method-table.ts';
import { registerFrameworkMethods } from './framework-methods.ts';
import { registerBdevMethods } from './bdev-methods.ts';
import { registerVhostMethods } from './vhost-methods.ts';
import { SubsystemConfigBuilder } from './subsystem-config.ts';
import type { VhostApi } from './vhost-api.ts';
import { registerReactorMethods, type ReactorGcApi } from './reactor-methods.ts';

export interface VhostdMethodsOptions {
  bdevs: BdevRegistry;
  /** Without it the vhost_* methods are not offered. */
  vhost?: VhostApi;
  logger?: Logger;
  /** Without it the vhostd_reactor_* methods are not offered. */
  reactors?: ReactorGcApi;
}

export function createMethodTable(opts: VhostdMethodsOptions): MethodTable {
  const table = new MethodTable(opts.logger);
  const config = new SubsystemConfigBuilder(opts.bdevs, opts.vhost, (b) =>
    opts.logger?.warn({ bdev: b.name, module: b.moduleName }, 'bdev module cannot save its configuration; left out'),
  );
  registerFrameworkMethods(table, config);
  registerBdevMethods(table, opts.bdevs);
  if (opts.vhost) registerVhostMethods(table, opts.vhost);
  if (opts.reactors) registerReactorMethods(table, opts.reactors);
  return table;
}
