// A SCSI controller over two reactors: its two request queues run on different reactors, I/O is
// right on both, and task management (relayed to every reactor) sees and waits for commands on
// either; hotplug events reach the guest once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemu, FRONTEND_RING_FEATURES } from '../../src/frontend/qemu-like-session.ts';
import { VirtioScsiDriver } from '../../src/frontend/virtio-scsi-driver.ts';
import type { ScsiCommandResult } from '../../src/frontend/scsi-request-slot.ts';

const VIRTIO_SCSI_F_HOTPLUG = 1n;
const VIRTIO_SCSI_F_CHANGE = 2n;
const S_OK = 0;
const S_ABORTED = 2;
const S_FUNCTION_COMPLETE = 0;
const S_FUNCTION_SUCCEEDED = 10;
const TMF = { ABORT_TASK: 0, LOGICAL_UNIT_RESET: 5, QUERY_TASK: 6, QUERY_TASK_SET: 7 };
/** The delay bdev's latency: long enough that a TMF surely finds its commands in flight. */
const SLOW_MS = 600;
const FAST = { target: 0, lun: 0 };
const SLOW = { target: 1, lun: 0 };

let d: Daemon;

before(async () => {
  d = await startDaemon(['-m', '0x3']);
  await d.call('bdev_malloc_create', { name: 'fast', num_blocks: 8192, block_size: 512 });
  await d.call('bdev_malloc_create', { name: 'base', num_blocks: 8192, block_size: 512 });
  const us = SLOW_MS * 1000;
  await d.call('bdev_delay_create', { base_bdev_name: 'base', name: 'slow', avg_read_latency: us, nine_nine_read_latency: us, avg_write_latency: us, nine_nine_write_latency: us });
  await d.call('bdev_malloc_create', { name: 'plug', num_blocks: 2048, block_size: 512 });
  await d.call('bdev_null_create', { name: 'grow', num_blocks: 2048, block_size: 512 });
  await d.call('vhost_create_scsi_controller', { ctrlr: 'sp' });
  await d.call('vhost_scsi_controller_add_target', { ctrlr: 'sp', scsi_target_num: 0, bdev_name: 'fast' });
  await d.call('vhost_scsi_controller_add_target', { ctrlr: 'sp', scsi_target_num: 1, bdev_name: 'slow' });
});

after(async () => {
  assert.equal(await d.stop(), 0, d.stderr.join(''));
});

/** A front-end with num_queues=2: control, event and two request queues. */
async function attach(features = FRONTEND_RING_FEATURES) {
  const arena = new GuestMemoryArena();
  const session = await connectLikeQemu({ socketPath: d.socket('sp'), arena, queueSizes: [16, 16, 32, 32], wantFeatures: features });
  const drv = VirtioScsiDriver.fromSession(session, { maxDataBytes: 65536, timeoutMs: 5000 });
  drv.start();
  return {
    drv,
    async close() {
      drv.close();
      await session.stop();
      session.close();
      arena.close();
    },
  };
}

/** Queue index -> CPU of its reactor, as vhost_get_controllers reports it. */
async function queueCpus(): Promise<Record<string, number>> {
  const [info] = (await d.call('vhost_get_controllers', { name: 'sp' })) as { backend_specific: { queue_cpus: Record<string, number> } }[];
  return info.backend_specific.queue_cpus;
}

/** The request queue (driver qi) that runs on the reactor without the control queue. */
async function nonHomeQueue(): Promise<number> {
  const cpus = await queueCpus();
  const qi = [0, 1].find((q) => cpus[q + 2] !== cpus[0]);
  assert.notEqual(qi, undefined, `a request queue away from the home reactor: ${JSON.stringify(cpus)}`);
  return qi!;
}

/** Clears the power-on unit attention (reported once per LUN, whichever queue asks first). */
async function clearUnitAttention(drv: VirtioScsiDriver, at: { target: number; lun: number }): Promise<void> {
  for (let i = 0; i < 3 && (await drv.lun(at).testUnitReady()).status !== 0; i++);
}

function timed(p: Promise<ScsiCommandResult>, log: string[], name: string): Promise<ScsiCommandResult> {
  return p.then((r) => {
    log.push(name);
    return r;
  });
}

test('the two request queues of a SCSI controller run on two reactors; control and event stay home', async () => {
  const a = await attach();
  try {
    await clearUnitAttention(a.drv, FAST);
    const cpus = await queueCpus();
    assert.deepEqual(Object.keys(cpus).sort(), ['0', '1', '2', '3']);
    assert.equal(cpus[1], cpus[0], 'event queue beside the control queue');
    assert.notEqual(cpus[2], cpus[3], `request queues on different reactors: ${JSON.stringify(cpus)}`);
    assert.deepEqual([cpus[2], cpus[3]].sort(), [0, 1]);
  } finally {
    await a.close();
  }
});

test('I/O on both request queues reads back what either wrote (data verified across reactors)', async () => {
  const a = await attach();
  try {
    await clearUnitAttention(a.drv, FAST);
    for (let round = 0; round < 8; round++) {
      const wq = round % 2;
      const data = new Uint8Array(8192);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + round * 31) & 0xff;
      const w = a.drv.lun(FAST);
      w.qi = wq;
      assert.equal((await w.write10(round * 16, data)).status, 0);
      const r = a.drv.lun(FAST);
      r.qi = 1 - wq;
      const back = await r.read10(round * 16, 16);
      assert.equal(back.status, 0);
      assert.deepEqual(back.data, data, `round ${round}: written on queue ${wq}, read on ${1 - wq}`);
    }
    // Both queues at once, interleaved.
    const writes = [];
    for (let i = 0; i < 16; i++) {
      const l = a.drv.lun(FAST);
      l.qi = i % 2;
      writes.push(l.write10(1000 + i, new Uint8Array(512).fill(i + 1)));
    }
    for (const w of await Promise.all(writes)) assert.equal(w.status, 0);
    for (let i = 0; i < 16; i++) {
      const l = a.drv.lun(FAST);
      l.qi = (i + 1) % 2;
      assert.deepEqual((await l.read10(1000 + i, 1)).data, new Uint8Array(512).fill(i + 1));
    }
  } finally {
    await a.close();
  }
});

test('LUN RESET with commands in flight on both reactors answers only after both completed; one unit attention', async () => {
  const a = await attach();
  try {
    await clearUnitAttention(a.drv, SLOW);
    const order: string[] = [];
    const l0 = a.drv.lun(SLOW);
    l0.qi = 0;
    const l1 = a.drv.lun(SLOW);
    l1.qi = 1;
    const c0 = timed(l0.read10(0, 8), order, 'read q0');
    const c1 = timed(l1.write10(8, new Uint8Array(4096).fill(9)), order, 'write q1');
    await new Promise((r) => setTimeout(r, 100)); // both popped and at the (slow) bdev
    const started = Date.now();
    const reset = a.drv.tmf(TMF.LOGICAL_UNIT_RESET, SLOW).then((r) => (order.push('reset'), r));
    assert.equal(await reset, S_FUNCTION_COMPLETE);
    assert.ok(Date.now() - started >= SLOW_MS / 2, `the reset waited for the bdev (${Date.now() - started} ms)`);
    const [r0, r1] = await Promise.all([c0, c1]);
    assert.equal(order.indexOf('reset'), 2, `commands completed before the TMF: ${order.join(', ')}`);
    assert.deepEqual([r0.response, r1.response], [S_ABORTED, S_ABORTED]);
    // The reset's unit attention is one per LUN, not one per reactor.
    const first = await l1.testUnitReady();
    assert.deepEqual([first.status, first.senseKey, first.asc], [2, 6, 0x29]);
    assert.equal((await l0.testUnitReady()).status, 0, 'the other queue does not report it again');
  } finally {
    await a.close();
  }
});

test('QUERY TASK, QUERY TASK SET and ABORT TASK find a command running on the non-home reactor', async () => {
  const a = await attach();
  try {
    await clearUnitAttention(a.drv, SLOW);
    const qi = await nonHomeQueue();
    const l = a.drv.lun(SLOW);
    l.qi = qi;
    const order: string[] = [];
    const cmd = timed(l.read10(64, 8), order, 'read');
    const tag = a.drv.lastRequestId;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await a.drv.tmf(TMF.QUERY_TASK, SLOW, tag), S_FUNCTION_SUCCEEDED, 'the task is found on the other reactor');
    assert.equal(await a.drv.tmf(TMF.QUERY_TASK, SLOW, tag + 1000), S_FUNCTION_COMPLETE, 'another tag is not');
    assert.equal(await a.drv.tmf(TMF.QUERY_TASK_SET, SLOW), S_FUNCTION_SUCCEEDED);
    const abort = a.drv.tmf(TMF.ABORT_TASK, SLOW, tag).then((r) => (order.push('abort'), r));
    assert.equal(await abort, S_FUNCTION_COMPLETE);
    assert.deepEqual(order, ['read', 'abort'], 'the command completed before the ABORT TASK answer');
    assert.equal((await cmd).response, S_ABORTED);
    assert.equal(await a.drv.tmf(TMF.QUERY_TASK, SLOW, tag), S_FUNCTION_COMPLETE, 'gone after the abort');
    assert.equal(await a.drv.tmf(TMF.QUERY_TASK_SET, SLOW), S_FUNCTION_COMPLETE);
    // The LUN still serves the queue afterwards.
    const again = await l.read10(64, 1);
    assert.equal(again.response, S_OK);
  } finally {
    await a.close();
  }
});

test('COMPARE AND WRITE in flight on one reactor holds back an overlapping WRITE from the other; a disjoint WRITE goes', async () => {
  const a = await attach();
  try {
    await clearUnitAttention(a.drv, SLOW);
    const l0 = a.drv.lun(SLOW);
    l0.qi = 0;
    const l1 = a.drv.lun(SLOW);
    l1.qi = 1;
    const old = new Uint8Array(512).fill(0x11);
    assert.equal((await l0.write10(200, old)).status, 0);
    // COMPARE AND WRITE(16) of block 200: expects `old`, writes 0x22 (a read then a write, SLOW_MS each).
    const cdb = new Uint8Array(16);
    cdb[0] = 0x89;
    new DataView(cdb.buffer).setBigUint64(2, 200n);
    cdb[13] = 1;
    const out = new Uint8Array(1024);
    out.set(old);
    out.fill(0x22, 512);
    const order: string[] = [];
    const caw = timed(l0.command(cdb, out, 0), order, 'caw');
    await new Promise((r) => setTimeout(r, SLOW_MS / 4)); // the CAW is reading on queue 0's reactor
    const write = timed(l1.write10(200, new Uint8Array(512).fill(0x33)), order, 'write');
    const other = timed(l1.write10(300, new Uint8Array(512).fill(0x44)), order, 'other');
    const results = await Promise.all([caw, write, other]);
    assert.deepEqual(results.map((r) => [r.response, r.status]), [[S_OK, 0], [S_OK, 0], [S_OK, 0]]);
    assert.deepEqual(order, ['other', 'caw', 'write'], 'the overlapping write waited for the CAW, the disjoint one did not');
    const back = await l1.read10(200, 1);
    assert.deepEqual(back.data, new Uint8Array(512).fill(0x33), 'the write landed after the CAW, not under it');
  } finally {
    await a.close();
  }
});

test('a hot-plugged target and a resize each produce exactly one event', async () => {
  const a = await attach(FRONTEND_RING_FEATURES | (1n << VIRTIO_SCSI_F_HOTPLUG) | (1n << VIRTIO_SCSI_F_CHANGE));
  try {
    assert.equal(await d.call('vhost_scsi_controller_add_target', { ctrlr: 'sp', scsi_target_num: 5, bdev_name: 'plug' }), 5);
    const added = await a.drv.nextEvent(3000);
    assert.deepEqual([added.event, added.target, added.reason], [1, 5, 1]); // TRANSPORT_RESET, RESCAN
    await assert.rejects(a.drv.nextEvent(500), 'no second event for the same hotplug');
    // The new target answers on both queues (every reactor holds it).
    for (const qi of [0, 1]) {
      const l = a.drv.lun({ target: 5, lun: 0 });
      l.qi = qi;
      await clearUnitAttention(a.drv, { target: 5, lun: 0 });
      assert.equal((await l.testUnitReady()).status, 0, `queue ${qi}`);
    }
    await d.call('vhost_scsi_controller_add_target', { ctrlr: 'sp', scsi_target_num: 6, bdev_name: 'grow' });
    await a.drv.nextEvent(3000);
    await d.call('bdev_null_resize', { name: 'grow', new_size: 2 });
    const changed = await a.drv.nextEvent(3000);
    assert.deepEqual([changed.event, changed.target], [3, 6]); // PARAM_CHANGE
    await assert.rejects(a.drv.nextEvent(500), 'no second event for the same resize');
    await d.call('vhost_scsi_controller_remove_target', { ctrlr: 'sp', scsi_target_num: 6 });
    await d.call('vhost_scsi_controller_remove_target', { ctrlr: 'sp', scsi_target_num: 5 });
    const removed = await a.drv.nextEvent(3000);
    assert.deepEqual([removed.event, removed.reason], [1, 2]);
  } finally {
    await a.close();
  }
});
