// bdev_* RPC methods (SPDK v23.05 names, parameters and results).
import type { Bdev } from '../bdev/bdev.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import { BdevError } from '../bdev/bdev-error.ts';
import { MALLOC_MODULE, MallocBdev, type MallocHugepages } from '../bdev/modules/malloc.ts';
import { NULL_MODULE, NullBdev } from '../bdev/modules/null.ts';
import type { MethodTable } from './method-table.ts';
import type { LvolModule } from '../lvol/lvol-module.ts';
import { bdevInfo } from './bdev-info.ts';
import { registerUringMethods } from './uring-methods.ts';
import { registerDelayMethods } from './delay-methods.ts';
import { registerNbdMethods } from './nbd-methods.ts';
import { registerRbdMethods } from './rbd-methods.ts';
import { registerOrDestroy } from './bdev-register.ts';
import { RbdClusterRegistry } from '../bdev/modules/rbd-cluster.ts';
import { NvmeControllerRegistry } from '../bdev/modules/nvme-controller.ts';
import { registerNvmeMethods } from './nvme-methods.ts';

/** SPDK accepts metadata/DIF parameters; we only support "none" and refuse anything else clearly. */
function checkNoMetadata(p: { md_size?: number; dif_type?: number }): void {
  if (p.dif_type !== undefined && (p.dif_type < 0 || p.dif_type > 3)) {
    throw new BdevError('BDEV_INVALID_PARAM', `dif_type ${p.dif_type} is not a protection information type (0..3)`);
  }
  if (p.md_size) throw new BdevError('BDEV_NOT_SUPPORTED', `md_size ${p.md_size}: bdevs with metadata are not supported`);
  if (p.dif_type) throw new BdevError('BDEV_NOT_SUPPORTED', `dif_type ${p.dif_type}: protection information is not supported`);
}

export function registerBdevMethods(
  table: MethodTable,
  bdevs: BdevRegistry,
  lvols?: LvolModule,
  mallocHugepages: MallocHugepages = 'off',
  rbdClusters: RbdClusterRegistry = new RbdClusterRegistry(),
  nvmeCtrlrs: NvmeControllerRegistry = new NvmeControllerRegistry(),
): void {
  // SPDK numbers auto-named malloc bdevs with a counter; we also skip names already taken.
  let mallocCount = 0;
  const nextMallocName = (): string => {
    let name: string;
    do name = `Malloc${mallocCount++}`;
    while (bdevs.get(name));
    return name;
  };

  table.register('bdev_malloc_create', (p) => {
    checkNoMetadata(p);
    const name = p.name ?? nextMallocName();
    if (bdevs.get(name)) throw new BdevError('BDEV_EXISTS', `bdev name '${name}' already exists`);
    const bdev = new MallocBdev({
      name,
      numBlocks: p.num_blocks,
      blockSize: p.block_size,
      uuid: p.uuid,
      physicalBlockSize: p.physical_block_size,
      optimalIoBoundary: p.optimal_io_boundary,
      hugepages: mallocHugepages,
    });
    return registerOrDestroy(bdevs, bdev);
  });

  table.register('bdev_malloc_delete', (p) => {
    bdevs.unregister(p.name, MALLOC_MODULE);
    return true;
  });

  table.register('bdev_null_create', (p) => {
    checkNoMetadata(p);
    const bdev = new NullBdev({
      name: p.name,
      numBlocks: p.num_blocks,
      blockSize: p.block_size,
      uuid: p.uuid,
      physicalBlockSize: p.physical_block_size,
    });
    return registerOrDestroy(bdevs, bdev);
  });

  table.register('bdev_null_delete', (p) => {
    bdevs.unregister(p.name, NULL_MODULE);
    return true;
  });

  registerUringMethods(table, bdevs);
  registerDelayMethods(table, bdevs);
  registerNbdMethods(table, bdevs);
  registerRbdMethods(table, bdevs, rbdClusters);
  registerNvmeMethods(table, bdevs, nvmeCtrlrs);

  table.register('bdev_null_resize', (p) => {
    const bdev = bdevs.get(p.name);
    if (!(bdev instanceof NullBdev)) {
      throw new BdevError(bdev ? 'BDEV_WRONG_MODULE' : 'BDEV_NOT_FOUND', bdev ? `bdev '${p.name}' is not a null bdev` : `bdev '${p.name}' does not exist`);
    }
    const bytes = p.new_size * 1024 * 1024;
    if (bytes % bdev.blockSize !== 0 || bytes === 0) {
      throw new BdevError('BDEV_INVALID_PARAM', `new_size ${p.new_size} MiB is not a positive multiple of the block size ${bdev.blockSize}`);
    }
    bdev.resize(bytes / bdev.blockSize);
    bdevs.notifyResized(bdev);
    return true;
  });

  table.register('bdev_get_bdevs', async (p) => {
    if (p.name === undefined) return bdevs.list().map((b) => bdevInfo(b, bdevs));
    const bdev = await bdevs.waitFor(p.name, p.timeout ?? 0);
    if (!bdev) {
      const waited = p.timeout ? ` after waiting ${p.timeout} ms` : '';
      throw new BdevError('BDEV_NOT_FOUND', `bdev '${p.name}' does not exist${waited}`);
    }
    return [bdevInfo(bdev, bdevs)];
  });

  // Nothing examines bdevs asynchronously here: every bdev is complete once created.
  table.register('bdev_wait_for_examine', async () => {
    await lvols?.waitForExamine();
    return true;
  });
}
