// bdev_nbd_client_create / bdev_nbd_client_delete: vhostd's own methods (SPDK's nbd_* methods do
// the opposite, exporting a bdev as a kernel /dev/nbdX). The export is probed before the bdev exists.
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import { BdevError } from '../bdev/bdev-error.ts';
import { createNbdBdev, NBD_MODULE, type NbdAddress } from '../bdev/modules/nbd.ts';
import type { NbdTimeouts } from '../bdev/modules/nbd-shared.ts';
import type { MethodTable } from './method-table.ts';

export const NBD_DEFAULT_PORT = 10809;

const ms = (sec: number | undefined): number | undefined => (sec === undefined ? undefined : Math.round(sec * 1000));

export function registerNbdMethods(table: MethodTable, bdevs: BdevRegistry): void {
  table.register('bdev_nbd_client_create', async (p) => {
    if (bdevs.get(p.name)) throw new BdevError('BDEV_EXISTS', `bdev name '${p.name}' already exists`);
    if ((p.socket === undefined) === (p.host === undefined)) {
      throw new BdevError('BDEV_INVALID_PARAM', 'give the server as socket (a Unix socket path) or as host (and port), not both');
    }
    if (p.socket !== undefined && p.port !== undefined) throw new BdevError('BDEV_INVALID_PARAM', 'port goes with host, not with socket');
    const address: NbdAddress = p.socket !== undefined ? { socket: p.socket } : { host: p.host as string, port: p.port ?? NBD_DEFAULT_PORT };
    const timeouts: Partial<NbdTimeouts> = {};
    const set = (k: keyof NbdTimeouts, v: number | undefined): void => {
      if (v !== undefined) timeouts[k] = v;
    };
    set('connectMs', ms(p.connect_timeout_sec));
    set('reconnectDelayMs', ms(p.reconnect_delay_sec));
    set('fastIoFailMs', ms(p.fast_io_fail_timeout_sec));
    set('ioTimeoutMs', ms(p.io_timeout_sec));
    const bdev = await createNbdBdev({
      name: p.name,
      address,
      exportName: p.export_name,
      blockSize: p.block_size,
      uuid: p.uuid,
      readOnly: p.readonly,
      timeouts,
    });
    // The probe took time: the name may have been taken meanwhile.
    bdevs.register(bdev);
    return bdev.name;
  });

  table.register('bdev_nbd_client_delete', (p) => {
    bdevs.unregister(p.name, NBD_MODULE);
    return true;
  });
}
