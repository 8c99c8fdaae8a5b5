// A hostile front-end on one controller must leave the daemon serving its other controllers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemu, type QemuLikeSession } from '../../src/frontend/qemu-like-session.ts';
import { VirtioScsiDriver } from '../../src/frontend/virtio-scsi-driver.ts';
import { VhostUserClient } from '../../src/frontend/vhost-user-client.ts';
import { memfdCreate } from '../../src/sys/memory.ts';
import { closeFd } from '../../src/sys/fd.ts';

let d: Daemon;

before(async () => {
  d = await startDaemon();
  for (const n of [0, 1]) {
    await d.call('bdev_malloc_create', { name: `m${n}`, num_blocks: 4096, block_size: 512 });
    await d.call('vhost_create_scsi_controller', { ctrlr: `vhost.${n}` });
    await d.call('vhost_scsi_controller_add_target', { ctrlr: `vhost.${n}`, scsi_target_num: 0, bdev_name: `m${n}` });
  }
});

after(async () => {
  assert.equal(await d.stop(), 0, `daemon exit; stderr: ${d.stderr.join('')}`);
});

interface Attached {
  session: QemuLikeSession;
  drv: VirtioScsiDriver;
  close(): Promise<void>;
}

async function attach(ctrlr: string): Promise<Attached> {
  const arena = new GuestMemoryArena();
  const session = await connectLikeQemu({ socketPath: d.socket(ctrlr), arena, queueSizes: [16, 16, 32] });
  const drv = VirtioScsiDriver.fromSession(session, { maxDataBytes: 16384, timeoutMs: 3000 });
  drv.start();
  return {
    session,
    drv,
    async close() {
      drv.close();
      await session.stop().catch(() => {});
      session.close();
      arena.close();
    },
  };
}

/** The healthy controller still reads back what it writes, and the daemon answers RPC. */
async function assertHealthy(good: Attached, lba: number): Promise<void> {
  const data = new Uint8Array(1024).fill(lba & 0xff);
  const lun = good.drv.lun();
  assert.equal((await lun.write10(lba, data)).status, 0);
  assert.deepEqual((await lun.read10(lba, 2)).data, data);
  assert.equal(d.proc.exitCode, null, 'daemon is still running');
  const ctrls = (await d.call('vhost_get_controllers')) as unknown[];
  assert.equal(ctrls.length, 2);
}

async function waitClosed(c: VhostUserClient): Promise<void> {
  await Promise.race([c.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('connection not closed')), 3000))]);
}

test('bad descriptors break only the guilty queue', async () => {
  const good = await attach('vhost.1');
  await good.drv.lun().testUnitReady();
  try {
    const hostile = [
      // address far outside guest memory
      (q: QemuLikeSession) => {
        const r = q.queues[2]!.raw;
        r.writeDescriptor(0, 0x7000_0000_0000, 512, 0, 0);
        return 0;
      },
      // a descriptor loop
      (q: QemuLikeSession) => {
        const r = q.queues[2]!.raw;
        r.writeDescriptor(1, q.arena.regions[0].guestPhysAddr + 4096, 64, 1, 1);
        return 1;
      },
      // a head beyond the queue size
      () => 31337,
    ];
    for (const [i, make] of hostile.entries()) {
      const victim = await attach('vhost.0');
      const q = victim.session.queues[2]!;
      const head = make(victim.session);
      const raw = q.raw;
      const idx = raw.availIdx;
      raw.writeAvailEntry(idx % q.size, head);
      raw.availIdx = idx + 1;
      q.notify();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(raw.usedIdx, 0, `hostile chain ${i} was not completed`);
      await assertHealthy(good, 10 + i * 4);
      await victim.close();
    }
    // An avail index that jumps by more than the queue size.
    const victim = await attach('vhost.0');
    const raw = victim.session.queues[2]!.raw;
    raw.availIdx = raw.availIdx + 1000;
    victim.session.queues[2]!.notify();
    await new Promise((r) => setTimeout(r, 100));
    await assertHealthy(good, 40);
    await victim.close();
    // After all that, the victim controller serves a well-behaved front-end again.
    const again = await attach('vhost.0');
    await again.drv.lun().testUnitReady();
    assert.equal((await again.drv.lun().read10(0, 1)).status, 0);
    await again.close();
  } finally {
    await good.close();
  }
});

test('bad messages, missing fds and garbage close only that connection', async () => {
  const good = await attach('vhost.1');
  await good.drv.lun().testUnitReady();
  try {
    const attacks: ((c: VhostUserClient) => Promise<unknown>)[] = [
      // SET_VRING_NUM with a 4-byte payload (it needs 8)
      (c) => c.sendRaw(8, 1, new Uint8Array(4)),
      // SET_MEM_TABLE announcing 2 regions with a single fd
      async (c) => {
        const fd = memfdCreate('hostile', 1 << 20);
        const p = new Uint8Array(8 + 64);
        const v = new DataView(p.buffer);
        v.setUint32(0, 2, true);
        for (let i = 0; i < 2; i++) {
          v.setBigUint64(8 + 32 * i, BigInt(i << 20), true);
          v.setBigUint64(16 + 32 * i, 1n << 20n, true);
          v.setBigUint64(24 + 32 * i, BigInt(0x10000000 + (i << 20)), true);
        }
        try {
          return await c.sendRaw(5, 1 | 8, p, [fd], { expectReply: false });
        } finally {
          closeFd(fd);
        }
      },
      // a region larger than its memfd (would SIGBUS on access)
      async (c) => {
        const fd = memfdCreate('small', 4096);
        const p = new Uint8Array(8 + 32);
        const v = new DataView(p.buffer);
        v.setUint32(0, 1, true);
        v.setBigUint64(16, 1n << 30n, true);
        v.setBigUint64(24, 0x10000000n, true);
        try {
          return await c.sendRaw(5, 1, p, [fd]);
        } finally {
          closeFd(fd);
        }
      },
      // a header announcing a huge payload, then garbage
      async (c) => {
        const h = new Uint8Array(12);
        const v = new DataView(h.buffer);
        v.setUint32(0, 5, true);
        v.setUint32(4, 1, true);
        v.setUint32(8, 0x7fffffff, true);
        c.sendRawBytes(h);
        c.sendRawBytes(new Uint8Array(256).fill(0xee));
      },
      // an unknown request with a wrong version
      (c) => c.sendRaw(999, 0x2, new Uint8Array(0)),
    ];
    for (const [i, attack] of attacks.entries()) {
      const c = await VhostUserClient.connect(d.socket('vhost.0'), { replyTimeoutMs: 2000 });
      await attack(c).catch(() => {});
      // Whatever the daemon answered, it must still be well and serving the other controller.
      await assertHealthy(good, 100 + i * 4);
      c.close();
      await waitClosed(c).catch(() => {});
    }
    const again = await attach('vhost.0');
    await again.drv.lun().testUnitReady();
    await again.close();
  } finally {
    await good.close();
  }
});

test('a front-end that disconnects with requests in flight does not disturb the daemon', async () => {
  const good = await attach('vhost.1');
  await good.drv.lun().testUnitReady();
  try {
    for (let round = 0; round < 3; round++) {
      const victim = await attach('vhost.0');
      const lun = victim.drv.lun();
      const pending = [];
      for (let i = 0; i < 16; i++) pending.push(lun.write10(i * 8, new Uint8Array(4096).fill(i)).catch(() => null));
      victim.session.client.close();
      await Promise.all(pending);
      victim.drv.close();
      victim.session.arena.close();
      await assertHealthy(good, 200 + round * 4);
    }
    const again = await attach('vhost.0');
    await again.drv.lun().testUnitReady();
    await again.close();
  } finally {
    await good.close();
  }
});
