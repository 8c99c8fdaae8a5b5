// Logical volumes through a real daemon (2 reactors): an lvol store on a uring file bdev, a thin
// lvol on a 2-queue vhost-user-blk controller, a snapshot taken while writes are in flight, a clone
// on a second controller, the RPCs' results as SPDK gives them, and the volumes coming back after
// a clean restart and after a kill -9.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk, type QemuBlkConnection } from '../../src/frontend/qemu-like-blk.ts';

const S_OK = 0;
const MiB = 1024 * 1024;
const SECTORS_PER_MIB = 2048;
const dataDir = mkdtempSync(join(tmpdir(), 'vhostd-lvol-'));
const file = join(dataDir, 'pool.img');
let d: Daemon;

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 13 + seed * 101 + (i >> 11)) & 0xff;
  return b;
}

async function attach(daemon: Daemon, ctrlr: string, numQueues = 1): Promise<{ c: QemuBlkConnection; close(): Promise<void> }> {
  const arena = new GuestMemoryArena();
  const c = await connectLikeQemuBlk({
    socketPath: daemon.socket(ctrlr), arena, numQueues, queueSize: 64, driver: { maxDataBytes: 256 * 1024, timeoutMs: 10_000 },
  });
  return {
    c,
    async close() {
      await c.stop().catch(() => {});
      c.close();
      arena.close();
    },
  };
}

/** Rejects with `re` in the error's message or its detail (data.detail: our own words beside SPDK's strerror). */
async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: any) => re.test(`${e.message} ${e.data?.detail ?? ''}`));
}

async function start(extra: string[] = []): Promise<Daemon> {
  const daemon = await startDaemon(['-m', '0x3', ...extra]);
  await daemon.call('framework_wait_init', {});
  return daemon;
}

before(async () => {
  writeFileSync(file, '');
  truncateSync(file, 256 * MiB);
  d = await start();
});

after(async () => {
  if (d) await d.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('lvol store, thin lvol on blk, snapshot under I/O, clone on a second controller, restart and kill -9', async () => {
  await d.call('bdev_uring_create', { name: 'pool', filename: file, block_size: 512 });
  const lvsUuid = await d.call('bdev_lvol_create_lvstore', { bdev_name: 'pool', lvs_name: 'lvs0', cluster_sz: MiB });
  const stores = (await d.call('bdev_lvol_get_lvstores', {})) as Array<Record<string, unknown>>;
  assert.equal(stores.length, 1);
  assert.deepEqual(Object.keys(stores[0]).sort(), ['base_bdev', 'block_size', 'cluster_size', 'free_clusters', 'name', 'total_data_clusters', 'uuid']);
  assert.equal(stores[0].uuid, lvsUuid);
  assert.equal(stores[0].cluster_size, MiB);
  const free0 = stores[0].free_clusters as number;
  await rejectsWith(d.call('bdev_lvol_create_lvstore', { bdev_name: 'pool', lvs_name: 'again' }), /claimed|busy/i);

  const volName = (await d.call('bdev_lvol_create', { lvs_name: 'lvs0', lvol_name: 'vm1', size_in_mib: 64, thin_provision: true })) as string;
  const [info] = (await d.call('bdev_get_bdevs', { name: 'lvs0/vm1' })) as Array<Record<string, any>>;
  assert.equal(info.name, volName);
  assert.deepEqual(info.aliases, ['lvs0/vm1']);
  assert.equal(info.product_name, 'Logical Volume');
  assert.equal(info.num_blocks, 64 * SECTORS_PER_MIB);
  assert.equal(info.driver_specific.lvol.thin_provision, true);
  assert.equal(info.driver_specific.lvol.base_bdev, 'pool');

  await d.call('vhost_create_blk_controller', { ctrlr: 'vm1', dev_name: 'lvs0/vm1' });
  await rejectsWith(d.call('bdev_lvol_delete', { name: 'lvs0/vm1' }), /in use|busy/i);
  const a = await attach(d, 'vm1', 2);
  // Generation 1 on both queues, crossing cluster boundaries.
  const gen1: Array<[number, Uint8Array]> = [];
  for (let i = 0; i < 16; i++) gen1.push([i * SECTORS_PER_MIB * 3 + SECTORS_PER_MIB - 16, pattern(64 * 1024, i)]);
  await Promise.all(gen1.map(([s, buf], i) => a.c.driver.write(s, buf, { qi: i % 2 }).then((r) => assert.equal(r.status, S_OK))));
  const afterWrite = ((await d.call('bdev_lvol_get_lvstores', { lvs_name: 'lvs0' })) as Array<Record<string, number>>)[0].free_clusters;
  assert.equal(free0 - afterWrite, 32, 'each write allocated the two clusters it spans');

  // Snapshot while generation 2 writes are in flight: each lands wholly before or after it.
  const gen2 = gen1.map(([s], i): [number, Uint8Array] => [s, pattern(64 * 1024, 100 + i)]);
  const writes = gen2.map(([s, buf], i) => a.c.driver.write(s, buf, { qi: i % 2 }));
  const snapName = (await d.call('bdev_lvol_snapshot', { lvol_name: 'lvs0/vm1', snapshot_name: 'snap1' })) as string;
  for (const w of await Promise.all(writes)) assert.equal(w.status, S_OK);
  const clone = (await d.call('bdev_lvol_clone', { snapshot_name: 'lvs0/snap1', clone_name: 'vm2' })) as string;
  await d.call('vhost_create_blk_controller', { ctrlr: 'vm2', dev_name: clone });
  const b = await attach(d, 'vm2');
  for (let i = 0; i < 16; i++) {
    const [s] = gen1[i];
    const got = (await b.c.driver.read(s, 128)).data;
    const old = Buffer.compare(got, gen1[i][1]) === 0;
    const neu = Buffer.compare(got, gen2[i][1]) === 0;
    assert.ok(old || neu, `write ${i} torn in the snapshot`);
    assert.deepEqual((await a.c.driver.read(s, 128)).data, gen2[i][1], 'the lvol has the newest data');
  }
  // The clone diverges without touching the lvol or the snapshot.
  assert.equal((await b.c.driver.write(0, pattern(4096, 7))).status, S_OK);
  assert.deepEqual((await b.c.driver.read(0, 8)).data, pattern(4096, 7));
  assert.notDeepEqual((await a.c.driver.read(0, 8)).data, pattern(4096, 7));

  const lvols = (await d.call('bdev_lvol_get_lvols', { lvs_name: 'lvs0' })) as Array<Record<string, unknown>>;
  const byName = new Map(lvols.map((l) => [l.name, l]));
  assert.equal(byName.get('snap1')?.is_snapshot, true);
  assert.equal(byName.get('vm2')?.is_clone, true);
  assert.equal(byName.get('vm1')?.is_clone, true);
  assert.equal(byName.get('vm1')?.alias, 'lvs0/vm1');
  const [snapInfo] = (await d.call('bdev_get_bdevs', { name: snapName })) as Array<Record<string, any>>;
  assert.deepEqual([...snapInfo.driver_specific.lvol.clones].sort(), ['vm1', 'vm2']);
  await rejectsWith(d.call('bdev_lvol_delete', { name: 'lvs0/snap1' }), /clones/);
  const clone2 = (await d.call('bdev_lvol_clone', { snapshot_name: 'lvs0/snap1', clone_name: 'scratch' })) as string;
  await d.call('bdev_lvol_inflate', { name: clone2 });
  const ops = (await d.call('vhostd_get_operations', {})) as Array<Record<string, unknown>>;
  const inflate = ops.find((o) => o.operation === 'inflate');
  assert.equal(inflate?.state, 'done');
  assert.equal(inflate?.target, 'lvs0/scratch');
  assert.equal(inflate?.percent, 100);

  // Clean restart from saved config: the store is examined, controllers come back on the lvols.
  const config = join(dataDir, 'config.json');
  writeFileSync(config, JSON.stringify(await d.call('save_config', {})));
  await a.close();
  await b.close();
  assert.equal(await d.stop(), 0, d.stderr.join(''));
  d = await start(['-c', config]);
  const c1 = await attach(d, 'vm1', 2);
  const c2 = await attach(d, 'vm2');
  for (let i = 0; i < 16; i++) assert.deepEqual((await c1.c.driver.read(gen1[i][0], 128)).data, gen2[i][1]);
  assert.deepEqual((await c2.c.driver.read(0, 8)).data, pattern(4096, 7));
  assert.ok(!d.stderr.join('').includes('not unloaded cleanly'), 'clean shutdown: no replay');
  // New data, then kill -9: recovery replays metadata, the data written (and acknowledged) is there.
  assert.equal((await c1.c.driver.write(200 * SECTORS_PER_MIB / 4, pattern(8192, 55))).status, S_OK);
  assert.equal((await c1.c.driver.flush()).status, S_OK);
  await c1.close();
  await c2.close();
  d.proc.kill('SIGKILL');
  await d.stop();
  d = await start(['-c', config]);
  assert.match(d.stderr.join(''), /not unloaded cleanly: metadata replayed/, 'kill -9 left the store dirty: it was recovered');
  const e1 = await attach(d, 'vm1', 2);
  assert.deepEqual((await e1.c.driver.read(200 * SECTORS_PER_MIB / 4, 16)).data, pattern(8192, 55));
  assert.deepEqual((await e1.c.driver.read(gen1[3][0], 128)).data, gen2[3][1]);
  await e1.close();
  await d.call('vhost_delete_controller', { ctrlr: 'vm2' });
  await d.call('bdev_lvol_delete', { name: 'lvs0/vm2' });
  const left = ((await d.call('bdev_lvol_get_lvols', {})) as Array<Record<string, unknown>>).map((l) => l.name).sort();
  assert.deepEqual(left, ['scratch', 'snap1', 'vm1']);
});

test('vhostctl draws the progress of an inflate (vhostd_get_operations) and prints the result', async () => {
  const { main } = await import('../../src/cli/vhostctl.ts');
  const { PassThrough } = await import('node:stream');
  await d.call('bdev_malloc_create', { name: 'm-inflate', num_blocks: 256 * SECTORS_PER_MIB, block_size: 512 });
  await d.call('bdev_lvol_create_lvstore', { bdev_name: 'm-inflate', lvs_name: 'lvs-i', cluster_sz: MiB, clear_method: 'none' });
  await d.call('bdev_lvol_create', { lvs_name: 'lvs-i', lvol_name: 'base', size_in_mib: 200, thin_provision: true });
  await d.call('bdev_lvol_snapshot', { lvol_name: 'lvs-i/base', snapshot_name: 'gold' });
  await d.call('bdev_lvol_clone', { snapshot_name: 'lvs-i/gold', clone_name: 'work' });
  const bar: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (c: Buffer) => bar.push(c.toString()));
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['-s', d.rpcPath, '--progress', 'bdev_lvol_inflate', '--name', 'lvs-i/work'], {
    out: (t) => out.push(t), err: (t) => err.push(t), errStream: stream,
  });
  assert.equal(code, 0, err.join(''));
  assert.equal(out.join('').trim(), 'true');
  const drawn = bar.join('');
  assert.match(drawn, /inflate lvs-i\/work \[.*\] 100% \| 200\/200 clusters/, drawn);
  const lvol = ((await d.call('bdev_lvol_get_lvols', { lvs_name: 'lvs-i' })) as Array<Record<string, unknown>>).find((l) => l.name === 'work');
  assert.equal(lvol?.is_clone, false);
  assert.equal(lvol?.is_thin_provisioned, false);
});
