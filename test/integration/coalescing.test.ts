// vhost_controller_set_coalescing: a busy queue signals the guest at most once per delay_base_us.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk } from '../../src/frontend/qemu-like-blk.ts';
import { eventfdDrain } from '../../src/sys/eventfd.ts';
import type { VirtioBlkDriver } from '../../src/frontend/virtio-blk-driver.ts';

let d: Daemon;

before(async () => {
  d = await startDaemon();
  await d.call('bdev_null_create', { name: 'n0', num_blocks: 65536, block_size: 512 });
  await d.call('vhost_create_blk_controller', { ctrlr: 'c0', dev_name: 'n0' });
});

after(async () => {
  assert.equal(await d.stop(), 0, d.stderr.join(''));
});

/** Keeps `depth` reads in flight for `ms`, then returns how many completed and how many interrupts came. */
async function load(driver: VirtioBlkDriver, callFd: number, ms: number, depth = 1): Promise<{ ios: number; irqs: number; ms: number }> {
  let inFlight = 0;
  let ios = 0;
  const start = performance.now();
  const end = start + ms;
  eventfdDrain(callFd);
  while (performance.now() < end || inFlight > 0) {
    while (performance.now() < end && inFlight < depth) {
      const s = driver.acquire(0);
      if (!s) break;
      s.type = 0;
      s.sector = (ios * 8) % 65536;
      s.dataOutLen = 0;
      s.dataInLen = 4096;
      driver.submit(s);
      inFlight++;
    }
    driver.kick(0);
    const n = driver.reap(0);
    for (let k = 0; k < n; k++) driver.release(driver.completed[k]);
    inFlight -= n;
    ios += n;
    if (n === 0) await new Promise((r) => setImmediate(r));
  }
  return { ios, irqs: eventfdDrain(callFd), ms: performance.now() - start };
}

test('coalescing cuts the interrupts of a busy queue, shows in vhost_get_controllers and save_config', async () => {
  const arena = new GuestMemoryArena();
  const c = await connectLikeQemuBlk({ socketPath: d.socket('c0'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 4096, completion: 'manual', slotsPerQueue: 16 } });
  try {
    const q = c.driver.requestQueues[0];
    assert.ok(q.callFd >= 0);
    // QD1: without coalescing every completion is its own used-ring flush, so every one is signalled.
    const plain = await load(c.driver, q.callFd, 300);
    assert.ok(plain.irqs >= plain.ios / 2, `plain: ${plain.irqs} interrupts for ${plain.ios} I/Os`);
    // With it, at most one signal per 50 ms. A long delay and a bound scaled by the measured time:
    // under two busy loops QD1 fell to 150-500 IOPS, where a 5 ms delay could not be told from
    // none (completions were that far apart already), and to one I/O per scheduler slice while a
    // reactor owing a signal spins. Threshold 20 IOPS: such a queue still counts as busy.
    await d.call('vhost_controller_set_coalescing', { ctrlr: 'c0', delay_base_us: 50_000, iops_threshold: 20 });
    await load(c.driver, q.callFd, 150); // the first 100 ms window measures the rate
    const coalesced = await load(c.driver, q.callFd, 1000);
    const bound = Math.ceil(coalesced.ms / 50) + 3; // + the edges of the window
    assert.ok(coalesced.ios > 2 * bound, `the load outran the bound (${coalesced.ios} I/Os in ${coalesced.ms.toFixed(0)} ms, ${bound} signals allowed)`);
    assert.ok(coalesced.irqs <= bound, `coalesced: ${coalesced.irqs} interrupts for ${coalesced.ios} I/Os in ${coalesced.ms.toFixed(0)} ms (at most ${bound})`);
    const [info] = (await d.call('vhost_get_controllers', { name: 'c0' })) as { delay_base_us: number; iops_threshold: number }[];
    assert.deepEqual([info.delay_base_us, info.iops_threshold], [50_000, 20]);
    const saved = JSON.stringify(await d.call('save_config'));
    assert.match(saved, /vhost_controller_set_coalescing/);
    await d.call('vhost_controller_set_coalescing', { ctrlr: 'c0', delay_base_us: 0, iops_threshold: 20 });
    const off = await load(c.driver, q.callFd, 300);
    assert.ok(off.irqs >= off.ios / 2, `off again: ${off.irqs} interrupts for ${off.ios} I/Os`);
    await assert.rejects(d.call('vhost_controller_set_coalescing', { ctrlr: 'c0', delay_base_us: 5, iops_threshold: 0 }), /iops_threshold|Invalid/);
  } finally {
    await c.stop();
    c.close();
    arena.close();
  }
});
