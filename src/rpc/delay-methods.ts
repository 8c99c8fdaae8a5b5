// bdev_delay_create / bdev_delay_delete (SPDK names and parameters): the delay bdev claims its base.
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import { BdevError } from '../bdev/bdev-error.ts';
import { DELAY_MODULE, DelayBdev } from '../bdev/modules/delay.ts';
import type { MethodTable } from './method-table.ts';

export function registerDelayMethods(table: MethodTable, bdevs: BdevRegistry): void {
  table.register('bdev_delay_create', (p) => {
    const base = bdevs.get(p.base_bdev_name);
    if (!base) throw new BdevError('BDEV_NOT_FOUND', `base bdev '${p.base_bdev_name}' does not exist`);
    if (bdevs.get(p.name)) throw new BdevError('BDEV_EXISTS', `bdev name '${p.name}' already exists`);
    const bdev = new DelayBdev(base, p.name, { avgReadUs: p.avg_read_latency, p99ReadUs: p.nine_nine_read_latency, avgWriteUs: p.avg_write_latency, p99WriteUs: p.nine_nine_write_latency }, p.uuid);
    const claimer = `delay ${p.name}`;
    bdevs.claim(base.name, claimer);
    try {
      bdevs.register(bdev);
    } catch (e) {
      bdevs.release(base.name, claimer);
      throw e;
    }
    return bdev.name;
  });

  table.register('bdev_delay_delete', (p) => {
    const bdev = bdevs.unregister(p.name, DELAY_MODULE) as DelayBdev;
    bdevs.release(bdev.base.name, `delay ${bdev.name}`);
    return true;
  });
}
