// vhost_* RPC methods, delegated to the controller layer through VhostApi. Errors are reported
// as SPDK v23.05 does for these methods: -32602 (-32603 for vhost_get_controllers) with the
// strerror text, e.g. {"code": -32602, "message": "No such device"}.
import type { MethodTable } from './method-table.ts';
import type { VhostApi } from './vhost-api.ts';
import { ENOTSUP, RpcError, SPDK_JSONRPC_ERROR_INVALID_PARAMS, strerror } from './rpc-error.ts';

export function registerVhostMethods(table: MethodTable, vhost: VhostApi): void {
  table.register(
    'vhost_create_scsi_controller',
    async (p) => {
      if (p.delay) {
        // SPDK 24.01's delayed start needs a start call VhostApi does not offer (yet).
        throw new RpcError('VHOST_DELAY_NOT_SUPPORTED', SPDK_JSONRPC_ERROR_INVALID_PARAMS, strerror(ENOTSUP), {
          code: 'VHOST_DELAY_NOT_SUPPORTED',
          detail: 'delay=true (start the controller later) is not supported; omit it or pass false',
        });
      }
      await vhost.createScsiController(p.ctrlr, p.cpumask);
      return true;
    },
    'invalid-params',
  );

  table.register(
    'vhost_create_blk_controller',
    async (p) => {
      await vhost.createBlkController(p.ctrlr, p.dev_name, { readonly: p.readonly ?? false, packedRing: p.packed_ring ?? false, cpumask: p.cpumask });
      return true;
    },
    'invalid-params',
  );

  table.register(
    'vhost_controller_set_coalescing',
    async (p) => {
      await vhost.setCoalescing(p.ctrlr, p.delay_base_us, p.iops_threshold);
      return true;
    },
    'invalid-params',
  );

  table.register(
    'vhost_scsi_controller_add_target',
    (p) => vhost.addScsiTarget(p.ctrlr, p.scsi_target_num, p.bdev_name),
    'invalid-params',
  );

  table.register(
    'vhost_scsi_controller_remove_target',
    async (p) => {
      await vhost.removeScsiTarget(p.ctrlr, p.scsi_target_num);
      return true;
    },
    'invalid-params',
  );

  table.register(
    'vhost_get_controllers',
    (p) => {
      const list = vhost.getControllers(p.name);
      if (p.name !== undefined && list.length === 0) {
        throw Object.assign(new Error(`controller '${p.name}' does not exist`), { code: 'CONTROLLER_NOT_FOUND' });
      }
      return list;
    },
    'internal',
  );

  table.register(
    'vhost_delete_controller',
    async (p) => {
      await vhost.deleteController(p.ctrlr);
      return true;
    },
    'invalid-params',
  );
}
