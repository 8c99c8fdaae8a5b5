import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, type Harness } from './rpc-harness.ts';
import { RpcClient } from '../../../src/rpc/rpc-client.ts';
import { RpcError } from '../../../src/rpc/rpc-error.ts';
import { readFileSync } from 'node:fs';

const PKG_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const U = '0b2a3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d';

async function withClient(fn: (c: RpcClient, h: Harness) => Promise<void>): Promise<void> {
  const h = await startServer();
  const c = await RpcClient.connect(h.socketPath);
  try {
    await fn(c, h);
  } finally {
    c.close();
    await h.stop();
  }
}

/** Asserts the call fails with exactly this JSON-RPC code and message (and detail, if given). */
async function rejects(c: RpcClient, method: string, params: unknown, rpcCode: number, message: string | RegExp, detail?: RegExp): Promise<void> {
  await assert.rejects(c.call(method, params), (e: unknown) => {
    assert.ok(e instanceof RpcError, `expected RpcError, got ${String(e)}`);
    assert.equal(e.rpcCode, rpcCode, `${method}: code (message: ${e.message})`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    if (detail) assert.match(e.detail ?? '', detail);
    return true;
  });
}

test('rpc_get_methods, spdk_get_version, framework_*', async () => {
  await withClient(async (c) => {
    const methods = (await c.call('rpc_get_methods')) as string[];
    for (const m of [
      'rpc_get_methods', 'spdk_get_version', 'framework_wait_init', 'framework_get_subsystems', 'framework_get_config', 'save_config',
      'bdev_malloc_create', 'bdev_malloc_delete', 'bdev_null_create', 'bdev_null_delete', 'bdev_get_bdevs', 'bdev_wait_for_examine',
      'vhost_create_scsi_controller', 'vhost_scsi_controller_add_target', 'vhost_scsi_controller_remove_target',
      'vhost_get_controllers', 'vhost_delete_controller',
    ]) assert.ok(methods.includes(m), m);
    assert.deepEqual(await c.call('rpc_get_methods', { current: true, include_aliases: true }), methods);
    await rejects(c, 'rpc_get_methods', { current: 'yes' }, -32602, "Invalid parameters: 'current': expected boolean, received string");

    const [major, minor, patch] = PKG_VERSION.split(/[.-]/).map(Number);
    const v = (await c.call('spdk_get_version')) as { version: string; fields: Record<string, unknown> };
    assert.equal(v.version, `vhostd ${PKG_VERSION}`);
    assert.deepEqual({ ...v.fields, suffix: undefined }, { major, minor, patch, suffix: undefined });
    await rejects(c, 'spdk_get_version', { verbose: true }, -32602, "Invalid parameters: unknown parameter 'verbose'");

    assert.equal(await c.call('framework_wait_init'), true);
    assert.equal(await c.call('bdev_wait_for_examine'), true);
    assert.deepEqual(await c.call('framework_get_subsystems'), [
      { subsystem: 'bdev', depends_on: [] },
      { subsystem: 'vhost_scsi', depends_on: ['bdev'] },
      { subsystem: 'vhost_blk', depends_on: ['bdev'] },
    ]);
    assert.deepEqual(await c.call('framework_get_config', { name: 'vhost_blk' }), []);
    await rejects(c, 'framework_get_config', { name: 'nvmf' }, -32602, "Subsystem 'nvmf' not found");
    await rejects(c, 'framework_get_config', {}, -32602, "Invalid parameters: missing required parameter 'name'");
    await rejects(c, 'no_such_method', undefined, -32601, 'Method not found');
  });
});

test('bdev_malloc_create / bdev_get_bdevs / bdev_malloc_delete', async () => {
  await withClient(async (c, h) => {
    assert.equal(await c.call('bdev_malloc_create', { num_blocks: 16, block_size: 512 }), 'Malloc0');
    assert.equal(await c.call('bdev_malloc_create', { num_blocks: 16, block_size: 512 }), 'Malloc1');
    assert.equal(
      await c.call('bdev_malloc_create', { name: 'm0', num_blocks: 2048, block_size: 4096, uuid: U.toUpperCase(), optimal_io_boundary: 8 }),
      'm0',
    );
    assert.deepEqual(await c.call('bdev_get_bdevs', { name: 'm0' }), [
      {
        name: 'm0',
        aliases: [U],
        product_name: 'Malloc disk',
        block_size: 4096,
        num_blocks: 2048,
        uuid: U,
        assigned_rate_limits: { rw_ios_per_sec: 0, rw_mbytes_per_sec: 0, r_mbytes_per_sec: 0, w_mbytes_per_sec: 0 },
        claimed: false,
        zoned: false,
        supported_io_types: {
          read: true, write: true, unmap: true, write_zeroes: true, flush: true, reset: true,
          compare: false, compare_and_write: false, abort: false, nvme_admin: false, nvme_io: false,
        },
        driver_specific: {},
      },
    ]);
    // By UUID too; all in creation order.
    assert.equal(((await c.call('bdev_get_bdevs', { name: U })) as { name: string }[])[0].name, 'm0');
    assert.deepEqual(((await c.call('bdev_get_bdevs')) as { name: string }[]).map((b) => b.name), ['Malloc0', 'Malloc1', 'm0']);

    await rejects(c, 'bdev_malloc_create', { name: 'm0', num_blocks: 16, block_size: 512 }, -17, 'File exists', /'m0' already exists/);
    await rejects(c, 'bdev_malloc_create', { name: 'u', num_blocks: 16, block_size: 512, uuid: U }, -17, 'File exists', /uuid/);
    await rejects(c, 'bdev_malloc_create', { name: 'x', num_blocks: 16, block_size: 520 }, -22, 'Invalid argument', /multiple of 512/);
    await rejects(c, 'bdev_malloc_create', { name: 'x', num_blocks: 0, block_size: 512 }, -22, 'Invalid argument', /num_blocks/);
    await rejects(c, 'bdev_malloc_create', { name: 'x', num_blocks: 8, block_size: 512, uuid: 'zz' }, -22, 'Invalid argument', /not a UUID/);
    await rejects(c, 'bdev_malloc_create', { name: 'x', num_blocks: 8, block_size: 512, md_size: 8 }, -95, 'Operation not supported', /metadata/);
    await rejects(c, 'bdev_malloc_create', { num_blocks: 8 }, -32602, "Invalid parameters: missing required parameter 'block_size'");
    await rejects(c, 'bdev_malloc_create', { num_blocks: -1, block_size: 512 }, -32602, /^Invalid parameters: 'num_blocks': Too small/);
    assert.equal(h.bdevs.size, 3, 'failed creations left nothing behind');

    await rejects(c, 'bdev_get_bdevs', { name: 'nope' }, -19, 'No such device', /'nope' does not exist/);
    assert.equal(await c.call('bdev_malloc_delete', { name: 'Malloc0' }), true);
    await rejects(c, 'bdev_malloc_delete', { name: 'Malloc0' }, -19, 'No such device');
    await rejects(c, 'bdev_malloc_delete', {}, -32602, "Invalid parameters: missing required parameter 'name'");
    // The counter does not reuse a number, like SPDK's.
    assert.equal(await c.call('bdev_malloc_create', { num_blocks: 16, block_size: 512 }), 'Malloc2');
  });
});

test('bdev_get_bdevs with timeout waits for the bdev to appear', async () => {
  await withClient(async (c, h) => {
    const t0 = Date.now();
    const pending = c.call('bdev_get_bdevs', { name: 'late', timeout: 2000 });
    setTimeout(() => void h.server.call('bdev_null_create', { name: 'late', num_blocks: 8, block_size: 512 }), 50);
    const res = (await pending) as { name: string; product_name: string }[];
    assert.equal(res[0].name, 'late');
    assert.equal(res[0].product_name, 'Null disk');
    assert.ok(Date.now() - t0 >= 40);
    await rejects(c, 'bdev_get_bdevs', { name: 'never', timeout: 30 }, -19, 'No such device', /after waiting 30 ms/);
  });
});

test('bdev_null_create / bdev_null_delete; deleting through the wrong module is ENODEV', async () => {
  await withClient(async (c) => {
    assert.equal(await c.call('bdev_null_create', { name: 'n0', num_blocks: 1 << 20, block_size: 4096, physical_block_size: 4096 }), 'n0');
    const info = ((await c.call('bdev_get_bdevs', { name: 'n0' })) as { supported_io_types: Record<string, boolean>; num_blocks: number }[])[0];
    assert.equal(info.num_blocks, 1 << 20);
    assert.equal(info.supported_io_types.flush, false);
    assert.equal(info.supported_io_types.unmap, false);
    assert.equal(info.supported_io_types.write_zeroes, true);
    await rejects(c, 'bdev_null_create', { num_blocks: 1, block_size: 512 }, -32602, "Invalid parameters: missing required parameter 'name'");
    await rejects(c, 'bdev_null_create', { name: 'n1', num_blocks: 1, block_size: 512, dif_type: 1 }, -95, 'Operation not supported');
    await rejects(c, 'bdev_null_create', { name: 'n1', num_blocks: 1, block_size: 512, dif_type: 9 }, -22, 'Invalid argument');
    await rejects(c, 'bdev_malloc_delete', { name: 'n0' }, -19, 'No such device', /module 'null'/);
    assert.equal(await c.call('bdev_null_delete', { name: 'n0' }), true);
    await rejects(c, 'bdev_null_delete', { name: 'n0' }, -19, 'No such device');
  });
});

test('vhost_* methods against the VhostApi; a claimed bdev cannot be deleted (EBUSY)', async () => {
  await withClient(async (c, h) => {
    await c.call('bdev_malloc_create', { name: 'm0', num_blocks: 16, block_size: 512 });
    await c.call('bdev_malloc_create', { name: 'm1', num_blocks: 16, block_size: 512 });
    assert.equal(await c.call('vhost_create_scsi_controller', { ctrlr: 'vhost.0' }), true);
    assert.equal(await c.call('vhost_create_scsi_controller', { ctrlr: 'vhost.1', cpumask: '0x3', delay: false }), true);
    await rejects(c, 'vhost_create_scsi_controller', { ctrlr: 'vhost.0' }, -32602, 'File exists', /already exists/);
    await rejects(c, 'vhost_create_scsi_controller', { ctrlr: 'v2', cpumask: 'zz' }, -32602, 'Invalid argument', /cpumask/);
    await rejects(c, 'vhost_create_scsi_controller', { ctrlr: 'v2', delay: true }, -32602, 'Operation not supported', /delay/);
    await rejects(c, 'vhost_create_scsi_controller', { cpumask: '0x1' }, -32602, "Invalid parameters: missing required parameter 'ctrlr'");

    assert.equal(await c.call('vhost_scsi_controller_add_target', { ctrlr: 'vhost.0', scsi_target_num: 0, bdev_name: 'm0' }), 0);
    assert.equal(await c.call('vhost_scsi_controller_add_target', { ctrlr: 'vhost.0', scsi_target_num: -1, bdev_name: 'm1' }), 1);
    await rejects(c, 'vhost_scsi_controller_add_target', { ctrlr: 'vhost.0', scsi_target_num: 2, bdev_name: 'nope' }, -32602, 'No such device', /'nope'/);
    await rejects(c, 'vhost_scsi_controller_add_target', { ctrlr: 'vhost.1', scsi_target_num: 0, bdev_name: 'm0' }, -32602, 'Device or resource busy', /claimed/);
    await rejects(c, 'vhost_scsi_controller_add_target', { ctrlr: 'vX', scsi_target_num: 0, bdev_name: 'm0' }, -32602, 'No such device', /vX/);
    await rejects(c, 'vhost_scsi_controller_add_target', { ctrlr: 'vhost.0', scsi_target_num: 1.5, bdev_name: 'm0' }, -32602, /^Invalid parameters: 'scsi_target_num'/);

    const claimed = ((await c.call('bdev_get_bdevs', { name: 'm0' })) as { claimed: boolean; claim_type: string }[])[0];
    assert.equal(claimed.claimed, true);
    assert.equal(claimed.claim_type, 'exclusive_write');
    await rejects(c, 'bdev_malloc_delete', { name: 'm0' }, -16, 'Device or resource busy', /claimed by 'vhost-scsi vhost.0'/);

    const list = (await c.call('vhost_get_controllers')) as { ctrlr: string; socket: string; backend_specific: { scsi: unknown[] } }[];
    assert.deepEqual(list.map((x) => x.ctrlr), ['vhost.0', 'vhost.1']);
    assert.equal(list[0].socket, join(h.dir, 'vhost.0'));
    assert.equal(list[0].backend_specific.scsi.length, 2);
    assert.deepEqual(((await c.call('vhost_get_controllers', { name: 'vhost.1' })) as { cpumask: string }[])[0].cpumask, '0x3');
    await rejects(c, 'vhost_get_controllers', { name: 'vX' }, -32603, 'No such device', /vX/);

    await rejects(c, 'vhost_delete_controller', { ctrlr: 'vhost.0' }, -32602, 'Device or resource busy', /targets/);
    assert.equal(await c.call('vhost_scsi_controller_remove_target', { ctrlr: 'vhost.0', scsi_target_num: 0 }), true);
    await rejects(c, 'vhost_scsi_controller_remove_target', { ctrlr: 'vhost.0', scsi_target_num: 0 }, -32602, 'No such device', /no target 0/);
    await rejects(c, 'vhost_scsi_controller_remove_target', { ctrlr: 'vhost.0', scsi_target_num: -1 }, -32602, /Too small/);
    assert.equal(await c.call('bdev_malloc_delete', { name: 'm0' }), true, 'released bdev can be deleted');
    assert.equal(await c.call('vhost_scsi_controller_remove_target', { ctrlr: 'vhost.0', scsi_target_num: 1 }), true);
    assert.equal(await c.call('vhost_delete_controller', { ctrlr: 'vhost.0' }), true);
    await rejects(c, 'vhost_delete_controller', { ctrlr: 'vhost.0' }, -32602, 'No such device');
    assert.deepEqual(((await c.call('vhost_get_controllers')) as { ctrlr: string }[]).map((x) => x.ctrlr), ['vhost.1']);
  });
});
