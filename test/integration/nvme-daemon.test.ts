// The NVMe/TCP initiator as a user runs it: vhostd (two reactors) attaches a real target's
// subsystem by RPC (bdev_nvme_attach_controller), a virtio-blk front-end writes and reads through
// a vhost-user-blk controller on both queues (one I/O queue per reactor), the data is in the
// target's image; the target killed and restarted under guest writes costs no acknowledged write;
// bdev_get_bdevs and bdev_nvme_get_controllers show the state; save_config attaches it again in a
// new daemon; detach removes the bdevs, and is refused while a controller uses one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDaemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk } from '../../src/frontend/qemu-like-blk.ts';
import { RpcError } from '../../src/rpc/rpc-error.ts';
import { inCi } from '../vm/vm-prerequisites.ts';
import { VmPrerequisiteMissing } from '../vm/vm-errors.ts';
import { nvmfTargetKinds, startNvmfTarget, type NvmfTarget } from './nvmf-targets.ts';

const S_OK = 0;

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

const pattern = (len: number, seed: number): Uint8Array => new Uint8Array(len).map((_, i) => (i * 13 + seed * 7 + (i >> 8)) & 0xff);

interface CtrlrInfo {
  state: string;
  cntlid: number;
  trid: Record<string, string>;
  vhostd: { io_queues_connected: number; resets: number; queue_losses: number; resent_requests: number; failed_requests: number };
}

async function ctrlrInfo(d: Awaited<ReturnType<typeof startDaemon>>): Promise<CtrlrInfo> {
  const [c] = (await d.call('bdev_nvme_get_controllers', { name: 'nv' })) as { name: string; ctrlrs: CtrlrInfo[] }[];
  assert.equal(c.name, 'nv');
  return c.ctrlrs[0];
}

for (const kind of nvmfTargetKinds()) {
  describe(`vhostd on an NVMe/TCP namespace of ${kind}`, { timeout: 600_000 }, () => {
    let target: NvmfTarget | undefined;
    let skip: string | undefined;
    before(async () => {
      try {
        target = await startNvmfTarget(kind, 32);
      } catch (e) {
        if (e instanceof VmPrerequisiteMissing && !inCi()) skip = e.message;
        else throw e;
      }
    });
    after(async () => {
      await target?.stop();
    });

    test('guest I/O on two reactors, a target restart under writes, state in bdev_get_bdevs, save_config, detach', async (t) => {
      if (skip || !target) return t.skip(skip);
      const tg = target;
      const arena = new GuestMemoryArena();
      const d = await startDaemon(['-m', '0x3']);
      let saved = '';
      try {
        // Clear errors: an unsupported transport, a port nobody listens on, bad timeouts.
        await assert.rejects(d.call('bdev_nvme_attach_controller', { name: 'x', trtype: 'RDMA', traddr: '127.0.0.1', subnqn: tg.nqn }), (e: unknown) => e instanceof RpcError && /NVMe\/TCP only/.test(JSON.stringify(e.data) + e.message));
        await assert.rejects(d.call('bdev_nvme_attach_controller', { name: 'x', trtype: 'TCP', traddr: '127.0.0.1', trsvcid: '1', subnqn: tg.nqn }), (e: unknown) => e instanceof RpcError && /ECONNREFUSED/.test(JSON.stringify(e.data) + e.message));
        await assert.rejects(
          d.call('bdev_nvme_attach_controller', { name: 'x', trtype: 'TCP', traddr: '127.0.0.1', subnqn: tg.nqn, ctrlr_loss_timeout_sec: 10, reconnect_delay_sec: 0 }),
          (e: unknown) => e instanceof RpcError && /reconnect_delay_sec above 0/.test(JSON.stringify(e.data) + e.message),
        );
        assert.deepEqual(await d.call('bdev_nvme_get_controllers'), []);
        const names = await d.call('bdev_nvme_attach_controller', {
          name: 'nv', trtype: 'tcp', adrfam: 'ipv4', traddr: tg.host, trsvcid: String(tg.port), subnqn: tg.nqn, reconnect_delay_sec: 1, ctrlr_loss_timeout_sec: -1, fast_io_fail_timeout_sec: 0,
        });
        assert.deepEqual(names, ['nv' + 'n1']);
        const [b] = (await d.call('bdev_get_bdevs', { name: 'nvn1' })) as { product_name: string; num_blocks: number; block_size: number; driver_specific: { nvme: { trid: { traddr: string }; ctrlr_data: { model_number: string } }[] } }[];
        assert.equal(b.product_name, 'NVMe disk');
        assert.equal(b.num_blocks * b.block_size, tg.sizeBytes);
        assert.equal(b.driver_specific.nvme[0].trid.traddr, tg.host);
        await d.call('vhost_create_blk_controller', { ctrlr: 'n', dev_name: 'nvn1' });
        // Refused while the controller uses the bdev.
        await assert.rejects(d.call('bdev_nvme_detach_controller', { name: 'nv' }), (e: unknown) => e instanceof RpcError && /claimed/.test(JSON.stringify(e.data) + e.message));
        const c = await connectLikeQemuBlk({ socketPath: d.socket('n'), arena, numQueues: 2, queueSize: 128, driver: { maxDataBytes: 131072, timeoutMs: 120_000 } });
        try {
          assert.equal(c.config.capacity, tg.sizeBytes / 512);
          const data = pattern(131072, 1);
          const ws = [];
          for (let k = 0; k < 32; k++) ws.push(c.driver.write(k * 256, data, { qi: k % 2 }));
          for (const w of await Promise.all(ws)) assert.equal(w.status, S_OK);
          assert.equal((await c.driver.flush()).status, S_OK);
          assert.deepEqual(fileAt(tg.image, 7 * 131072, 131072), data);
          assert.deepEqual((await c.driver.read(3 * 256, 256, { qi: 1 })).data, data);
          assert.deepEqual((await c.driver.read(4 * 256, 256, { qi: 0 })).data, data);
          assert.equal((await c.driver.writeZeroes([{ sector: 256, numSectors: 256 }], false)).status, S_OK);
          assert.deepEqual((await c.driver.read(256, 256)).data, new Uint8Array(131072));
          let info = await ctrlrInfo(d);
          assert.equal(info.state, 'enabled');
          assert.equal(info.vhostd.io_queues_connected, 2, 'one I/O queue per reactor');

          // The target dies with 48 guest writes in flight and comes back.
          const writes: Promise<{ status: number }>[] = [];
          const bufs: Uint8Array[] = [];
          for (let k = 0; k < 48; k++) {
            const buf = pattern(16384, 50 + k);
            bufs.push(buf);
            writes.push(c.driver.write(16384 + k * 32, buf, { qi: k % 2 }));
          }
          await tg.kill();
          let lateDone = 0;
          for (let k = 48; k < 64; k++) {
            const buf = pattern(16384, 50 + k);
            bufs.push(buf);
            writes.push(
              c.driver.write(16384 + k * 32, buf, { qi: k % 2 }).then((r) => {
                lateDone++;
                return r;
              }),
            );
          }
          await sleep(1500);
          assert.equal(lateDone, 0, 'writes wait while the target is away');
          info = await ctrlrInfo(d);
          assert.equal(info.state, 'resetting');
          await tg.start();
          for (const w of await Promise.all(writes)) assert.equal(w.status, S_OK);
          assert.equal((await c.driver.flush()).status, S_OK);
          for (let k = 0; k < 64; k++) assert.deepEqual(fileAt(tg.image, (16384 + k * 32) * 512, 16384), bufs[k], `write ${k} in the image`);
          info = await ctrlrInfo(d);
          assert.equal(info.state, 'enabled');
          assert.ok(info.vhostd.resets >= 1 && info.vhostd.queue_losses >= 1, JSON.stringify(info));
          assert.equal(info.vhostd.failed_requests, 0);
          saved = JSON.stringify(await d.call('save_config'));
        } finally {
          await c.stop();
          c.close();
        }
        await d.call('vhost_delete_controller', { ctrlr: 'n' });
        assert.equal(await d.call('bdev_nvme_detach_controller', { name: 'nv' }), true);
        assert.deepEqual(await d.call('bdev_get_bdevs'), []);
        assert.deepEqual(await d.call('bdev_nvme_get_controllers'), []);
      } finally {
        assert.equal(await d.stop(), 0, d.stderr.join(''));
      }
      // The saved configuration attaches the same subsystem again, with the same host NQN.
      const call = (JSON.parse(saved) as { subsystems: { subsystem: string; config: { method: string; params: Record<string, unknown> }[] }[] }).subsystems
        .find((s) => s.subsystem === 'bdev')
        ?.config.find((x) => x.method === 'bdev_nvme_attach_controller');
      assert.equal(call?.params.trsvcid, String(tg.port));
      assert.equal(call?.params.reconnect_delay_sec, 1);
      assert.match(String(call?.params.hostnqn), /^nqn\.2014-08\.org\.nvmexpress:uuid:/);
      const cfgFile = join(tg.image + '.saved.json');
      writeFileSync(cfgFile, saved);
      const d2 = await startDaemon(['-c', cfgFile]);
      try {
        await d2.call('framework_wait_init');
        const c2 = await connectLikeQemuBlk({ socketPath: d2.socket('n'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 131072, timeoutMs: 30_000 } });
        try {
          assert.deepEqual((await c2.driver.read(3 * 256, 256)).data, pattern(131072, 1));
        } finally {
          await c2.stop();
          c2.close();
        }
        const [c] = (await d2.call('bdev_nvme_get_controllers')) as { ctrlrs: { host: { nqn: string } }[] }[];
        assert.equal(c.ctrlrs[0].host.nqn, call?.params.hostnqn);
      } finally {
        arena.close();
        assert.equal(await d2.stop(), 0, d2.stderr.join(''));
      }
    });
  });
}
