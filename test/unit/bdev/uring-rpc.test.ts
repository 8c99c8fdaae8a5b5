// bdev_uring_* / bdev_aio_* through the RPC method table: create, bdev_get_bdevs, save_config,
// replay of the saved config into a fresh daemon state, delete, and SPDK-style errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BdevRegistry } from '../../../src/bdev/bdev-registry.ts';
import { createMethodTable } from '../../../src/rpc/vhostd-methods.ts';
import { replayConfig, type VhostdConfig } from '../../../src/rpc/config-file.ts';
import { RpcError } from '../../../src/rpc/rpc-error.ts';
import type { MethodTable } from '../../../src/rpc/method-table.ts';

const U = '0b2a3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d';

async function rejects(t: MethodTable, method: string, params: unknown, rpcCode: number, message: string | RegExp, detail?: RegExp): Promise<void> {
  await assert.rejects(t.call(method, params), (e: unknown) => {
    assert.ok(e instanceof RpcError, `expected RpcError, got ${String(e)}`);
    assert.equal(e.rpcCode, rpcCode, `${method}: code (message: ${e.message}, detail: ${e.detail})`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    if (detail) assert.match(e.detail ?? '', detail);
    return true;
  });
}

test('bdev_uring_create / bdev_aio_create, bdev_get_bdevs, save_config and its replay, delete', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-uring-rpc-'));
  try {
    const f1 = join(dir, 'u.img');
    const f2 = join(dir, 'a.img');
    writeFileSync(f1, Buffer.alloc(1 << 20));
    writeFileSync(f2, Buffer.alloc(1 << 20));
    const bdevs = new BdevRegistry();
    const t = createMethodTable({ bdevs });
    const names = (await t.call('rpc_get_methods')) as string[];
    for (const m of ['bdev_uring_create', 'bdev_uring_delete', 'bdev_aio_create', 'bdev_aio_delete']) assert.ok(names.includes(m), m);

    assert.equal(await t.call('bdev_uring_create', { name: 'u0', filename: f1, block_size: 4096, uuid: U }), 'u0');
    assert.equal(await t.call('bdev_aio_create', { name: 'a0', filename: f2, readonly: true }), 'a0');

    const [u] = (await t.call('bdev_get_bdevs', { name: 'u0' })) as Record<string, unknown>[];
    assert.equal(u.product_name, 'URING bdev');
    assert.equal(u.block_size, 4096);
    assert.equal(u.num_blocks, 256);
    assert.equal(u.uuid, U);
    assert.deepEqual(u.driver_specific, { uring: { filename: f1 } });
    const io = u.supported_io_types as Record<string, boolean>;
    assert.deepEqual([io.read, io.write, io.flush, io.write_zeroes, io.reset], [true, true, true, true, true]);

    const [a] = (await t.call('bdev_get_bdevs', { name: 'a0' })) as Record<string, unknown>[];
    assert.equal(a.product_name, 'AIO disk');
    assert.equal(a.block_size, 512);
    assert.equal(a.num_blocks, 2048);
    assert.deepEqual(a.driver_specific, { aio: { filename: f2, block_size_override: false, readonly: true, fallocate: false } });
    assert.equal((a.supported_io_types as Record<string, boolean>).write, false);

    const saved = (await t.call('save_config')) as VhostdConfig;
    const bdevCalls = saved.subsystems.find((s) => s.subsystem === 'bdev')?.config ?? [];
    assert.deepEqual(bdevCalls, [
      { method: 'bdev_uring_create', params: { name: 'u0', block_size: 4096, filename: f1, uuid: U } },
      { method: 'bdev_aio_create', params: { name: 'a0', filename: f2, readonly: true, fallocate: false, uuid: a.uuid } },
      { method: 'bdev_wait_for_examine' },
    ]);

    // The saved configuration, replayed into a fresh registry, gives back the same bdevs.
    const again = new BdevRegistry();
    const t2 = createMethodTable({ bdevs: again });
    assert.equal(await replayConfig(JSON.parse(JSON.stringify(saved)) as VhostdConfig, t2), 3);
    assert.deepEqual(await t2.call('bdev_get_bdevs'), await t.call('bdev_get_bdevs'));
    assert.deepEqual(await t2.call('save_config'), saved);

    await rejects(t, 'bdev_uring_create', { name: 'u0', filename: f1 }, -17, 'File exists', /'u0' already exists/);
    await rejects(t, 'bdev_uring_create', { name: 'x', filename: join(dir, 'none.img') }, -2, 'No such file or directory', /none\.img/);
    await rejects(t, 'bdev_uring_create', { name: 'x', filename: f1, block_size: 1000 }, -22, 'Invalid argument', /multiple of 512/);
    await rejects(t, 'bdev_uring_create', { name: 'x' }, -32602, "Invalid parameters: missing required parameter 'filename'");
    await rejects(t, 'bdev_aio_create', { name: 'x', filename: f2, direct: true }, -32602, "Invalid parameters: unknown parameter 'direct'");
    await rejects(t, 'bdev_uring_delete', { name: 'a0' }, -19, 'No such device', /module 'aio'/);
    await rejects(t, 'bdev_aio_delete', { name: 'u0' }, -19, 'No such device', /module 'uring'/);

    bdevs.claim('u0', 'vhost-scsi vhost.0');
    await rejects(t, 'bdev_uring_delete', { name: 'u0' }, -16, 'Device or resource busy', /claimed/);
    bdevs.release('u0');
    assert.equal(await t.call('bdev_uring_delete', { name: 'u0' }), true);
    assert.equal(await t.call('bdev_aio_delete', { name: 'a0' }), true);
    await rejects(t, 'bdev_uring_delete', { name: 'u0' }, -19, 'No such device');
    assert.deepEqual(await t.call('bdev_get_bdevs'), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file on tmpfs: bdev_get_bdevs says whether it is mapped and why not; mmap: false is saved', { skip: !existsSync('/dev/shm') }, async () => {
  const dir = mkdtempSync(join('/dev/shm', 'vhostd-uring-rpc-'));
  const bdevs = new BdevRegistry();
  try {
    const full = join(dir, 'full.img');
    const sparse = join(dir, 'sparse.img');
    writeFileSync(full, Buffer.alloc(1 << 20));
    writeFileSync(sparse, Buffer.alloc(0));
    truncateSync(sparse, 1 << 20);
    const t = createMethodTable({ bdevs });
    assert.equal(await t.call('bdev_uring_create', { name: 'm', filename: full }), 'm');
    assert.equal(await t.call('bdev_aio_create', { name: 's', filename: sparse }), 's');
    const [m] = (await t.call('bdev_get_bdevs', { name: 'm' })) as Record<string, unknown>[];
    assert.deepEqual(m.driver_specific, { uring: { filename: full, mapped: true } });
    const [s] = (await t.call('bdev_get_bdevs', { name: 's' })) as Record<string, unknown>[];
    const aio = (s.driver_specific as { aio: Record<string, unknown> }).aio;
    assert.equal(aio.mapped, false);
    assert.match(String(aio.map_reason), /had holes/);
    assert.equal(await t.call('bdev_uring_delete', { name: 'm' }), true);
    assert.equal(await t.call('bdev_uring_create', { name: 'm', filename: full, mmap: false }), 'm');
    const [off] = (await t.call('bdev_get_bdevs', { name: 'm' })) as Record<string, unknown>[];
    assert.deepEqual(off.driver_specific, { uring: { filename: full } }, 'never mapped: nothing to say');
    const saved = (await t.call('save_config')) as VhostdConfig;
    const bdevCfg = saved.subsystems.find((x) => x.subsystem === 'bdev')?.config ?? [];
    const entry = bdevCfg.find((c) => c.method === 'bdev_uring_create') as { params: Record<string, unknown> };
    assert.equal(entry.params.mmap, false);
    const s2 = bdevCfg.find((c) => c.method === 'bdev_aio_create') as { params: Record<string, unknown> };
    assert.equal('mmap' in s2.params, false, 'the default is not written');
    await rejects(t, 'bdev_uring_create', { name: 'x', filename: full, mmap: 'yes' }, -32602, /Invalid parameters/);
  } finally {
    for (const b of bdevs.list()) bdevs.unregister(b.name);
    rmSync(dir, { recursive: true, force: true });
  }
});
