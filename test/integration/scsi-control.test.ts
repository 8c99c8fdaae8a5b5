// The control and event queues through a real daemon: TMFs, asynchronous-notification queries and
// hotplug events when targets come and go while a front-end is attached.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemu, FRONTEND_RING_FEATURES } from '../../src/frontend/qemu-like-session.ts';
import { VirtioScsiDriver } from '../../src/frontend/virtio-scsi-driver.ts';

const VIRTIO_SCSI_F_HOTPLUG = 1n;
const S_OK = 0;
const S_BAD_TARGET = 3;
const S_FUNCTION_COMPLETE = 0;
const S_FUNCTION_REJECTED = 11;
const S_INCORRECT_LUN = 12;
const TMF = { ABORT_TASK: 0, ABORT_TASK_SET: 1, CLEAR_ACA: 2, CLEAR_TASK_SET: 3, I_T_NEXUS_RESET: 4, LOGICAL_UNIT_RESET: 5, QUERY_TASK: 6, QUERY_TASK_SET: 7 };

let d: Daemon;

before(async () => {
  d = await startDaemon();
  await d.call('bdev_malloc_create', { name: 'm0', num_blocks: 2048, block_size: 512 });
  await d.call('bdev_malloc_create', { name: 'm1', num_blocks: 4096, block_size: 512 });
  await d.call('vhost_create_scsi_controller', { ctrlr: 'c0' });
  await d.call('vhost_scsi_controller_add_target', { ctrlr: 'c0', scsi_target_num: 0, bdev_name: 'm0' });
});

after(async () => {
  assert.equal(await d.stop(), 0);
});

async function attach(features = FRONTEND_RING_FEATURES) {
  const arena = new GuestMemoryArena();
  const session = await connectLikeQemu({ socketPath: d.socket('c0'), arena, queueSizes: [16, 16, 32], wantFeatures: features });
  const drv = VirtioScsiDriver.fromSession(session, { maxDataBytes: 16384, timeoutMs: 5000 });
  drv.start();
  return {
    session,
    drv,
    async close() {
      drv.close();
      await session.stop();
      session.close();
      arena.close();
    },
  };
}

test('task management functions answer as virtio-scsi specifies', async () => {
  const a = await attach();
  try {
    const at = { target: 0, lun: 0 };
    await a.drv.lun(at).testUnitReady();
    assert.equal(await a.drv.tmf(TMF.ABORT_TASK, at, 12345), S_FUNCTION_COMPLETE); // no such task: nothing to abort
    assert.equal(await a.drv.tmf(TMF.QUERY_TASK, at, 12345), S_FUNCTION_COMPLETE);
    assert.equal(await a.drv.tmf(TMF.QUERY_TASK_SET, at), S_FUNCTION_COMPLETE);
    assert.equal(await a.drv.tmf(TMF.ABORT_TASK_SET, at), S_FUNCTION_COMPLETE);
    assert.equal(await a.drv.tmf(TMF.CLEAR_TASK_SET, at), S_FUNCTION_COMPLETE);
    assert.equal(await a.drv.tmf(TMF.I_T_NEXUS_RESET, at), S_FUNCTION_COMPLETE);
    assert.equal(await a.drv.tmf(TMF.LOGICAL_UNIT_RESET, at), S_FUNCTION_COMPLETE);
    assert.equal(await a.drv.tmf(TMF.CLEAR_ACA, at), S_FUNCTION_REJECTED);
    assert.equal(await a.drv.tmf(TMF.LOGICAL_UNIT_RESET, { target: 0, lun: 3 }), S_INCORRECT_LUN);
    assert.equal(await a.drv.tmf(TMF.LOGICAL_UNIT_RESET, { target: 9, lun: 0 }), S_BAD_TARGET);
    // After a LUN reset the next command reports the reset as a UNIT ATTENTION (29/00), once.
    const ua = await a.drv.lun(at).testUnitReady();
    assert.deepEqual([ua.status, ua.senseKey, ua.asc], [2, 6, 0x29]);
    assert.equal((await a.drv.lun(at).testUnitReady()).status, 0);
  } finally {
    await a.close();
  }
});

test('AN_QUERY / AN_SUBSCRIBE report no supported events', async () => {
  const a = await attach();
  try {
    const q = await a.drv.anQuery(0xff, { target: 0, lun: 0 });
    assert.deepEqual([q.response, q.eventActual], [S_OK, 0]);
    const s = await a.drv.anSubscribe(0x10, { target: 0, lun: 0 });
    assert.deepEqual([s.response, s.eventActual], [S_OK, 0]);
    const bad = await a.drv.anQuery(0xff, { target: 7, lun: 0 });
    assert.equal(bad.response, S_BAD_TARGET);
  } finally {
    await a.close();
  }
});

test('adding and removing a target while attached sends hotplug events on the event queue', async () => {
  const a = await attach(FRONTEND_RING_FEATURES | (1n << VIRTIO_SCSI_F_HOTPLUG));
  try {
    assert.equal(await d.call('vhost_scsi_controller_add_target', { ctrlr: 'c0', scsi_target_num: 5, bdev_name: 'm1' }), 5);
    const added = await a.drv.nextEvent(3000);
    assert.deepEqual([added.event, added.target, added.reason], [1, 5, 1]); // TRANSPORT_RESET, target 5, RESCAN
    assert.equal(added.eventsMissed, false);
    const at5 = { target: 5, lun: 0 };
    await a.drv.lun(at5).testUnitReady();
    const cap = await a.drv.lun(at5).readCapacity16();
    assert.equal(new DataView(cap.data.buffer, cap.data.byteOffset).getUint32(4), 4095);
    await d.call('vhost_scsi_controller_remove_target', { ctrlr: 'c0', scsi_target_num: 5 });
    const removed = await a.drv.nextEvent(3000);
    assert.deepEqual([removed.event, removed.target, removed.reason], [1, 5, 2]); // REMOVED
    assert.equal((await a.drv.lun(at5).inquiry()).response, S_BAD_TARGET);
    // The bdev is free again once the target is gone.
    const [m1] = (await d.call('bdev_get_bdevs', { name: 'm1' })) as { claimed: boolean }[];
    assert.equal(m1.claimed, false);
  } finally {
    await a.close();
  }
});
