import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from './rpc-harness.ts';
import { ConfigFileError, loadConfig, parseConfig, replayConfig } from '../../../src/rpc/config-file.ts';
import { BdevRegistry } from '../../../src/bdev/bdev-registry.ts';
import { createMethodTable } from '../../../src/rpc/vhostd-methods.ts';

const U0 = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';

test('save_config, load into a fresh daemon: same bdevs (names, UUIDs, geometry) and controllers', async () => {
  const a = await startServer();
  const b = await startServer();
  try {
    await a.server.call('bdev_malloc_create', { name: 'm0', num_blocks: 256, block_size: 4096, uuid: U0, optimal_io_boundary: 16 });
    await a.server.call('bdev_malloc_create', { num_blocks: 64, block_size: 512 });
    await a.server.call('bdev_null_create', { name: 'n0', num_blocks: 1000, block_size: 512 });
    await a.server.call('vhost_create_scsi_controller', { ctrlr: 'vhost.0', cpumask: '0x1' });
    await a.server.call('vhost_scsi_controller_add_target', { ctrlr: 'vhost.0', scsi_target_num: 3, bdev_name: 'n0' });

    const saved = (await a.server.call('save_config')) as { subsystems: { subsystem: string; config: { method: string; params?: Record<string, unknown> }[] }[] };
    assert.deepEqual(saved.subsystems.map((s) => s.subsystem), ['bdev', 'vhost_scsi', 'vhost_blk']);
    assert.deepEqual(saved.subsystems[0].config[0], {
      method: 'bdev_malloc_create',
      params: { name: 'm0', num_blocks: 256, block_size: 4096, physical_block_size: 4096, uuid: U0, optimal_io_boundary: 16 },
    });
    assert.deepEqual(saved.subsystems[0].config.map((c) => c.method), ['bdev_malloc_create', 'bdev_malloc_create', 'bdev_null_create', 'bdev_wait_for_examine']);
    assert.deepEqual(saved.subsystems[1].config, [
      { method: 'vhost_create_scsi_controller', params: { ctrlr: 'vhost.0', cpumask: '0x1' } },
      { method: 'vhost_scsi_controller_add_target', params: { ctrlr: 'vhost.0', scsi_target_num: 3, bdev_name: 'n0' } },
    ]);
    assert.deepEqual(saved.subsystems[2].config, []);
    // framework_get_config gives the same per subsystem.
    assert.deepEqual(await a.server.call('framework_get_config', { name: 'bdev' }), saved.subsystems[0].config);

    // Write it the way `vhostctl save_config > file` does, subsystems reversed to prove ordering.
    const path = join(b.dir, 'saved.json');
    writeFileSync(path, JSON.stringify({ subsystems: [...saved.subsystems].reverse() }, null, 2));
    assert.equal(await loadConfig(path, b.server), 6);

    const before = (await a.server.call('bdev_get_bdevs')) as unknown[];
    const after = (await b.server.call('bdev_get_bdevs')) as unknown[];
    assert.deepEqual(after, before);
    assert.deepEqual(b.vhost.configCalls(), a.vhost.configCalls());
    assert.deepEqual(await b.server.call('save_config'), saved);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('a failing call is reported with file, subsystem, index, method and error; earlier calls stay', async () => {
  const h = await startServer();
  try {
    const path = join(h.dir, 'bad.json');
    writeFileSync(
      path,
      JSON.stringify({
        subsystems: [
          { subsystem: 'vhost_scsi', config: [{ method: 'vhost_create_scsi_controller', params: { ctrlr: 'v0' } }] },
          {
            subsystem: 'bdev',
            config: [
              { method: 'bdev_malloc_create', params: { name: 'm0', num_blocks: 8, block_size: 512 } },
              { method: 'bdev_malloc_create', params: { name: 'm0', num_blocks: 8, block_size: 512 } },
            ],
          },
        ],
      }),
    );
    await assert.rejects(loadConfig(path, h.server), (e: unknown) => {
      assert.ok(e instanceof ConfigFileError);
      assert.equal(e.code, 'CONFIG_CALL_FAILED');
      assert.equal(e.file, path);
      assert.equal(e.subsystem, 'bdev');
      assert.equal(e.index, 1);
      assert.equal(e.method, 'bdev_malloc_create');
      assert.equal(e.message, `${path}: subsystem 'bdev' config[1] bdev_malloc_create failed: -17 File exists (bdev name 'm0' already exists)`);
      return true;
    });
    assert.ok(h.bdevs.get('m0'), 'the call before the failure took effect');
    assert.equal(h.vhost.ctrlrs.size, 0, 'vhost_scsi (after bdev) never ran');

    // Unknown method, in-process through a bare MethodTable.
    const table = createMethodTable({ bdevs: new BdevRegistry() });
    await assert.rejects(
      replayConfig({ subsystems: [{ subsystem: 'accel', config: [{ method: 'accel_set_options', params: {} }] }] }, table, 'x.json'),
      (e: unknown) => e instanceof ConfigFileError && e.message === "x.json: subsystem 'accel' config[0] accel_set_options failed: -32601 Method not found (no method 'accel_set_options' (rpc_get_methods lists them))",
    );
    // Empty and null configs replay nothing.
    assert.equal(await replayConfig({ subsystems: [{ subsystem: 'scsi', config: null }, { subsystem: 'bdev', config: [] }] }, table), 0);
  } finally {
    await h.stop();
  }
});

test('unreadable or malformed files are typed errors', async () => {
  await assert.rejects(loadConfig('/nonexistent/vhostd.json', async () => null), (e: unknown) => {
    return e instanceof ConfigFileError && e.code === 'CONFIG_READ_FAILED' && e.message === 'cannot read config /nonexistent/vhostd.json: ENOENT';
  });
  assert.throws(() => parseConfig('{"subsystems": [', 'f.json'), (e: unknown) => e instanceof ConfigFileError && e.code === 'CONFIG_INVALID' && /^f\.json: not valid JSON/.test(e.message));
  assert.throws(
    () => parseConfig('{"subsystems": [{"subsystem": "bdev", "config": [{"method": 1}]}]}', 'f.json'),
    (e: unknown) => e instanceof ConfigFileError && e.message === "f.json: not an SPDK JSON config: 'subsystems.0.config.0.method': expected string, received number",
  );
  assert.throws(() => parseConfig('{"subsytems": []}', 'f.json'), (e: unknown) => e instanceof ConfigFileError && /unknown parameter 'subsytems'/.test(e.message));
  // A plain function works as the caller too (what vhostd passes).
  const seen: string[] = [];
  const n = await replayConfig(parseConfig('{"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_wait_for_examine"}]}]}'), async (m) => seen.push(m));
  assert.equal(n, 1);
  assert.deepEqual(seen, ['bdev_wait_for_examine']);
});
