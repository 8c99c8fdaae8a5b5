// The RBD bdev as a user runs it, against a real single-node Ceph cluster started by the test on
// 127.0.0.1 (ceph-cluster.ts): a registered cluster shared by bdevs, guest I/O through a
// vhost-user-blk controller checked with `rbd export`, flush/discard/write-zeroes, resize both
// ways (bdev_rbd_resize and `rbd resize`) seen by the front-end, the OSD killed and restarted
// under guest writes (none lost), a hung OSD failing requests with IOERR within
// rados_osd_op_timeout, two daemons on one image handing the exclusive lock over, save_config.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDaemon } from './daemon-process.ts';
import { cephAvailable, startCephCluster, type CephCluster } from './ceph-cluster.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk } from '../../src/frontend/qemu-like-blk.ts';
import { RpcError } from '../../src/rpc/rpc-error.ts';

const S_OK = 0;
const S_IOERR = 1;
const MIB = 1 << 20;

const pattern = (len: number, seed: number): Uint8Array => new Uint8Array(len).map((_, i) => (i * 13 + seed * 7 + (i >> 8)) & 0xff);

let ceph: CephCluster;
let dir: string;
// Generous: each front-end takes its rings and data buffers from it, and nothing is given back.
const arena = new GuestMemoryArena([
  { size: 128 << 20, guestPhysAddr: 0 },
  { size: 128 << 20, guestPhysAddr: 0x1_0000_0000 },
]);

before(async () => {
  assert.ok(cephAvailable(), 'ceph-mon, ceph-osd, ceph and rbd are needed (.ci/run installs them: apt-get install ceph-mon ceph-osd ceph-common)');
  dir = mkdtempSync(join(tmpdir(), 'vhostd-rbd-it-'));
  ceph = await startCephCluster();
});

after(async () => {
  arena.close();
  await ceph?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The image's bytes [offset, offset+len), read by `rbd export` (another client). */
async function imageAt(image: string, offset: number, len: number): Promise<Uint8Array> {
  const out = join(dir, `${image}.export`);
  rmSync(out, { force: true });
  await ceph.rbd(['export', `rbd/${image}`, out]);
  const b = readFileSync(out);
  return new Uint8Array(b.buffer, b.byteOffset + offset, len);
}

interface RbdInfo {
  state: string;
  exclusive_lock_owner: boolean | null;
  features: string[];
  failed_requests: number;
  last_error: string | null;
  size_bytes: number;
}

async function rbdInfo(d: Awaited<ReturnType<typeof startDaemon>>, name: string): Promise<{ num_blocks: number; rbd: RbdInfo }> {
  const [b] = (await d.call('bdev_get_bdevs', { name })) as { num_blocks: number; driver_specific: { rbd: RbdInfo } }[];
  return { num_blocks: b.num_blocks, rbd: b.driver_specific.rbd };
}

const errnoIs = (errno: number, re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof RpcError, String(e));
  const text = e.message + JSON.stringify(e.data);
  assert.equal(e.rpcCode, -errno, text);
  assert.match(text, re);
  return true;
};

test('RBD bdev on a registered cluster: guest I/O in the image, flush/discard/zeroes, both resizes, errors, save_config', async (t) => {
  await ceph.rbd(['create', '--size', '32M', 'rbd/disk0']);
  // Two reactors, a queue on each: both pop the image's one completion queue.
  const d = await startDaemon(['-m', '0x3']);
  let saved = '';
  try {
    // Errors say what was wrong and leave nothing behind.
    await assert.rejects(d.call('bdev_rbd_create', { name: 'x', pool_name: 'rbd', rbd_name: 'nope', cluster_name: 'c0' }), errnoIs(2, /cluster 'c0' is not registered/));
    assert.equal(await d.call('bdev_rbd_register_cluster', { name: 'c0', config_param: { mon_host: ceph.monHost } }), 'c0');
    await assert.rejects(d.call('bdev_rbd_register_cluster', { name: 'c0', config_param: { mon_host: ceph.monHost } }), errnoIs(17, /already registered/));
    await assert.rejects(d.call('bdev_rbd_create', { name: 'x', pool_name: 'rbd', rbd_name: 'nope', cluster_name: 'c0' }), errnoIs(2, /image 'nope' does not exist in pool 'rbd'/));
    await assert.rejects(d.call('bdev_rbd_create', { name: 'x', pool_name: 'nopool', rbd_name: 'disk0', cluster_name: 'c0' }), errnoIs(2, /pool 'nopool' does not exist/));
    await assert.rejects(d.call('bdev_rbd_register_cluster', { name: 'bad', config_param: { no_such_option: '1' } }), errnoIs(2, /Ceph option no_such_option/));
    const info = (await d.call('bdev_rbd_get_clusters_info', { name: 'c0' })) as { cluster_name: string; fsid: string; bdevs: number };
    assert.equal(info.cluster_name, 'c0');
    assert.match(info.fsid, /^[0-9a-f-]{36}$/);
    assert.equal(await d.call('bdev_rbd_create', { pool_name: 'rbd', rbd_name: 'disk0', cluster_name: 'c0', block_size: 512 }), 'Ceph0');
    assert.equal(((await d.call('bdev_get_bdevs', { name: 'x' }).catch(() => [])) as unknown[]).length, 0);
    await assert.rejects(d.call('bdev_rbd_unregister_cluster', { name: 'c0' }), errnoIs(16, /used by 1 RBD bdev/));
    await d.call('vhost_create_blk_controller', { ctrlr: 'r', dev_name: 'Ceph0' });
    const c = await connectLikeQemuBlk({ socketPath: d.socket('r'), arena, numQueues: 2, queueSize: 128, driver: { maxDataBytes: 1 << 20, timeoutMs: 60_000 } });
    try {
      assert.equal(c.config.capacity, (32 * MIB) / 512);
      const data = pattern(65536, 1);
      const ws = [];
      for (let k = 0; k < 32; k++) ws.push(c.driver.write(k * 128, data, { qi: k % 2 }));
      for (const w of await Promise.all(ws)) assert.equal(w.status, S_OK);
      // One 1 MiB write: librbd splits it over objects.
      const big = pattern(MIB, 9);
      assert.equal((await c.driver.write(8192, big)).status, S_OK);
      assert.equal((await c.driver.flush()).status, S_OK);
      assert.deepEqual(await imageAt('disk0', 7 * 65536, 65536), data);
      assert.deepEqual(await imageAt('disk0', 8192 * 512, MIB), big);
      assert.deepEqual((await c.driver.read(3 * 128, 128, { qi: 1 })).data, data);
      assert.deepEqual((await c.driver.read(8192, 2048)).data, big);
      assert.equal((await c.driver.writeZeroes([{ sector: 128, numSectors: 128 }], false)).status, S_OK);
      assert.deepEqual((await c.driver.read(128, 128)).data, new Uint8Array(65536));
      assert.equal((await c.driver.discard([{ sector: 0, numSectors: 8192 }])).status, S_OK);
      assert.equal((await c.driver.read((32 * MIB) / 512, 8)).status, S_IOERR, 'past the end');
      let r = await rbdInfo(d, 'Ceph0');
      assert.equal(r.rbd.state, 'open');
      assert.equal(r.rbd.exclusive_lock_owner, true, 'the writer holds the lock');
      t.diagnostic(`two reactors on one image: ${JSON.stringify(r.rbd)}`);
      assert.ok(r.rbd.features.includes('exclusive-lock'), r.rbd.features.join());

      // Grown by RPC: the front-end gets CONFIG_CHANGE with the new capacity.
      let changed = c.waitForConfigChange(10_000);
      await assert.rejects(d.call('bdev_rbd_resize', { name: 'Ceph0', new_size: 16 }), errnoIs(22, /not larger/));
      await d.call('bdev_rbd_resize', { name: 'Ceph0', new_size: 48 });
      await changed;
      assert.equal(c.config.capacity, (48 * MIB) / 512);
      assert.equal((await c.driver.write((40 * MIB) / 512, data)).status, S_OK);
      // Grown by another client (`rbd resize`): seen within seconds.
      changed = c.waitForConfigChange(15_000);
      await ceph.rbd(['resize', '--size', '64M', 'rbd/disk0']);
      await changed;
      assert.equal(c.config.capacity, (64 * MIB) / 512);
      r = await rbdInfo(d, 'Ceph0');
      assert.equal(r.rbd.size_bytes, 64 * MIB);
      assert.equal((await c.driver.read((60 * MIB) / 512, 8)).status, S_OK);
      assert.deepEqual(await imageAt('disk0', 40 * MIB, 65536), data);
      saved = JSON.stringify(await d.call('save_config'));
    } finally {
      await c.stop();
      c.close();
    }
  } finally {
    assert.equal(await d.stop(), 0, d.stderr.join(''));
  }
  // The saved configuration registers the cluster and attaches the image again.
  const cfg = JSON.parse(saved) as { subsystems: { subsystem: string; config: { method: string; params: Record<string, unknown> }[] }[] };
  const calls = cfg.subsystems.find((s) => s.subsystem === 'bdev')?.config ?? [];
  const methods = calls.map((x) => x.method);
  assert.ok(methods.indexOf('bdev_rbd_register_cluster') >= 0 && methods.indexOf('bdev_rbd_register_cluster') < methods.indexOf('bdev_rbd_create'), methods.join());
  const cfgFile = join(dir, 'saved.json');
  writeFileSync(cfgFile, saved);
  const d2 = await startDaemon(['-c', cfgFile]);
  try {
    await d2.call('framework_wait_init');
    const c2 = await connectLikeQemuBlk({ socketPath: d2.socket('r'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 65536, timeoutMs: 30_000 } });
    try {
      assert.equal(c2.config.capacity, (64 * MIB) / 512);
      assert.deepEqual((await c2.driver.read(40 * 2048, 128)).data, pattern(65536, 1));
    } finally {
      await c2.stop();
      c2.close();
    }
    await d2.call('vhost_delete_controller', { ctrlr: 'r' });
    await d2.call('bdev_rbd_delete', { name: 'Ceph0' });
    // The image is closed: the cluster can go, and the image is free for others.
    await d2.call('bdev_rbd_unregister_cluster', { name: 'c0' });
    assert.deepEqual(await d2.call('bdev_rbd_get_clusters_info'), []);
  } finally {
    assert.equal(await d2.stop(), 0, d2.stderr.join(''));
  }
  await ceph.rbd(['rm', 'rbd/disk0']);
});

test('RBD bdev: the OSD killed (SIGKILL) under 48 guest writes and restarted: every write completes and is in the image', async () => {
  await ceph.rbd(['create', '--size', '16M', 'rbd/crash']);
  const d = await startDaemon();
  try {
    // A connection of the bdev's own (no cluster_name): user_id and config.
    await d.call('bdev_rbd_create', { name: 'r1', pool_name: 'rbd', rbd_name: 'crash', user_id: 'admin', config: { mon_host: ceph.monHost } });
    await d.call('vhost_create_blk_controller', { ctrlr: 'k', dev_name: 'r1' });
    const c = await connectLikeQemuBlk({ socketPath: d.socket('k'), arena, numQueues: 2, queueSize: 128, driver: { maxDataBytes: 65536, timeoutMs: 120_000 } });
    try {
      assert.equal((await c.driver.write(0, pattern(4096, 3))).status, S_OK);
      const writes: Promise<{ status: number }>[] = [];
      const bufs: Uint8Array[] = [];
      for (let k = 0; k < 48; k++) {
        bufs.push(pattern(16384, 50 + k));
        writes.push(c.driver.write(k * 32, bufs[k], { qi: k % 2 }));
      }
      await ceph.stopOsd('SIGKILL');
      let lateDone = 0;
      for (let k = 48; k < 64; k++) {
        bufs.push(pattern(16384, 50 + k));
        writes.push(c.driver.write(k * 32, bufs[k], { qi: k % 2 }).then((r) => (lateDone++, r)));
      }
      await sleep(1500);
      assert.equal(lateDone, 0, 'writes wait while the OSD is away');
      await ceph.startOsd();
      for (const w of await Promise.all(writes)) assert.equal(w.status, S_OK);
      assert.equal((await c.driver.flush()).status, S_OK);
      const image = await imageAt('crash', 0, 64 * 16384);
      for (let k = 0; k < 64; k++) assert.deepEqual(image.subarray(k * 16384, (k + 1) * 16384), bufs[k], `write ${k} in the image`);
      assert.equal((await rbdInfo(d, 'r1')).rbd.failed_requests, 0);
    } finally {
      await c.stop();
      c.close();
    }
  } finally {
    assert.equal(await d.stop(), 0, d.stderr.join(''));
  }
  await ceph.rbd(['rm', 'rbd/crash']);
});

test('RBD bdev: a hung OSD fails guest requests with IOERR after rados_osd_op_timeout, and I/O resumes when it answers again', async () => {
  await ceph.rbd(['create', '--size', '16M', 'rbd/hang']);
  const d = await startDaemon();
  try {
    await d.call('bdev_rbd_create', { name: 'h', pool_name: 'rbd', rbd_name: 'hang', config: { mon_host: ceph.monHost, rados_osd_op_timeout: '3' } });
    await d.call('vhost_create_blk_controller', { ctrlr: 'h', dev_name: 'h' });
    const c = await connectLikeQemuBlk({ socketPath: d.socket('h'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 65536, timeoutMs: 60_000 } });
    try {
      assert.equal((await c.driver.write(0, pattern(4096, 1))).status, S_OK);
      // librbd's writearound cache acknowledged the write early: the flush puts it on the OSD (and
      // in the object map, else a read of an object not yet there is answered with zeroes locally).
      assert.equal((await c.driver.flush()).status, S_OK);
      await ceph.pauseOsd(true);
      const t0 = Date.now();
      let r: { status: number };
      try {
        r = await c.driver.read(0, 8);
      } finally {
        await ceph.pauseOsd(false);
      }
      const ms = Date.now() - t0;
      assert.equal(r.status, S_IOERR);
      assert.ok(ms >= 2_500 && ms < 30_000, `failed after ${ms} ms`);
      const info = await rbdInfo(d, 'h');
      assert.equal(info.rbd.last_error, 'ETIMEDOUT');
      assert.ok(info.rbd.failed_requests >= 1);
      // The OSD answers again: so does the disk.
      let ok = false;
      for (let i = 0; i < 20 && !ok; i++) {
        const rr = await c.driver.read(0, 8);
        ok = rr.status === S_OK && rr.data[0] === pattern(4096, 1)[0];
        if (!ok) await sleep(500);
      }
      assert.ok(ok, 'reads work again after the OSD resumed');
    } finally {
      await c.stop();
      c.close();
    }
  } finally {
    assert.equal(await d.stop(), 0, d.stderr.join(''));
  }
  await ceph.rbd(['rm', 'rbd/hang']);
});

test('RBD exclusive lock: two daemons on one image (a migration) hand the lock over at each side\'s writes, no write lost; a broken lock fences the old owner', async () => {
  await ceph.rbd(['create', '--size', '16M', 'rbd/shared']);
  const src = await startDaemon();
  const dst = await startDaemon();
  try {
    for (const d of [src, dst]) {
      await d.call('bdev_rbd_register_cluster', { name: 'c', config_param: { mon_host: ceph.monHost } });
      await d.call('bdev_rbd_create', { name: 'm', pool_name: 'rbd', rbd_name: 'shared', cluster_name: 'c' });
      await d.call('vhost_create_blk_controller', { ctrlr: 'm', dev_name: 'm' });
    }
    const a = await connectLikeQemuBlk({ socketPath: src.socket('m'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 65536, timeoutMs: 60_000 } });
    const b = await connectLikeQemuBlk({ socketPath: dst.socket('m'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 65536, timeoutMs: 60_000 } });
    try {
      // The source runs the guest: it writes and holds the lock; the destination only has it open.
      for (let k = 0; k < 8; k++) assert.equal((await a.driver.write(k * 16, pattern(8192, k))).status, S_OK);
      assert.equal((await a.driver.flush()).status, S_OK);
      assert.equal((await rbdInfo(src, 'm')).rbd.exclusive_lock_owner, true);
      assert.equal((await rbdInfo(dst, 'm')).rbd.exclusive_lock_owner, false);
      // Switchover: the destination reads what the source wrote, then writes: the lock moves.
      for (let k = 0; k < 8; k++) assert.deepEqual((await b.driver.read(k * 16, 16)).data, pattern(8192, k));
      for (let k = 8; k < 16; k++) assert.equal((await b.driver.write(k * 16, pattern(8192, k))).status, S_OK);
      assert.equal((await rbdInfo(dst, 'm')).rbd.exclusive_lock_owner, true);
      assert.equal((await rbdInfo(src, 'm')).rbd.exclusive_lock_owner, false);
      // A migration that fails back: the source writes again and gets the lock back.
      assert.equal((await a.driver.write(16 * 16, pattern(8192, 16))).status, S_OK);
      assert.equal((await rbdInfo(src, 'm')).rbd.exclusive_lock_owner, true);
      for (const d of [src, dst]) {
        const i = (await rbdInfo(d, 'm')).rbd;
        // Handovers are not failures: nobody was blocklisted so far.
        assert.equal(i.state, 'open');
        assert.equal(i.failed_requests, 0);
      }
      const image = await imageAt('shared', 0, 17 * 8192);
      for (let k = 0; k < 17; k++) assert.deepEqual(image.subarray(k * 8192, (k + 1) * 8192), pattern(8192, k), `write ${k}`);
      // Fencing: an operator breaks the source's lock (a source believed dead). Ceph blocklists it:
      // its writes fail with IOERR and its state says why; the destination takes over.
      const [lock] = JSON.parse(await ceph.rbd(['lock', 'ls', '--format', 'json', 'rbd/shared'])) as { id: string; locker: string }[];
      assert.ok(lock, 'the exclusive lock is listed');
      await ceph.rbd(['lock', 'rm', 'rbd/shared', lock.id, lock.locker]);
      assert.equal((await a.driver.write(17 * 16, pattern(8192, 99))).status, S_IOERR);
      const fenced = (await rbdInfo(src, 'm')).rbd;
      assert.equal(fenced.state, 'blocklisted');
      assert.equal(fenced.last_error, 'ESHUTDOWN');
      assert.equal((await b.driver.write(17 * 16, pattern(8192, 17))).status, S_OK);
      assert.deepEqual(await imageAt('shared', 17 * 8192, 8192), pattern(8192, 17));
    } finally {
      for (const x of [a, b]) {
        await x.stop();
        x.close();
      }
    }
  } finally {
    assert.equal(await src.stop(), 0, src.stderr.join(''));
    assert.equal(await dst.stop(), 0, dst.stderr.join(''));
  }
  await ceph.rbd(['rm', 'rbd/shared']);
});
