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
async function load(driver: VirtioBlkDriver, callFd: number, ms: number, depth = 1): Promise<{ ios: number; irqs: number }> {
  let inFlight = 0;
  let ios = 0;
  const end = performance.now() + ms;
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
  return { ios, irqs: eventfdDrain(callFd) };
}

test('coalescing cuts the interrupts of a busy queue, shows in vhost_get_controllers and save_config', async () => {
  const arena = new GuestMemoryArena();
  const c = await connectLikeQemuBlk({ socketPath: d.socket('c0'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 4096, completion: 'manual', slotsPerQueue: 16 } });
  try {
    const q = c.driver.requestQueues[0];
    assert.ok(q.callFd >= 0);
    // QD1: without coalescing every completion is its own used-ring flush, so every one is signalled;
    // with it, at most one signal per 5 ms. (At QD16 the plain count depended on how the scheduler
    // batched completions: under two busy loops it fell to 135 and the comparison failed.)
    const plain = await load(c.driver, q.callFd, 300);
    assert.ok(plain.irqs >= plain.ios / 2, `plain: ${plain.irqs} interrupts for ${plain.ios} I/Os`);
    // threshold 20 IOPS, so that a queue on a contended machine still counts as busy: with two
    // busy loops on the CPUs a reactor owing a deferred signal spins (it does not sleep then), and
    // this QD1 load fell to one I/O per scheduler slice (59 in 300 ms, ~200 IOPS).
    await d.call('vhost_controller_set_coalescing', { ctrlr: 'c0', delay_base_us: 5000, iops_threshold: 20 });
    await load(c.driver, q.callFd, 150); // the first 100 ms window measures the rate
    const coalesced = await load(c.driver, q.callFd, 300);
    assert.ok(coalesced.ios >= 15, `the queue ran above the threshold (${coalesced.ios} I/Os in 300 ms, need 6+)`);
    // At most one interrupt per 5 ms (+ slack for the edges).
    assert.ok(coalesced.irqs <= 300 / 5 + 10, `coalesced: ${coalesced.irqs} interrupts for ${coalesced.ios} I/Os`);
    assert.ok(plain.irqs > coalesced.irqs * 4, `plain ${plain.irqs} vs coalesced ${coalesced.irqs} interrupts`);
    const [info] = (await d.call('vhost_get_controllers', { name: 'c0' })) as { delay_base_us: number; iops_threshold: number }[];
    assert.deepEqual([info.delay_base_us, info.iops_threshold], [5000, 20]);
    const saved = JSON.stringify(await d.call('save_config'));
    assert.match(saved, /vhost_controller_set_coalescing/);
    await d.call('vhost_controller_set_coalescing', { ctrlr: 'c0', delay_base_us: 0, iops_threshold: 20 });
    const off = await load(c.driver, q.callFd, 300);
    assert.ok(off.irqs >= off.ios / 2 && off.irqs > coalesced.irqs * 4, `off again: ${off.irqs} interrupts for ${off.ios} I/Os`);
    await assert.rejects(d.call('vhost_controller_set_coalescing', { ctrlr: 'c0', delay_base_us: 5, iops_threshold: 0 }), /iops_threshold|Invalid/);
  } finally {
    await c.stop();
    c.close();
    arena.close();
  }
});
