// bdev_uring_* and bdev_aio_* RPC methods (SPDK v23.05 names and parameters). Both create a
// UringBdev (files and block devices through io_uring); aio keeps SPDK's module and product name.
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import { AIO_MODULE, URING_MODULE, UringBdev } from '../bdev/modules/uring.ts';
import type { MethodTable } from './method-table.ts';
import { registerOrDestroy } from './bdev-register.ts';

const register = registerOrDestroy;

export function registerUringMethods(table: MethodTable, bdevs: BdevRegistry): void {
  table.register('bdev_uring_create', (p) =>
    register(bdevs, new UringBdev({ name: p.name, filename: p.filename, blockSize: p.block_size, uuid: p.uuid, mmap: p.mmap, flavor: URING_MODULE })),
  );

  table.register('bdev_uring_delete', (p) => {
    bdevs.unregister(p.name, URING_MODULE);
    return true;
  });

  table.register('bdev_aio_create', (p) =>
    register(
      bdevs,
      new UringBdev({
        name: p.name,
        filename: p.filename,
        blockSize: p.block_size,
        readonly: p.readonly,
        fallocate: p.fallocate,
        uuid: p.uuid,
        mmap: p.mmap,
        flavor: AIO_MODULE,
      }),
    ),
  );

  table.register('bdev_aio_delete', (p) => {
    bdevs.unregister(p.name, AIO_MODULE);
    return true;
  });
}
