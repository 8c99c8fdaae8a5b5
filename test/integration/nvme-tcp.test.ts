// The NVMe/TCP initiator against real targets (nvmf-targets.ts: the Linux kernel's nvmet in a TCG
// guest, everywhere; SPDK's nvmf_tgt when VHOSTD_SPDK_DIR names a build), driven from this thread
// as a reactor drives a channel: data lands in the target's image file, large I/O goes in parts
// (in-capsule and R2T writes), flush/unmap/write-zeroes, header and data digests, target errors
// complete the I/O with an error, a target killed under writes and restarted gets every write
// resent, and one that stays away fails held I/O after fast_io_fail_timeout_sec and the controller
// after ctrlr_loss_timeout_sec.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync } from 'node:fs';
import { setImmediate as yieldLoop, setTimeout as sleep } from 'node:timers/promises';
import { BDEV_EINVAL, BDEV_EIO, BDEV_ENOTSUP, BDEV_OK } from '../../src/bdev/bdev.ts';
import { NvmeChannel } from '../../src/bdev/modules/nvme-channel.ts';
import { NvmeController } from '../../src/bdev/modules/nvme-controller.ts';
import { NvmeError } from '../../src/bdev/modules/nvme-error.ts';
import { NvmeBdev } from '../../src/bdev/modules/nvme.ts';
import { SgList } from '../../src/iovec/sg-list.ts';
import { attachOptions } from '../../src/rpc/nvme-methods.ts';
import { inCi } from '../vm/vm-prerequisites.ts';
import { VmPrerequisiteMissing } from '../vm/vm-errors.ts';
import { nvmfTargetKinds, startNvmfTarget, type NvmfTarget } from './nvmf-targets.ts';

class Waiter {
  status: number | null = null;
  at = 0;
  bdevIoDone(s: number): void {
    this.status = s;
    this.at = Date.now();
  }
}

async function settle(ch: NvmeChannel, waiters: Waiter[], timeoutMs = 60_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  while (waiters.some((w) => w.status === null)) {
    ch.poll();
    if (Date.now() > deadline) throw new Error(`I/O not completed within ${timeoutMs} ms (${waiters.filter((w) => w.status === null).length} left)`);
    await yieldLoop();
  }
  return waiters.map((w) => w.status as number);
}

/** Polls while other things (timers, the controller's reconnects) run. */
async function pollFor(ch: NvmeChannel, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    ch.poll();
    await sleep(2);
  }
}

function sgOf(buf: Uint8Array): SgList {
  const sg = new SgList(4);
  sg.push(buf, 0, buf.length);
  return sg;
}

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 17 + (i >> 9)) & 0xff;
  return b;
}

function fileAt(path: string, offset: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, b, 0, len, offset);
  } finally {
    closeSync(fd);
  }
  return b;
}

async function writeBlocks(ch: NvmeChannel, lba: number, data: Uint8Array): Promise<number> {
  const w = new Waiter();
  ch.write(lba, data.length / 512, sgOf(data), 0, w);
  return (await settle(ch, [w]))[0];
}

async function readBlocks(ch: NvmeChannel, lba: number, blocks: number): Promise<{ status: number; data: Uint8Array }> {
  const data = new Uint8Array(blocks * 512);
  const w = new Waiter();
  ch.read(lba, blocks, sgOf(data), 0, w);
  return { status: (await settle(ch, [w]))[0], data };
}

interface Attached {
  ctrlr: NvmeController;
  bdev: NvmeBdev;
  ch: NvmeChannel;
  close(): Promise<void>;
}

async function attach(t: NvmfTarget, extra: Record<string, unknown> = {}): Promise<Attached> {
  const opts = await attachOptions({ name: 'nvme0', trtype: 'tcp', traddr: t.host, trsvcid: String(t.port), subnqn: t.nqn, ...extra });
  const ctrlr = new NvmeController(opts);
  await ctrlr.attach();
  const bdev = new NvmeBdev(ctrlr, ctrlr.namespaces[0]);
  const ch = new NvmeChannel(bdev.channelSpec());
  return {
    ctrlr,
    bdev,
    ch,
    async close() {
      ch.close();
      await ctrlr.detach();
    },
  };
}

const info = (c: NvmeController): Record<string, unknown> => c.ctrlrInfo().vhostd as Record<string, unknown>;

for (const kind of nvmfTargetKinds()) {
  describe(`NVMe/TCP initiator against ${kind}`, { timeout: 600_000 }, () => {
    let target: NvmfTarget | undefined;
    let skip: string | undefined;

    before(async () => {
      try {
        target = await startNvmfTarget(kind, 64);
      } catch (e) {
        if (e instanceof VmPrerequisiteMissing && !inCi()) skip = e.message;
        else throw e;
      }
    });
    after(async () => {
      await target?.stop();
    });

    test('attach, identify, and I/O that lands in the target image: in-capsule and R2T writes, parts, flush, unmap, write zeroes', async (t) => {
      if (skip || !target) return t.skip(skip);
      const a = await attach(target);
      try {
        const { ctrlr, bdev, ch } = a;
        assert.equal(bdev.name, 'nvme0n1');
        assert.equal(bdev.blockSize, 512);
        assert.equal(bdev.numBlocks, target.sizeBytes / 512);
        assert.equal(ctrlr.state, 'enabled');
        const spec = bdev.channelSpec();
        assert.ok(spec.inCapsule >= 4096, `in-capsule ${spec.inCapsule}`);
        // 4 KiB (in the capsule), 64 KiB (by R2T), 3 MiB (several commands of the transfer limit).
        for (const [lba, size] of [
          [0, 4096],
          [64, 65536],
          [2048, 3 << 20],
        ] as const) {
          const data = pattern(size, size & 0xff);
          assert.equal(await writeBlocks(ch, lba, data), BDEV_OK, `write ${size}`);
          assert.ok(Buffer.from(fileAt(target.image, lba * 512, size)).equals(Buffer.from(data)), `${size} bytes in the image`);
          const r = await readBlocks(ch, lba, size / 512);
          assert.equal(r.status, BDEV_OK);
          assert.ok(Buffer.from(r.data).equals(Buffer.from(data)), `${size} bytes read back`);
        }
        // 128 writes at once: more than a queue holds (127 in flight, the rest wait for entries).
        const ws: Waiter[] = [];
        const bufs: Uint8Array[] = [];
        for (let k = 0; k < 160; k++) {
          const b = pattern(8192, 300 + k);
          bufs.push(b);
          const w = new Waiter();
          ch.write(16384 + k * 16, 16, sgOf(b), 0, w);
          ws.push(w);
        }
        assert.deepEqual(await settle(ch, ws), new Array(160).fill(BDEV_OK));
        for (const k of [0, 77, 159]) assert.deepEqual(fileAt(target.image, (16384 + k * 16) * 512, 8192), bufs[k], `write ${k}`);
        const f = new Waiter();
        ch.flush(0, 0, f);
        assert.deepEqual(await settle(ch, [f]), [BDEV_OK]);
        if (bdev.ioTypes.write_zeroes) {
          const z = new Waiter();
          ch.writeZeroes(2048, 1024, z);
          assert.deepEqual(await settle(ch, [z]), [BDEV_OK]);
          assert.deepEqual(fileAt(target.image, 2048 * 512, 1024 * 512), new Uint8Array(1024 * 512));
          assert.ok(Buffer.from(fileAt(target.image, 3072 * 512, 4096)).equals(Buffer.from(pattern(3 << 20, 0).subarray(1024 * 512, 1024 * 512 + 4096))), 'after the zeroed range');
        }
        // Linux's nvmet offers Dataset Management; SPDK's aio bdev under nvmf_tgt does not.
        assert.equal(bdev.ioTypes.unmap, kind === 'linux-nvmet');
        const u = new Waiter();
        ch.unmap(16384, 2048, u);
        assert.deepEqual(await settle(ch, [u]), [bdev.ioTypes.unmap ? BDEV_OK : BDEV_ENOTSUP]);
        // Out of range: refused here, nothing sent.
        assert.equal((await readBlocks(ch, bdev.numBlocks, 1)).status, BDEV_EINVAL);
        const st = info(ctrlr);
        assert.equal(st.io_queues_connected, 1);
        assert.equal(st.queue_losses, 0);
        assert.equal(st.error_completions, 0);
      } finally {
        await a.close();
      }
    });

    test('header and data digests (CRC32C on every PDU) both ways', async (t) => {
      if (skip || !target) return t.skip(skip);
      const a = await attach(target, { hdgst: true, ddgst: true });
      try {
        assert.equal(info(a.ctrlr).header_digest, true);
        for (const size of [4096, 65536, 1 << 20]) {
          const data = pattern(size, 5);
          assert.equal(await writeBlocks(a.ch, 4096, data), BDEV_OK);
          assert.ok(Buffer.from(fileAt(target.image, 4096 * 512, size)).equals(Buffer.from(data)));
          const r = await readBlocks(a.ch, 4096, size / 512);
          assert.ok(Buffer.from(r.data).equals(Buffer.from(data)), `digested read of ${size}`);
        }
        assert.equal(info(a.ctrlr).queue_losses, 0);
      } finally {
        await a.close();
      }
    });

    test('an error from the target completes that I/O with an error; the queue stays up', async (t) => {
      if (skip || !target) return t.skip(skip);
      const a = await attach(target);
      try {
        // A channel that believes the namespace is larger sends reads past its end: the target
        // answers LBA Out of Range.
        const spec = { ...a.bdev.channelSpec(), numBlocks: a.bdev.numBlocks + 4096 };
        const big = new NvmeChannel(spec);
        try {
          assert.equal(await writeBlocks(big, 8, pattern(4096, 1)), BDEV_OK);
          const r = await readBlocks(big, a.bdev.numBlocks + 8, 8);
          // Linux 6.1's nvmet answers Internal Error (its bio fails), SPDK LBA Out of Range.
          assert.ok(r.status === BDEV_EINVAL || r.status === BDEV_EIO, `status ${r.status}`);
          assert.equal((await readBlocks(big, 8, 8)).status, BDEV_OK);
          const st = info(a.ctrlr);
          assert.equal(st.error_completions, 1);
          assert.match(String(st.last_error_status), /LBA_OUT_OF_RANGE|INTERNAL_DEVICE_ERROR/);
          assert.equal(st.queue_losses, 0);
        } finally {
          big.close();
        }
        // Connect errors are clear: a subsystem the target does not have.
        await assert.rejects(
          attachOptions({ name: 'x', trtype: 'tcp', traddr: target.host, trsvcid: String(target.port), subnqn: 'nqn.2026-12.io.vhostd:absent' }).then((o) => new NvmeController(o).attach()),
          (e: unknown) => e instanceof NvmeError && e.code === 'NVME_CONNECT_REFUSED' && /absent/.test(e.message),
        );
      } finally {
        await a.close();
      }
    });

    test('the target killed under writes and restarted: every write is resent and lands', async (t) => {
      if (skip || !target) return t.skip(skip);
      const tg = target;
      const a = await attach(tg, { reconnect_delay_sec: 1, ctrlr_loss_timeout_sec: -1, fast_io_fail_timeout_sec: 0 });
      try {
        const { ch, ctrlr } = a;
        assert.equal(await writeBlocks(ch, 0, pattern(4096, 0)), BDEV_OK);
        const ws: Waiter[] = [];
        const bufs: Uint8Array[] = [];
        for (let k = 0; k < 64; k++) {
          const b = pattern(32768, 100 + k);
          bufs.push(b);
          const w = new Waiter();
          ch.write(8192 + k * 64, 64, sgOf(b), 0, w);
          ws.push(w);
        }
        ch.poll();
        await tg.kill();
        await pollFor(ch, 1500);
        assert.ok(ws.some((w) => w.status === null), 'some writes still held while the target is down');
        assert.notEqual(ctrlr.state, 'enabled');
        // More writes while it is away.
        for (let k = 64; k < 80; k++) {
          const b = pattern(32768, 100 + k);
          bufs.push(b);
          const w = new Waiter();
          ch.write(8192 + k * 64, 64, sgOf(b), 0, w);
          ws.push(w);
        }
        const restarted = tg.start();
        await settle(ch, ws, 180_000);
        await restarted;
        assert.deepEqual(ws.map((w) => w.status), new Array(80).fill(BDEV_OK));
        for (let k = 0; k < 80; k++) assert.ok(Buffer.from(fileAt(tg.image, (8192 + k * 64) * 512, 32768)).equals(Buffer.from(bufs[k])), `write ${k} in the image`);
        const st = info(ctrlr);
        assert.equal(ctrlr.state, 'enabled');
        assert.ok((st.resets as number) >= 1, JSON.stringify(st));
        assert.ok((st.queue_losses as number) >= 1, JSON.stringify(st));
        assert.equal(st.io_queues_connected, 1);
        assert.equal(st.failed_requests, 0);
      } finally {
        await a.close();
      }
    });

    test('a target that stays away: held I/O fails after fast_io_fail_timeout_sec, the controller after ctrlr_loss_timeout_sec', async (t) => {
      if (skip || !target) return t.skip(skip);
      const tg = target;
      const a = await attach(tg, { reconnect_delay_sec: 1, fast_io_fail_timeout_sec: 2, ctrlr_loss_timeout_sec: 5 });
      try {
        const { ch, ctrlr } = a;
        assert.equal(await writeBlocks(ch, 0, pattern(4096, 0)), BDEV_OK);
        await tg.kill();
        const t0 = Date.now();
        const w = new Waiter();
        ch.write(0, 8, sgOf(pattern(4096, 1)), 0, w);
        await settle(ch, [w], 20_000);
        const held = w.at - t0;
        assert.equal(w.status, BDEV_EIO);
        assert.ok(held >= 1500, `held ${held} ms before failing (fast_io_fail_timeout_sec 2)`);
        // Past fast_io_fail, new I/O fails at once.
        const w2 = new Waiter();
        ch.read(0, 8, sgOf(new Uint8Array(4096)), 0, w2);
        assert.equal(w2.status, BDEV_EIO);
        const until = Date.now() + 15_000;
        while (ctrlr.state !== 'failed' && Date.now() < until) await pollFor(ch, 100);
        assert.equal(ctrlr.state, 'failed');
        assert.ok(Date.now() - t0 >= 4500, 'failed after ctrlr_loss_timeout_sec');
        assert.ok((info(ctrlr).failed_requests as number) >= 2);
      } finally {
        await a.close();
        await tg.start();
      }
    });
  });
}
