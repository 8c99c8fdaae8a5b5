// bdev_rbd_* methods, SPDK's names and parameters: clusters (one shared rados connection each)
// and RBD bdevs on them, or on a connection of their own (user_id + config).
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import { BdevError } from '../bdev/bdev-error.ts';
import { RadosCluster, type RbdClusterRegistry } from '../bdev/modules/rbd-cluster.ts';
import { createRbdBdev, RBD_MODULE, RbdBdev } from '../bdev/modules/rbd.ts';
import { parseCpumask } from '../reactor/cpumask.ts';
import type { MethodTable } from './method-table.ts';
import { registerOrDestroy } from './bdev-register.ts';

const MIB = 1024 * 1024;

export function registerRbdMethods(table: MethodTable, bdevs: BdevRegistry, clusters: RbdClusterRegistry): void {
  // SPDK names unnamed RBD bdevs Ceph0, Ceph1, ...
  let count = 0;
  const nextName = (): string => {
    let name: string;
    do name = `Ceph${count++}`;
    while (bdevs.get(name));
    return name;
  };

  table.register('bdev_rbd_register_cluster', async (p) => {
    const cpus = p.core_mask !== undefined ? parseCpumask(p.core_mask) : undefined;
    const c = await clusters.register({ name: p.name, userId: p.user_id, configParam: p.config_param, configFile: p.config_file, keyFile: p.key_file, coreMask: p.core_mask, cpus });
    return c.name;
  });

  table.register('bdev_rbd_unregister_cluster', async (p) => {
    await clusters.unregister(p.name);
    return true;
  });

  table.register('bdev_rbd_get_clusters_info', (p) => {
    if (p.name !== undefined) return clusters.require(p.name).info();
    return clusters.list().map((c) => c.info());
  });

  table.register('bdev_rbd_create', async (p) => {
    const name = p.name ?? nextName();
    if (bdevs.get(name)) throw new BdevError('BDEV_EXISTS', `bdev name '${name}' already exists`);
    let cluster: RadosCluster;
    if (p.cluster_name !== undefined) {
      if (p.user_id !== undefined || p.config !== undefined) {
        throw new BdevError('BDEV_INVALID_PARAM', 'cluster_name names a registered connection: give user_id and config to bdev_rbd_register_cluster instead');
      }
      cluster = clusters.require(p.cluster_name);
    } else {
      cluster = new RadosCluster({ name: `${name} (private)`, userId: p.user_id, configParam: p.config }, false);
      await cluster.connect();
    }
    const bdev = await createRbdBdev({
      name,
      poolName: p.pool_name,
      rbdName: p.rbd_name,
      blockSize: p.block_size,
      uuid: p.uuid,
      cluster,
      onResize: (b) => bdevs.notifyResized(b),
    });
    // Opening took time: the name may have been taken meanwhile.
    return registerOrDestroy(bdevs, bdev);
  });

  table.register('bdev_rbd_delete', (p) => {
    bdevs.unregister(p.name, RBD_MODULE);
    return true;
  });

  table.register('bdev_rbd_resize', async (p) => {
    const bdev = bdevs.get(p.name);
    if (!(bdev instanceof RbdBdev)) {
      throw new BdevError(bdev ? 'BDEV_WRONG_MODULE' : 'BDEV_NOT_FOUND', bdev ? `bdev '${p.name}' is not an RBD bdev` : `bdev '${p.name}' does not exist`);
    }
    await bdev.resize(p.new_size * MIB);
    return true;
  });
}
