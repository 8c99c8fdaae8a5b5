import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import type { DriverQueue } from '../../../src/frontend/driver-queue.ts';
import { DriverSplitQueue } from '../../../src/frontend/driver-split-queue.ts';
import { DriverPackedQueue } from '../../../src/frontend/driver-packed-queue.ts';
import { VirtioBlkDriver, VirtioBlkError, type VirtioBlkDriverOptions } from '../../../src/frontend/virtio-blk-driver.ts';
import * as B from '../../../src/frontend/virtio-blk-wire.ts';
import { FakeRingDevice } from './fake-ring-device.ts';
import { FakePackedDevice } from './fake-packed-device.ts';
import { blkDisk, type BlkDiskLog } from './fake-blk-disk.ts';
import { serve, type AnyDevice } from './fake-devices.ts';

const GiB4 = 0x1_0000_0000;

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

interface Rig {
  arena: GuestMemoryArena;
  queues: DriverQueue[];
  devs: AnyDevice[];
  drv: VirtioBlkDriver;
  disk: Uint8Array;
  log: BlkDiskLog[];
  done(): void;
}

function rig(kind: 'split' | 'packed', opts: Partial<VirtioBlkDriverOptions> = {}, nq = 1): Rig {
  const arena = new GuestMemoryArena();
  const queues: DriverQueue[] = [];
  const devs: AnyDevice[] = [];
  for (let i = 0; i < nq; i++) {
    if (kind === 'split') {
      const q = new DriverSplitQueue(arena, { size: 64, indirectMax: 32 });
      queues.push(q);
      devs.push(new FakeRingDevice(arena, q));
    } else {
      const q = new DriverPackedQueue(arena, { size: 48, indirectMax: 32 });
      queues.push(q);
      devs.push(new FakePackedDevice(arena, q));
    }
  }
  const drv = new VirtioBlkDriver({ arena, requestQueues: queues, maxDataBytes: 8192, ...opts });
  drv.start();
  return {
    arena, queues, devs, drv, disk: new Uint8Array(64 * 512), log: [],
    done() {
      drv.close();
      for (const q of queues) q.close();
      arena.close();
    },
  };
}

const lens = (r: Rig, i = 0) => r.devs[0].chains[i].descriptors.map((d) => [d.len, d.flags & 7]);

for (const kind of ['split', 'packed'] as const) {
  test(`${kind}: write then read; header, data and status descriptors as Linux lays them out`, async () => {
    const r = rig(kind);
    try {
      const data = new Uint8Array(1024).map((_, i) => (i * 13) & 0xff);
      const w = r.drv.write(2, data);
      serve(r.devs[0], blkDisk(r.disk, r.log));
      const wr = await w;
      assert.deepEqual([wr.status, wr.usedLen, wr.data.length], [B.VIRTIO_BLK_S_OK, 1, 0]);
      assert.deepEqual(r.disk.subarray(1024, 2048), data);
      assert.deepEqual(lens(r), [[16, 1], [1024, 1], [1, 2]]);
      const wc = r.devs[0].chains[0];
      assert.equal(hex(wc.out.subarray(0, 16)), '01000000' + '00000000' + '0200000000000000');
      assert.ok(Number(wc.descriptors[1].addr) >= GiB4, 'data lives in the second region');

      const rd = r.drv.read(2, 2);
      serve(r.devs[0], blkDisk(r.disk, r.log));
      const rr = await rd;
      assert.deepEqual([rr.status, rr.usedLen], [0, 1025]);
      assert.deepEqual(rr.data, data);
      assert.deepEqual(lens(r, 1), [[16, 1], [1024, 3], [1, 2]]);
      assert.equal(hex(r.devs[0].chains[1].out), '00000000' + '00000000' + '0200000000000000');
      if (kind === 'packed') {
        // Every ring descriptor of a chain carries the buffer id and AVAIL of the driver's lap.
        const c = (r.devs[0] as FakePackedDevice).chains[1];
        assert.deepEqual(c.ringDescriptors.map((d) => [d.id, d.flags & 0x8080]), [[c.head, 0x80], [c.head, 0x80], [c.head, 0x80]]);
      }
    } finally {
      r.done();
    }
  });

  test(`${kind}: split header, segmented data and indirect tables carry the same bytes`, async () => {
    const r = rig(kind, { headerSplitAt: 5, dataSegmentBytes: 512, indirect: true });
    try {
      const data = new Uint8Array(1024).fill(0x3c);
      const w = r.drv.write(0, data);
      serve(r.devs[0], blkDisk(r.disk, r.log));
      assert.equal((await w).status, 0);
      const c = r.devs[0].chains[0];
      assert.equal(c.indirect, true);
      assert.deepEqual(c.descriptors.map((d) => d.len), [5, 11, 512, 512, 1]);
      assert.notEqual(Number(c.descriptors[1].addr), Number(c.descriptors[0].addr) + 5);
      assert.equal(hex(c.out.subarray(0, 16)), '01000000' + '00000000' + '0000000000000000');
      const rd = r.drv.read(0, 2);
      serve(r.devs[0], blkDisk(r.disk, r.log));
      assert.deepEqual((await rd).data, data);
    } finally {
      r.done();
    }
  });

  test(`${kind}: header with data-out and status with data-in in shared descriptors`, async () => {
    const r = rig(kind, { headerWithData: true, statusWithData: true });
    try {
      const data = new Uint8Array(512).fill(0x42);
      const w = r.drv.write(1, data);
      serve(r.devs[0], blkDisk(r.disk, r.log));
      assert.equal((await w).status, 0);
      assert.deepEqual(lens(r), [[528, 1], [1, 2]]);
      assert.equal(hex(r.devs[0].chains[0].out.subarray(0, 16)), '01000000' + '00000000' + '0100000000000000');
      const rd = r.drv.read(1, 1);
      serve(r.devs[0], blkDisk(r.disk, r.log));
      const rr = await rd;
      assert.deepEqual(lens(r, 1), [[16, 1], [513, 2]]);
      // The status byte follows the data in the same buffer.
      const dc = r.devs[0].chains[1];
      const statusAt = Number(dc.descriptors[1].addr) + 512;
      assert.ok(r.drv.slots.some((sl) => sl.statusGpa === statusAt));
      assert.equal(r.arena.bytesAt(statusAt, 1)[0], 0);
      assert.deepEqual([rr.status, rr.usedLen], [0, 513]);
      assert.deepEqual(rr.data, data);
    } finally {
      r.done();
    }
  });
}

test('flush, GET_ID, discard, write zeroes and an unknown type', async () => {
  const r = rig('split');
  try {
    r.disk.fill(0x11);
    const f = r.drv.flush();
    serve(r.devs[0], blkDisk(r.disk, r.log));
    assert.equal((await f).status, 0);
    assert.deepEqual(lens(r), [[16, 1], [1, 2]]);
    assert.equal(hex(r.devs[0].chains[0].out), '04000000' + '00000000' + '0000000000000000');

    const id = r.drv.getId();
    serve(r.devs[0], blkDisk(r.disk, r.log));
    const idr = await id;
    assert.deepEqual([idr.status, idr.id, idr.usedLen], [0, 'vhostd-serial-0001', 21]);
    assert.deepEqual(lens(r, 1), [[16, 1], [20, 3], [1, 2]]);

    const d = r.drv.discard([{ sector: 4, numSectors: 2 }, { sector: 10, numSectors: 1 }]);
    serve(r.devs[0], blkDisk(r.disk, r.log));
    assert.equal((await d).status, 0);
    assert.equal(hex(r.devs[0].chains[2].out), '0b000000' + '00000000' + '0000000000000000' +
      '0400000000000000' + '02000000' + '00000000' + '0a00000000000000' + '01000000' + '00000000');
    assert.equal(r.disk[4 * 512], 0xdd);

    const z = r.drv.writeZeroes([{ sector: 20, numSectors: 3 }], true);
    serve(r.devs[0], blkDisk(r.disk, r.log));
    assert.equal((await z).status, 0);
    assert.deepEqual(r.log[3].segments, [{ sector: 20, numSectors: 3, flags: 1 }]);
    assert.equal(r.log[3].type, B.VIRTIO_BLK_T_WRITE_ZEROES);
    assert.deepEqual([r.disk[20 * 512 - 1], r.disk[20 * 512], r.disk[23 * 512 - 1], r.disk[23 * 512]], [0x11, 0, 0, 0x11]);

    const u = r.drv.request(0xdeadbeef, 0x1234, null, 0, { reserved: 9 });
    serve(r.devs[0], blkDisk(r.disk, r.log));
    assert.equal((await u).status, B.VIRTIO_BLK_S_UNSUPP);
    assert.equal(hex(r.devs[0].chains[4].out), 'efbeadde' + '09000000' + '3412000000000000');
  } finally {
    r.done();
  }
});

test('multiqueue: each request goes to the queue it names', async () => {
  const r = rig('packed', {}, 3);
  try {
    r.disk.fill(0x77, 512 * 5, 512 * 6);
    const p = r.drv.read(5, 1, { qi: 2 });
    assert.equal(serve(r.devs[0], blkDisk(r.disk, r.log)), 0);
    assert.equal(serve(r.devs[2], blkDisk(r.disk, r.log)), 1);
    assert.equal((await p).data[511], 0x77);
    await assert.rejects(r.drv.read(0, 1, { qi: 3 }), (e: unknown) => e instanceof VirtioBlkError && e.code === 'BAD_ARGUMENT');
  } finally {
    r.done();
  }
});

test('a device that never writes the status leaves the poison; a lying device breaks the queue', async () => {
  const r = rig('split');
  try {
    const p = r.drv.flush();
    serve(r.devs[0], () => 0);
    assert.equal((await p).status, 0xa5);
    const q = r.drv.flush();
    serve(r.devs[0], () => null);
    (r.devs[0] as FakeRingDevice).complete(63, 0); // not an in-flight head
    await assert.rejects(q, (e: unknown) => e instanceof VirtioBlkError && e.code === 'QUEUE_BROKEN');
    assert.equal((r.drv.errors[0] as { code?: string }).code, 'BAD_USED_ID');
  } finally {
    r.done();
  }
});

test('timeout: the late completion frees the slot', async () => {
  const r = rig('packed', { timeoutMs: 30, slotsPerQueue: 1 });
  try {
    const p = r.drv.flush();
    serve(r.devs[0], () => null);
    await assert.rejects(p, (e: unknown) => e instanceof VirtioBlkError && e.code === 'TIMEOUT');
    await assert.rejects(r.drv.flush(), (e: unknown) => e instanceof VirtioBlkError && e.code === 'NO_FREE_SLOT');
    (r.devs[0] as FakePackedDevice).complete(r.devs[0].chains[0].head, 1);
    await new Promise((res) => setTimeout(res, 20));
    const q = r.drv.flush();
    serve(r.devs[0], blkDisk(r.disk, r.log));
    assert.equal((await q).status, 0);
  } finally {
    r.done();
  }
});

test('fast API: acquire / submit / kick / reap / release, on a packed ring across many laps', () => {
  const r = rig('packed', { completion: 'manual', slotsPerQueue: 4 });
  try {
    for (let s = 0; s < 64; s++) r.disk.fill(s, s * 512, s * 512 + 512);
    let done = 0;
    for (let round = 0; round < 50; round++) {
      const batch = [];
      for (let k = 0; k < 4; k++) {
        const s = r.drv.acquire(0);
        assert.ok(s);
        s.type = B.VIRTIO_BLK_T_IN;
        s.sector = (round * 4 + k) % 64;
        s.dataOutLen = 0;
        s.dataInLen = 512;
        assert.equal(r.drv.submit(s), true);
        batch.push(s);
      }
      r.drv.kick(0);
      serve(r.devs[0], blkDisk(r.disk, r.log), false);
      const n = r.drv.reap(0);
      assert.equal(n, 4);
      for (let k = 0; k < n; k++) {
        const s = r.drv.completed[k];
        assert.deepEqual([s.status, s.usedLen, s.data[0], s.data[511]], [0, 513, s.sector, s.sector]);
        r.drv.release(s);
        done++;
      }
    }
    assert.equal(done, 200);
  } finally {
    r.done();
  }
});
