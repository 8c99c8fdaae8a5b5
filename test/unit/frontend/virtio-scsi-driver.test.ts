import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import { DriverSplitQueue } from '../../../src/frontend/driver-split-queue.ts';
import { VirtioScsiDriver, VirtioScsiError, type VirtioScsiDriverOptions } from '../../../src/frontend/virtio-scsi-driver.ts';
import * as C from '../../../src/frontend/scsi-cdb.ts';
import * as W from '../../../src/frontend/virtio-scsi-wire.ts';
import { FakeRingDevice } from './fake-ring-device.ts';
import { scsiDisk } from './fake-scsi-disk.ts';

const GiB4 = 0x1_0000_0000;

interface Rig {
  arena: GuestMemoryArena;
  ctrl: DriverSplitQueue;
  evq: DriverSplitQueue;
  req: DriverSplitQueue;
  drv: VirtioScsiDriver;
  dev: FakeRingDevice;
  ctrlDev: FakeRingDevice;
  evDev: FakeRingDevice;
  disk: Uint8Array;
  done(): void;
}

function rig(opts: Partial<VirtioScsiDriverOptions> = {}): Rig {
  const arena = new GuestMemoryArena();
  const ctrl = new DriverSplitQueue(arena, { size: 16 });
  const evq = new DriverSplitQueue(arena, { size: 16 });
  const req = new DriverSplitQueue(arena, { size: 64, indirectMax: 32 });
  const drv = new VirtioScsiDriver({ arena, controlQueue: ctrl, eventQueue: evq, requestQueues: [req], maxDataBytes: 8192, ...opts });
  drv.start();
  const disk = new Uint8Array(64 * 512);
  return {
    arena, ctrl, evq, req, drv, disk,
    dev: new FakeRingDevice(arena, req), ctrlDev: new FakeRingDevice(arena, ctrl), evDev: new FakeRingDevice(arena, evq),
    done() {
      drv.close();
      for (const q of [ctrl, evq, req]) q.close();
      arena.close();
    },
  };
}

test('write then read through the promise API; header, response and data land where the spec says', async () => {
  const r = rig();
  try {
    const lun = r.drv.lun();
    const data = new Uint8Array(1024).map((_, i) => (i * 7) & 0xff);
    const w = lun.write10(2, data);
    r.dev.service(scsiDisk(r.disk));
    const wr = await w;
    assert.deepEqual([wr.response, wr.status, wr.usedLen, wr.data.length], [0, 0, 108, 0]);
    assert.deepEqual(r.disk.subarray(1024, 2048), data);
    const wc = r.dev.chains[0];
    // header (51, readable) + data-out (1024, readable) + response (108, writable); data in region 1.
    assert.deepEqual(wc.descriptors.map((d) => [d.len, d.flags]), [[51, 1], [1024, 1], [108, 2]]);
    assert.ok(Number(wc.descriptors[1].addr) >= GiB4);
    assert.equal(Buffer.from(wc.out.subarray(0, 19)).toString('hex'), '0100400000000000' + '0100000000000000' + '000000');
    assert.equal(Buffer.from(wc.out.subarray(19, 29)).toString('hex'), '2a000000000200000200');

    const rd = lun.read10(2, 2);
    r.dev.service(scsiDisk(r.disk));
    const rr = await rd;
    assert.deepEqual([rr.response, rr.status, rr.residual, rr.usedLen], [0, 0, 0, 108 + 1024]);
    assert.deepEqual(rr.data, data);
  } finally {
    r.done();
  }
});

test('split header and response, segmented data and indirect tables reassemble to the same bytes', async () => {
  const r = rig({ headerSplitAt: 7, responseSplitAt: 10, dataSegmentBytes: 512, indirect: true });
  try {
    const data = new Uint8Array(1024).fill(0x3c);
    const w = r.drv.lun({ target: 0, lun: 0 }).write10(0, data);
    r.dev.service(scsiDisk(r.disk));
    assert.equal((await w).status, 0);
    const c = r.dev.chains[0];
    assert.equal(c.indirect, true);
    assert.deepEqual(c.descriptors.map((d) => d.len), [7, 44, 512, 512, 10, 98]);
    // The two header parts are not adjacent in memory.
    assert.notEqual(Number(c.descriptors[1].addr), Number(c.descriptors[0].addr) + 7);
    assert.equal(Buffer.from(c.out.subarray(0, 8)).toString('hex'), '0100400000000000');
    assert.equal(c.out[19], C.WRITE_10);
    assert.deepEqual(r.disk.subarray(0, 1024), data);
    const rd = r.drv.lun().read10(0, 2);
    r.dev.service(scsiDisk(r.disk));
    const rr = await rd;
    assert.deepEqual(rr.data, data);
    assert.equal(rr.status, 0);
    assert.equal(rr.senseLen, 0);
  } finally {
    r.done();
  }
});

test('CHECK CONDITION: sense decoded into key / ASC / ASCQ', async () => {
  const r = rig();
  try {
    const p = r.drv.lun({ target: 0, lun: 5 }).testUnitReady();
    r.dev.service(scsiDisk(r.disk));
    const res = await p;
    assert.deepEqual([res.response, res.status, res.senseLen, res.senseKey, res.asc, res.ascq], [0, 2, 18, 5, 0x25, 0]);
    assert.equal(res.sense.length, 18);
  } finally {
    r.done();
  }
});

test('residual limits the data returned', async () => {
  const r = rig();
  try {
    const p = r.drv.lun().inquiry(false, 0, 255);
    r.dev.service(scsiDisk(r.disk));
    const res = await p;
    assert.equal(res.residual, 219);
    assert.equal(res.data.length, 36);
    assert.deepEqual([...res.data.subarray(0, 5)], [0, 0, 6, 2, 31]);
  } finally {
    r.done();
  }
});

test('TMF on the control queue: 24-byte request, 1-byte response', async () => {
  const r = rig();
  try {
    const p = r.drv.tmf(W.VIRTIO_SCSI_T_TMF_ABORT_TASK, { target: 1, lun: 2 }, 42);
    r.ctrlDev.service((c, dev) => dev.write(c, 0, new Uint8Array([W.VIRTIO_SCSI_S_FUNCTION_SUCCEEDED])));
    assert.equal(await p, W.VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
    const c = r.ctrlDev.chains[0];
    assert.equal(Buffer.from(c.out).toString('hex'), '00000000' + '00000000' + '0101400200000000' + '2a00000000000000');
    assert.deepEqual(c.writable.map((s) => s.len), [1]);
    const an = r.drv.anQuery(W.VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE);
    r.ctrlDev.service((c2, dev) => dev.write(c2, 0, new Uint8Array([0x10, 0, 0, 0, 0])));
    assert.deepEqual(await an, { eventActual: 0x10, response: 0 });
  } finally {
    r.done();
  }
});

test('event queue: buffers stay posted and events are decoded', async () => {
  const r = rig({ eventBuffers: 4 });
  try {
    assert.equal(r.evq.raw.availIdx, 4);
    const ev = new Uint8Array(Buffer.from('03000000' + '0100400300000000' + '2a090000', 'hex'));
    let first = true;
    r.evDev.service((c, dev) => {
      if (!first) return null;
      first = false;
      assert.deepEqual(c.writable.map((s) => s.len), [16]);
      return dev.write(c, 0, ev);
    });
    const e = await r.drv.nextEvent(2000);
    assert.deepEqual([e.event, e.eventsMissed, e.target, e.lunId, e.reason], [W.VIRTIO_SCSI_T_PARAM_CHANGE, false, 0, 3, 0x092a]);
    assert.equal(r.evq.raw.availIdx, 5); // the buffer went back
    await assert.rejects(r.drv.nextEvent(10), (x: unknown) => x instanceof VirtioScsiError && x.code === 'TIMEOUT');
  } finally {
    r.done();
  }
});

test('a device that never completes times out; the late completion frees the slot', async () => {
  const r = rig({ timeoutMs: 30, slotsPerQueue: 1 });
  try {
    const p = r.drv.lun().testUnitReady();
    r.dev.service(() => null);
    await assert.rejects(p, (e: unknown) => e instanceof VirtioScsiError && e.code === 'TIMEOUT');
    await assert.rejects(r.drv.lun().testUnitReady(), (e: unknown) => e instanceof VirtioScsiError && e.code === 'NO_FREE_SLOT');
    r.dev.complete(r.dev.chains[0].head, 108);
    await new Promise((res) => setTimeout(res, 20));
    const q = r.drv.lun().testUnitReady();
    r.dev.service(scsiDisk(r.disk));
    assert.equal((await q).status, 0);
  } finally {
    r.done();
  }
});

test('a device that corrupts the used ring fails pending commands with QUEUE_BROKEN', async () => {
  const r = rig();
  try {
    const p = r.drv.lun().testUnitReady();
    r.dev.service(() => null);
    r.dev.complete(63, 0); // not an in-flight head
    await assert.rejects(p, (e: unknown) => e instanceof VirtioScsiError && e.code === 'QUEUE_BROKEN');
    assert.equal((r.drv.errors[0] as { code?: string }).code, 'BAD_USED_ID');
  } finally {
    r.done();
  }
});

test('fast API: acquire / submit / kick / reap / release without promises', () => {
  const r = rig({ completion: 'manual' });
  try {
    r.disk.fill(0x77, 512 * 3, 512 * 4);
    const s = r.drv.acquire(0);
    assert.ok(s);
    s.setAddress(0, 0);
    s.cdbLen = C.cdbRw10(s.cdb, C.READ_10, 3, 1);
    s.dataOutLen = 0;
    s.dataInLen = 512;
    assert.equal(r.drv.submit(s), true);
    r.drv.kick(0);
    assert.equal(r.drv.reap(0), 0);
    r.dev.service(scsiDisk(r.disk), false);
    assert.equal(r.drv.reap(0), 1);
    assert.equal(r.drv.completed[0], s);
    assert.deepEqual([s.resp.response, s.resp.status, s.usedLen], [0, 0, 620]);
    assert.equal(s.data[0], 0x77);
    assert.equal(s.data[511], 0x77);
    r.drv.release(s);
    assert.equal(r.drv.acquire(0), s);
  } finally {
    r.done();
  }
});
