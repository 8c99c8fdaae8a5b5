// bdev_lvol_* RPC methods (SPDK v23.05 names, parameters and results) and vhostd_get_operations.
import type { LvolModule } from '../lvol/lvol-module.ts';
import type { LvolBdev } from '../lvol/lvol-bdev.ts';
import { LvolError } from '../lvol/lvol-error.ts';
import type { LvolStore } from '../lvol/lvol-store.ts';
import type { OperationTracker } from '../lvol/operation-tracker.ts';
import type { MethodTable } from './method-table.ts';

const MiB = 1024 * 1024;

function lvstoreInfo(s: LvolStore): Record<string, unknown> {
  return {
    uuid: s.uuid,
    name: s.name,
    base_bdev: s.baseBdev.name,
    total_data_clusters: s.blobstore.totalDataClusters,
    free_clusters: s.freeClusters,
    block_size: s.blockSize,
    cluster_size: s.clusterSize,
  };
}

function lvolInfo(l: LvolBdev): Record<string, unknown> {
  return {
    alias: l.alias,
    uuid: l.uuid,
    name: l.lvolName,
    is_thin_provisioned: l.blob.isThin,
    is_snapshot: l.isSnapshot,
    is_clone: l.blob.parentId !== 0,
    is_esnap_clone: false,
    is_degraded: false,
    lvs: { name: l.store.name, uuid: l.store.uuid },
  };
}

/** size_in_mib wins over the deprecated byte `size`; one of them is required. */
function sizeBytes(p: { size_in_mib?: number; size?: number }): number {
  if (p.size_in_mib !== undefined) return p.size_in_mib * MiB;
  if (p.size !== undefined) return p.size;
  throw new LvolError('LVOL_INVALID_PARAM', 'give size_in_mib (or the deprecated size in bytes)');
}

export function registerLvolMethods(table: MethodTable, lvols: LvolModule, ops: OperationTracker): void {
  table.register('bdev_lvol_create_lvstore', async (p) => {
    const clear = p.clear_method ?? 'unmap';
    const store = await ops.run('clear lvol store', p.lvs_name, (progress) =>
      lvols.createStore(p.bdev_name, {
        name: p.lvs_name, clusterSize: p.cluster_sz, clearMethod: clear, mdPagesPerClusterRatio: p.num_md_pages_per_cluster_ratio,
      }, progress),
    );
    return store.uuid;
  });

  table.register('bdev_lvol_delete_lvstore', async (p) => {
    await lvols.deleteStore(lvols.store(p));
    return true;
  });

  table.register('bdev_lvol_get_lvstores', (p) => {
    const list = p.uuid !== undefined || p.lvs_name !== undefined ? [lvols.store(p)] : lvols.stores();
    return list.map(lvstoreInfo);
  });

  table.register('bdev_lvol_rename_lvstore', async (p) => {
    await lvols.renameStore(p.old_name, p.new_name);
    return true;
  });

  table.register('bdev_lvol_grow_lvstore', async (p) => {
    await lvols.store(p).grow();
    return true;
  });

  table.register('bdev_lvol_create', async (p) => {
    const store = lvols.store({ uuid: p.uuid, lvs_name: p.lvs_name });
    const lvol = await store.createLvol(p.lvol_name, sizeBytes(p), p.thin_provision ?? false, p.clear_method ?? 'unmap');
    return lvol.name;
  });

  table.register('bdev_lvol_snapshot', async (p) => {
    const lvol = lvols.lvol(p.lvol_name);
    return (await lvol.store.snapshot(lvol, p.snapshot_name)).name;
  });

  table.register('bdev_lvol_clone', async (p) => {
    const snap = lvols.lvol(p.snapshot_name);
    return (await snap.store.clone(snap, p.clone_name)).name;
  });

  table.register('bdev_lvol_rename', async (p) => {
    const lvol = lvols.lvol(p.old_name);
    await lvol.store.rename(lvol, p.new_name);
    return true;
  });

  table.register('bdev_lvol_resize', async (p) => {
    const lvol = lvols.lvol(p.name);
    await lvol.store.resize(lvol, sizeBytes(p));
    return true;
  });

  table.register('bdev_lvol_set_read_only', async (p) => {
    const lvol = lvols.lvol(p.name);
    await lvol.store.setReadOnly(lvol);
    return true;
  });

  table.register('bdev_lvol_delete', async (p) => {
    const lvol = lvols.lvol(p.name);
    await ops.run('delete', lvol.alias, (progress) => lvol.store.deleteLvol(lvol, progress));
    return true;
  });

  table.register('bdev_lvol_inflate', async (p) => {
    const lvol = lvols.lvol(p.name);
    await ops.run('inflate', lvol.alias, (progress) => lvol.store.inflate(lvol, progress));
    return true;
  });

  table.register('bdev_lvol_decouple_parent', async (p) => {
    const lvol = lvols.lvol(p.name);
    await ops.run('decouple_parent', lvol.alias, (progress) => lvol.store.decoupleParent(lvol, progress));
    return true;
  });

  table.register('bdev_lvol_get_lvols', (p) => {
    const stores = p.lvs_uuid !== undefined || p.lvs_name !== undefined ? [lvols.store({ uuid: p.lvs_uuid, lvs_name: p.lvs_name })] : lvols.stores();
    return stores.flatMap((s) => s.lvols().map(lvolInfo));
  });

  table.register('vhostd_get_operations', (p) => ops.list(p.id));
}
