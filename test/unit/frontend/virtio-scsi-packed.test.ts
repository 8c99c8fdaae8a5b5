import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import { DriverPackedQueue } from '../../../src/frontend/driver-packed-queue.ts';
import { VirtioScsiDriver, type VirtioScsiDriverOptions } from '../../../src/frontend/virtio-scsi-driver.ts';
import * as C from '../../../src/frontend/scsi-cdb.ts';
import * as W from '../../../src/frontend/virtio-scsi-wire.ts';
import { FakePackedDevice } from './fake-packed-device.ts';
import { scsiDisk } from './fake-scsi-disk.ts';

// The virtio-scsi driver on packed rings (control, event and request queues all packed).
function rig(opts: Partial<VirtioScsiDriverOptions> = {}) {
  const arena = new GuestMemoryArena();
  const ctrl = new DriverPackedQueue(arena, { size: 16 });
  const evq = new DriverPackedQueue(arena, { size: 6 });
  const req = new DriverPackedQueue(arena, { size: 40, indirectMax: 32 });
  const drv = new VirtioScsiDriver({ arena, controlQueue: ctrl, eventQueue: evq, requestQueues: [req], maxDataBytes: 8192, eventBuffers: 4, ...opts });
  drv.start();
  return {
    arena, ctrl, evq, req, drv, disk: new Uint8Array(64 * 512),
    dev: new FakePackedDevice(arena, req), ctrlDev: new FakePackedDevice(arena, ctrl), evDev: new FakePackedDevice(arena, evq),
    done() {
      drv.close();
      for (const q of [ctrl, evq, req]) q.close();
      arena.close();
    },
  };
}

test('packed: writes and reads round-trip across several ring laps', async () => {
  const r = rig();
  try {
    const lun = r.drv.lun();
    for (let i = 0; i < 30; i++) {
      const data = new Uint8Array(512).fill(i + 1);
      const w = lun.write10(i % 8, data);
      r.dev.service(scsiDisk(r.disk));
      assert.equal((await w).status, C.SAM_STAT_GOOD);
      const rd = lun.read10(i % 8, 1);
      r.dev.service(scsiDisk(r.disk));
      assert.deepEqual((await rd).data, data);
    }
    // 60 chains of 3 descriptors went through a 40-slot ring: the driver wrapped at least four times.
    const c = r.dev.chains[0];
    assert.deepEqual(c.ringDescriptors.map((d) => [d.len, d.flags]), [[51, 0x81], [512, 0x81], [108, 0x82]]);
    assert.ok(r.dev.chains.some((x) => x.ringDescriptors.some((d) => (d.flags & 0x8080) === 0x8000)), 'some descriptors carry wrap 0');
    assert.equal(Buffer.from(c.out.subarray(0, 19)).toString('hex'), '0100400000000000' + '0100000000000000' + '000000');
  } finally {
    r.done();
  }
});

test('packed: split header and response in an indirect table', async () => {
  const r = rig({ headerSplitAt: 7, responseSplitAt: 10, dataSegmentBytes: 512, indirect: true });
  try {
    const w = r.drv.lun().write10(0, new Uint8Array(1024).fill(0x3c));
    r.dev.service(scsiDisk(r.disk));
    assert.equal((await w).status, 0);
    const c = r.dev.chains[0];
    assert.equal(c.indirect, true);
    assert.deepEqual(c.ringDescriptors.map((d) => [d.len, d.flags]), [[96, 0x84]]);
    assert.deepEqual(c.descriptors.map((d) => [d.len, d.flags]), [[7, 0], [44, 0], [512, 0], [512, 0], [10, 2], [98, 2]]);
  } finally {
    r.done();
  }
});

test('packed: TMF on the control queue and events on the event queue', async () => {
  const r = rig();
  try {
    const p = r.drv.tmf(W.VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, { target: 0, lun: 3 });
    r.ctrlDev.service((c, dev) => dev.write(c, 0, new Uint8Array([W.VIRTIO_SCSI_S_FUNCTION_SUCCEEDED])));
    assert.equal(await p, W.VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
    assert.equal(Buffer.from(r.ctrlDev.chains[0].out).toString('hex'), '00000000' + '05000000' + '0100400300000000' + '0000000000000000');
    // Four event buffers posted; each event returns one and it is posted again.
    const ev = new Uint8Array(Buffer.from('01000000' + '0100400200000000' + '01000000', 'hex'));
    for (let k = 0; k < 5; k++) {
      let first = true;
      r.evDev.service((c, dev) => {
        if (!first) return null;
        first = false;
        return dev.write(c, 0, ev);
      });
      const e = await r.drv.nextEvent(2000);
      assert.deepEqual([e.event, e.lunId, e.reason], [W.VIRTIO_SCSI_T_TRANSPORT_RESET, 2, W.VIRTIO_SCSI_EVT_RESET_RESCAN]);
    }
    assert.equal(r.evq.inFlight, 4);
  } finally {
    r.done();
  }
});
