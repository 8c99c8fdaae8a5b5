// vhost-user-blk through a real daemon with the TypeScript front-end: config space, every request
// type, bad segments, out-of-range and misaligned sectors, read-only, resize, hostile packed rings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk, type QemuBlkConnection } from '../../src/frontend/qemu-like-blk.ts';
import type { DriverPackedQueue } from '../../src/frontend/driver-packed-queue.ts';
import { availFlagsFor } from '../../src/frontend/packed-ring-memory.ts';

const S_OK = 0;
const S_IOERR = 1;
const S_UNSUPP = 2;
const MIB = 2048; // sectors
let d: Daemon;

before(async () => {
  d = await startDaemon();
  await d.call('bdev_malloc_create', { name: 'm0', num_blocks: 16 * MIB, block_size: 512 });
  await d.call('bdev_malloc_create', { name: 'm4k', num_blocks: 4096, block_size: 4096 });
  await d.call('bdev_malloc_create', { name: 'ro', num_blocks: 4 * MIB, block_size: 512 });
  await d.call('bdev_null_create', { name: 'n0', num_blocks: 8 * MIB, block_size: 512 });
  await d.call('bdev_malloc_create', { name: 'pk', num_blocks: 4 * MIB, block_size: 512 });
  await d.call('vhost_create_blk_controller', { ctrlr: 'b0', dev_name: 'm0' });
  await d.call('vhost_create_blk_controller', { ctrlr: 'b4k', dev_name: 'm4k' });
  await d.call('vhost_create_blk_controller', { ctrlr: 'bro', dev_name: 'ro', readonly: true });
  await d.call('vhost_create_blk_controller', { ctrlr: 'bn', dev_name: 'n0' });
  await d.call('vhost_create_blk_controller', { ctrlr: 'bpk', dev_name: 'pk', packed_ring: true });
});

after(async () => {
  assert.equal(await d.stop(), 0, d.stderr.join(''));
});

async function attach(ctrlr: string, opts: { numQueues?: number; packed?: boolean } = {}): Promise<{ c: QemuBlkConnection; close(): Promise<void> }> {
  const arena = new GuestMemoryArena();
  const c = await connectLikeQemuBlk({
    socketPath: d.socket(ctrlr),
    arena,
    numQueues: opts.numQueues ?? 1,
    queueSize: 64,
    ...(opts.packed ? { packed: true } : {}),
    driver: { maxDataBytes: 65536, timeoutMs: 5000 },
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

test('config space: capacity, block size, segment limits, discard and write-zeroes limits, queues', async () => {
  const a = await attach('b0');
  try {
    const cfg = a.c.config;
    assert.equal(cfg.capacity, 16 * MIB);
    assert.equal(cfg.blkSize, 512);
    assert.equal(cfg.segMax, 126);
    assert.equal(cfg.sizeMax, 131072);
    assert.equal(cfg.writeback, 0);
    assert.ok(cfg.numQueues >= 2);
    assert.equal(cfg.discard?.maxSectors, 0x3fffff);
    assert.equal(cfg.discard?.maxSeg, 16);
    assert.ok(cfg.writeZeroes !== null);
    assert.equal(cfg.discard?.sectorAlignment, 1);
  } finally {
    await a.close();
  }
  const b = await attach('b4k');
  try {
    assert.equal(b.c.config.blkSize, 4096);
    assert.equal(b.c.config.capacity, 4096 * 8);
  } finally {
    await b.close();
  }
});

test('IN/OUT on two queues, FLUSH, GET_ID, DISCARD and WRITE_ZEROES; unknown types are UNSUPP', async () => {
  const a = await attach('b0', { numQueues: 2 });
  const drv = a.c.driver;
  try {
    const data = new Uint8Array(8192).map((_, i) => (i * 13 + 1) & 0xff);
    for (const qi of [0, 1]) {
      assert.equal((await drv.write(100 + qi * 100, data, { qi })).status, S_OK);
      const r = await drv.read(100 + qi * 100, 16, { qi });
      assert.equal(r.status, S_OK);
      assert.deepEqual(r.data, data);
      assert.equal(r.usedLen, 8192 + 1);
    }
    assert.equal((await drv.flush()).status, S_OK);
    const id = await drv.getId();
    assert.equal(id.status, S_OK);
    assert.equal(new TextDecoder().decode(id.data.subarray(0, 2)), 'm0');
    assert.equal(id.data[2], 0);
    assert.equal((await drv.discard([{ sector: 100, numSectors: 8 }])).status, S_OK);
    assert.deepEqual((await drv.read(100, 8)).data, new Uint8Array(4096));
    assert.deepEqual((await drv.read(108, 8)).data, data.subarray(4096));
    assert.equal((await drv.writeZeroes([{ sector: 200, numSectors: 4 }, { sector: 208, numSectors: 4 }], false)).status, S_OK);
    const z = (await drv.read(200, 16)).data;
    assert.deepEqual(z.subarray(0, 2048), new Uint8Array(2048));
    assert.deepEqual(z.subarray(2048, 4096), data.subarray(2048, 4096));
    assert.deepEqual(z.subarray(4096, 6144), new Uint8Array(2048));
    assert.equal((await drv.writeZeroes([{ sector: 300, numSectors: 8 }], true)).status, S_OK);
    for (const type of [2, 3, 14, 99, 0xffffffff]) assert.equal((await drv.request(type, 0, null, 0)).status, S_UNSUPP, `type ${type}`);
  } finally {
    await a.close();
  }
});

test('out-of-range and misaligned sectors, bad discard segments: IOERR or UNSUPP, never a crash', async () => {
  const a = await attach('b0');
  const drv = a.c.driver;
  try {
    assert.equal((await drv.read(16 * MIB - 1, 2)).status, S_IOERR);
    assert.equal((await drv.read(16 * MIB, 1)).status, S_IOERR);
    assert.equal((await drv.write(2 ** 52, new Uint8Array(512))).status, S_IOERR);
    assert.equal((await drv.discard([{ sector: 16 * MIB - 4, numSectors: 8 }])).status, S_IOERR);
    assert.equal((await drv.discard([{ sector: 0, numSectors: 8, flags: 1 }])).status, S_UNSUPP); // unmap flag on DISCARD
    assert.equal((await drv.writeZeroes([{ sector: 0, numSectors: 8, flags: 2 }])).status, S_UNSUPP); // reserved flag
    // A segment list that is not a whole number of segments.
    assert.equal((await drv.request(11, 0, new Uint8Array(17), 0)).status, S_UNSUPP);
    // Still serving.
    assert.equal((await drv.read(0, 1)).status, S_OK);
  } finally {
    await a.close();
  }
  const b = await attach('b4k');
  try {
    assert.equal((await b.c.driver.read(1, 8)).status, S_IOERR); // not on a 4 KiB boundary
    assert.equal((await b.c.driver.read(8, 1)).status, S_IOERR); // not a whole block
    assert.equal((await b.c.driver.read(8, 8)).status, S_OK);
  } finally {
    await b.close();
  }
});

test('a read-only controller refuses writes, discards and write-zeroes, serves reads', async () => {
  const a = await attach('bro');
  const drv = a.c.driver;
  try {
    assert.equal((await drv.write(0, new Uint8Array(512))).status, S_IOERR);
    assert.equal((await drv.writeZeroes([{ sector: 0, numSectors: 1 }])).status, S_IOERR);
    assert.equal((await drv.read(0, 8)).status, S_OK);
  } finally {
    await a.close();
  }
});

test('bdev_null_resize reaches the front-end as CONFIG_CHANGE_MSG with the new capacity', async () => {
  const a = await attach('bn');
  try {
    assert.equal(a.c.config.capacity, 8 * MIB);
    const changed = a.c.waitForConfigChange(5000);
    await d.call('bdev_null_resize', { name: 'n0', new_size: 12 });
    assert.equal((await changed).capacity, 12 * MIB);
    assert.equal((await a.c.driver.read(12 * MIB - 8, 8)).status, S_OK);
    assert.equal((await a.c.driver.read(12 * MIB, 8)).status, S_IOERR);
  } finally {
    await a.close();
  }
});

test('packed rings: I/O works; a hostile descriptor breaks only that queue', async () => {
  const a = await attach('bpk', { packed: true });
  try {
    const data = new Uint8Array(4096).fill(0x3c);
    assert.equal((await a.c.driver.write(8, data)).status, S_OK);
    assert.deepEqual((await a.c.driver.read(8, 8)).data, data);
  } finally {
    await a.close();
  }
  const h = await attach('bpk', { packed: true });
  try {
    const q = h.c.driver.requestQueues[0] as DriverPackedQueue;
    const slot = q.nextAvailSlot;
    // A descriptor far outside guest memory, made available with the right wrap bit.
    q.raw.writeDescriptor(slot, 0x7000_0000_0000, 16, 0, availFlagsFor(q.availWrapCounter));
    q.notify();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(q.raw.readDescriptor(slot).len, 16, 'the device did not mark it used');
  } finally {
    await h.close();
  }
  // The daemon and the other controllers still work.
  const b = await attach('b0');
  try {
    assert.equal((await b.c.driver.read(0, 8)).status, S_OK);
  } finally {
    await b.close();
  }
  const again = await attach('bpk', { packed: true });
  try {
    assert.deepEqual((await again.c.driver.read(8, 8)).data, new Uint8Array(4096).fill(0x3c));
  } finally {
    await again.close();
  }
});

test('SET_CONFIG toggles writeback (CONFIG_WCE); other config writes are refused; delete frees the bdev', async () => {
  await d.call('bdev_malloc_create', { name: 'wb', num_blocks: 2048, block_size: 512 });
  await d.call('vhost_create_blk_controller', { ctrlr: 'bwb', dev_name: 'wb' });
  const a = await attach('bwb');
  try {
    const client = a.c.session.client;
    assert.equal((await client.getConfig(32, 1))[0], 0);
    await client.setConfig(32, new Uint8Array([1]), 0, { needReply: true });
    assert.equal((await client.getConfig(32, 1))[0], 1);
    await assert.rejects(client.setConfig(0, new Uint8Array(8), 0, { needReply: true })); // capacity is not writable
    assert.equal((await a.c.driver.write(0, new Uint8Array(512).fill(7))).status, S_OK);
    assert.equal((await a.c.driver.flush()).status, S_OK);
  } finally {
    await a.close();
  }
  await assert.rejects(d.call('bdev_malloc_delete', { name: 'wb' }), /busy|claimed/i);
  await d.call('vhost_delete_controller', { ctrlr: 'bwb' });
  const ctrls = (await d.call('vhost_get_controllers')) as { ctrlr: string }[];
  assert.equal(ctrls.some((c) => c.ctrlr === 'bwb'), false);
  await d.call('bdev_malloc_delete', { name: 'wb' });
});
