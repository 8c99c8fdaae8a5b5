// Framework methods: method listing, version, init waits, subsystem configuration.
import type { MethodTable } from './method-table.ts';
import { versionInfo } from './package-version.ts';
import { RpcError, SPDK_JSONRPC_ERROR_INVALID_PARAMS } from './rpc-error.ts';
import { SUBSYSTEMS, type SubsystemConfigBuilder } from './subsystem-config.ts';

export function registerFrameworkMethods(table: MethodTable, config: SubsystemConfigBuilder, initDone?: Promise<void>): void {
  // Every method is callable at run time and none has an alias, so both flags change nothing.
  table.register('rpc_get_methods', () => table.names());
  table.register('spdk_get_version', () => versionInfo());
  // Resolves once the start-up configuration (-c) has been replayed.
  table.register('framework_wait_init', async () => {
    await initDone;
    return true;
  });
  table.register('framework_get_subsystems', () => SUBSYSTEMS.map((s) => ({ subsystem: s.subsystem, depends_on: [...s.depends_on] })));
  table.register('framework_get_config', (p) => {
    const calls = config.config(p.name);
    if (calls === undefined) {
      throw new RpcError('SUBSYSTEM_NOT_FOUND', SPDK_JSONRPC_ERROR_INVALID_PARAMS, `Subsystem '${p.name}' not found`);
    }
    return calls;
  });
  table.register('save_config', () => config.all());
}
