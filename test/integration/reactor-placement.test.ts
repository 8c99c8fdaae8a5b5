// Two reactors: a blk controller's queues spread over both, so do a SCSI controller's request
// queues (its control and event queues stay on its home reactor), and I/O works on every queue.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk } from '../../src/frontend/qemu-like-blk.ts';
import { connectLikeQemu } from '../../src/frontend/qemu-like-session.ts';
import { VirtioScsiDriver } from '../../src/frontend/virtio-scsi-driver.ts';

let d: Daemon;

before(async () => {
  d = await startDaemon(['-m', '0x3']);
  await d.call('bdev_malloc_create', { name: 'b', num_blocks: 8192, block_size: 512 });
  await d.call('bdev_malloc_create', { name: 's', num_blocks: 8192, block_size: 512 });
  await d.call('vhost_create_blk_controller', { ctrlr: 'blk', dev_name: 'b' });
  await d.call('vhost_create_scsi_controller', { ctrlr: 'scsi' });
  await d.call('vhost_scsi_controller_add_target', { ctrlr: 'scsi', scsi_target_num: 0, bdev_name: 's' });
});

after(async () => {
  assert.equal(await d.stop(), 0, d.stderr.join(''));
});

test('a blk controller with 4 queues runs them on both reactors; data written on one queue reads back on another', async () => {
  const arena = new GuestMemoryArena();
  const c = await connectLikeQemuBlk({ socketPath: d.socket('blk'), arena, numQueues: 4, queueSize: 64, driver: { maxDataBytes: 65536, timeoutMs: 5000 } });
  try {
    const [info] = (await d.call('vhost_get_controllers', { name: 'blk' })) as { cpumask: string; backend_specific: { queue_cpus: Record<string, number> } }[];
    assert.equal(info.cpumask, '0x3');
    const cpus = Object.values(info.backend_specific.queue_cpus);
    assert.equal(cpus.length, 4);
    assert.deepEqual([...new Set(cpus)].sort(), [0, 1], 'queues on both reactors');
    for (let q = 0; q < 4; q++) {
      const data = new Uint8Array(4096).fill(q + 1);
      assert.equal((await c.driver.write(q * 8, data, { qi: q })).status, 0);
      assert.deepEqual((await c.driver.read(q * 8, 8, { qi: (q + 1) % 4 })).data, data);
    }
  } finally {
    await c.stop();
    c.close();
    arena.close();
  }
});

test('a SCSI controller spreads its request queues over both reactors; control and event queues stay together', async () => {
  const arena = new GuestMemoryArena();
  const s = await connectLikeQemu({ socketPath: d.socket('scsi'), arena, queueSizes: [16, 16, 32, 32, 32] });
  const drv = VirtioScsiDriver.fromSession(s, { maxDataBytes: 16384, timeoutMs: 5000 });
  drv.start();
  try {
    await drv.lun().testUnitReady();
    for (let q = 0; q < 3; q++) {
      const lun = drv.lun();
      lun.qi = q;
      const data = new Uint8Array(512).fill(0x40 + q);
      assert.equal((await lun.write10(q, data)).status, 0);
      assert.deepEqual((await lun.read10(q, 1)).data, data);
    }
    const [info] = (await d.call('vhost_get_controllers', { name: 'scsi' })) as { cpumask: string; backend_specific: { queue_cpus: Record<string, number> } }[];
    assert.equal(info.cpumask, '0x3');
    const cpus = info.backend_specific.queue_cpus;
    assert.equal(cpus[1], cpus[0], 'event queue on the home reactor');
    assert.deepEqual([...new Set([cpus[2], cpus[3], cpus[4]])].sort(), [0, 1], `request queues on both reactors: ${JSON.stringify(cpus)}`);
  } finally {
    drv.close();
    await s.stop();
    s.close();
    arena.close();
  }
});
