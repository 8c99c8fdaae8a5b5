// Reactor behaviour seen from outside: the memory table changes while I/O runs (the reactor remaps
// and retires old mappings safely), an adaptive reactor sleeps when idle and wakes for the next I/O.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk } from '../../src/frontend/qemu-like-blk.ts';
import { threadsCpuSeconds } from '../../src/bench/process-cpu.ts';

let d: Daemon;

before(async () => {
  d = await startDaemon(['--poll-mode', 'adaptive']);
  await d.call('bdev_malloc_create', { name: 'm0', num_blocks: 16384, block_size: 512 });
  await d.call('bdev_null_create', { name: 'n0', num_blocks: 16384, block_size: 512 });
  await d.call('vhost_create_blk_controller', { ctrlr: 'mem', dev_name: 'm0' });
  await d.call('vhost_create_blk_controller', { ctrlr: 'idle', dev_name: 'n0' });
});

after(async () => {
  assert.equal(await d.stop(), 0, d.stderr.join(''));
});

test('regions added and removed 20 times while 8 writers run: no error, data intact', async () => {
  const arena = new GuestMemoryArena();
  const c = await connectLikeQemuBlk({ socketPath: d.socket('mem'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 8192, timeoutMs: 5000 } });
  try {
    let stop = false;
    let ios = 0;
    const writer = async (w: number): Promise<void> => {
      for (let round = 0; !stop; round++) {
        const lba = w * 64 + (round % 8) * 8;
        const data = new Uint8Array(4096).fill((w * 31 + round) & 0xff);
        assert.equal((await c.driver.write(lba, data)).status, 0);
        const r = await c.driver.read(lba, 8);
        assert.equal(r.status, 0);
        assert.deepEqual(r.data, data);
        ios += 2;
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    const client = c.session.client;
    for (let i = 0; i < 20; i++) {
      const region = arena.addRegion({ size: 1 << 20, guestPhysAddr: 0x4_0000_0000 + i * 0x100000 });
      await client.addMemReg(region);
      await new Promise((r) => setTimeout(r, 5));
      await client.remMemReg(region);
      arena.removeRegion(region);
    }
    stop = true;
    await Promise.all(writers);
    assert.ok(ios > 100, `${ios} I/Os ran during the changes`);
    assert.equal(d.proc.exitCode, null);
  } finally {
    await c.stop();
    c.close();
    arena.close();
  }
});

test('an adaptive reactor sleeps when idle and the first I/O after idle completes', async () => {
  const arena = new GuestMemoryArena();
  const c = await connectLikeQemuBlk({ socketPath: d.socket('idle'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 8192, timeoutMs: 5000 } });
  try {
    for (let i = 0; i < 200; i++) assert.equal((await c.driver.read(i * 8, 8)).status, 0);
    await new Promise((r) => setTimeout(r, 1000));
    const cpu0 = threadsCpuSeconds(d.proc.pid!, 'reactor');
    await new Promise((r) => setTimeout(r, 1000));
    const idleCpu = threadsCpuSeconds(d.proc.pid!, 'reactor') - cpu0;
    // Polling would burn a whole core (1.0 s per second); sleeping costs next to nothing.
    assert.ok(idleCpu <= 0.05, `reactor used ${idleCpu} s of CPU in 1 s of idle`);
    const t0 = performance.now();
    assert.equal((await c.driver.read(0, 8)).status, 0);
    const firstMs = performance.now() - t0;
    assert.ok(firstMs < 50, `first I/O after idle took ${firstMs.toFixed(2)} ms`);
  } finally {
    await c.stop();
    c.close();
    arena.close();
  }
});
