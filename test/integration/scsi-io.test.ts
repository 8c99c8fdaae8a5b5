// A real vhostd process, configured over RPC, driven by the TypeScript front-end as QEMU would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemu, type QemuLikeSession } from '../../src/frontend/qemu-like-session.ts';
import { VirtioScsiDriver } from '../../src/frontend/virtio-scsi-driver.ts';

const BLOCKS = 8192;
let d: Daemon;

before(async () => {
  d = await startDaemon();
  await d.call('bdev_malloc_create', { name: 'm0', num_blocks: BLOCKS, block_size: 512 });
  await d.call('vhost_create_scsi_controller', { ctrlr: 'vhost.0' });
  assert.equal(await d.call('vhost_scsi_controller_add_target', { ctrlr: 'vhost.0', scsi_target_num: 0, bdev_name: 'm0' }), 0);
});

after(async () => {
  assert.equal(await d.stop(), 0);
});

async function attach(split: { headerSplitAt?: number; responseSplitAt?: number } = {}): Promise<{ session: QemuLikeSession; drv: VirtioScsiDriver; arena: GuestMemoryArena; close(): Promise<void> }> {
  const arena = new GuestMemoryArena();
  const session = await connectLikeQemu({ socketPath: d.socket('vhost.0'), arena, queueSizes: [16, 16, 64] });
  const drv = VirtioScsiDriver.fromSession(session, { maxDataBytes: 65536, timeoutMs: 5000, ...split });
  drv.start();
  return {
    session,
    drv,
    arena,
    async close() {
      drv.close();
      await session.stop();
      session.close();
      arena.close();
    },
  };
}

test('INQUIRY, READ CAPACITY, write/read round trip, bad target and missing LUN', async () => {
  const a = await attach();
  try {
    const lun = a.drv.lun({ target: 0, lun: 0 });
    // The first command after power-on may report the POWER ON unit attention: TUR absorbs it.
    await lun.testUnitReady();
    const inq = await lun.inquiry();
    assert.equal(inq.response, 0);
    assert.equal(inq.status, 0);
    assert.equal(inq.data[0], 0x00); // direct-access block device
    assert.equal(new TextDecoder().decode(inq.data.subarray(8, 16)).trim(), 'VHOSTD');

    const cap = await lun.readCapacity16();
    assert.equal(cap.status, 0);
    const cv = new DataView(cap.data.buffer, cap.data.byteOffset);
    assert.equal(Number(cv.getBigUint64(0)), BLOCKS - 1);
    assert.equal(cv.getUint32(8), 512);

    const data = new Uint8Array(8 * 512);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
    const w = await lun.write10(100, data);
    assert.equal(w.status, 0);
    assert.equal(w.residual, 0);
    const r = await lun.read10(100, 8);
    assert.equal(r.status, 0);
    assert.deepEqual(r.data, data);

    const oob = await lun.read10(BLOCKS - 1, 2);
    assert.equal(oob.status, 2); // CHECK CONDITION
    assert.deepEqual([oob.senseKey, oob.asc, oob.ascq], [5, 0x21, 0]); // LBA OUT OF RANGE

    const bad = await a.drv.lun({ target: 3, lun: 0 }).inquiry();
    assert.equal(bad.response, 3); // VIRTIO_SCSI_S_BAD_TARGET

    const none = await a.drv.lun({ target: 0, lun: 5 }).inquiry();
    assert.equal(none.response, 0);
    assert.equal(none.data[0], 0x7f); // peripheral qualifier 3: no LUN here
  } finally {
    await a.close();
  }
});

test('data survives a front-end disconnect and the socket accepts the next connection', async () => {
  const a = await attach();
  const data = new Uint8Array(4096).fill(0x5a);
  try {
    const lun = a.drv.lun();
    await lun.testUnitReady();
    assert.equal((await lun.write10(2000, data)).status, 0);
  } finally {
    await a.close();
  }
  const b = await attach();
  try {
    const lun = b.drv.lun();
    await lun.testUnitReady();
    const r = await lun.read10(2000, 8);
    assert.equal(r.status, 0);
    assert.deepEqual(r.data, data);
    const ctrl = (await d.call('vhost_get_controllers', { name: 'vhost.0' })) as { sessions: unknown[] }[];
    assert.equal(ctrl[0].sessions.length, 1);
  } finally {
    await b.close();
  }
});

// The target reads a header that one descriptor holds in place, and writes the response in place
// when its first descriptor holds it; split ones go through the request's own copies.
for (const split of [{ headerSplitAt: 7, responseSplitAt: 10 }, { headerSplitAt: 40, responseSplitAt: 20 }, { headerSplitAt: 0, responseSplitAt: 40 }]) {
  test(`header split at ${split.headerSplitAt}, response at ${split.responseSplitAt}: tag, CDB, status, residual and sense arrive whole`, async () => {
    const a = await attach(split);
    try {
      const lun = a.drv.lun();
      await lun.testUnitReady();
      const data = new Uint8Array(2 * 512).map((_, i) => (i * 13 + split.responseSplitAt) & 0xff);
      assert.equal((await lun.write10(300, data)).status, 0);
      const r = await lun.read10(300, 2);
      assert.equal(r.status, 0);
      assert.equal(r.residual, 0);
      assert.deepEqual(r.data, data);
      // 18 bytes of fixed-format sense: longer than what a 20-byte first part holds after the 12 fixed bytes
      const oob = await lun.read10(BLOCKS - 1, 2);
      assert.equal(oob.status, 2);
      assert.equal(oob.senseLen, 18);
      assert.deepEqual([oob.senseKey, oob.asc, oob.ascq], [5, 0x21, 0]);
      assert.equal(oob.residual, 2 * 512);
      assert.equal((await a.drv.lun({ target: 3, lun: 0 }).inquiry()).response, 3);
    } finally {
      await a.close();
    }
  });
}
