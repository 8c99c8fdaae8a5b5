// Guests with packed virtqueues (QEMU packed=on) on vhost-user-blk and vhost-user-scsi: the same
// filesystem and fio crc32c verify as with split rings.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { ensureGuestImage } from './guest-image.ts';
import { findQemu, runVm, type QemuFlavour } from './qemu.ts';
import { assertDiskRun, diskScenarioParams, SECTOR, type DiskScenario } from './disk-scenario.ts';
import { formatResults } from './guest-results.ts';
import { prepareOrSkip } from './vm-prerequisites.ts';
import { VM_DAEMON, withDaemonLog } from './daemon-log.ts';
import { startDaemon } from '../integration/daemon-process.ts';
import assert from 'node:assert/strict';

async function packedGuests(t: TestContext, flavour: QemuFlavour): Promise<void> {
  const prepared = await prepareOrSkip(t, async () => ({ qemu: findQemu(flavour), image: await ensureGuestImage() }));
  if (prepared === undefined) return;
  const { qemu, image } = prepared;
  const d = await startDaemon(['-m', '0x3'], VM_DAEMON);
  t.after(async () => assert.equal(await d.stop(), 0, `vhostd exit; stderr:\n${d.stderr.join('')}`));
  const size = 192 * 2048;
  await d.call('bdev_malloc_create', { name: 'b0', num_blocks: size, block_size: SECTOR });
  await d.call('bdev_malloc_create', { name: 's0', num_blocks: size, block_size: SECTOR });
  await d.call('vhost_create_blk_controller', { ctrlr: 'pblk', dev_name: 'b0', packed_ring: true });
  await d.call('vhost_create_scsi_controller', { ctrlr: 'pscsi' });
  await d.call('vhost_scsi_controller_add_target', { ctrlr: 'pscsi', scsi_target_num: 0, bdev_name: 's0' });
  const tag = `${qemu.version}-${process.pid}`;
  const blk: DiskScenario = { test: 'blk-disk', sizeSectors: size, marker: `pb-${tag}`, markerLba: 4096, feature: 34 };
  const scsi: DiskScenario = { test: 'scsi-disk', sizeSectors: size, marker: `ps-${tag}`, markerLba: 4096, feature: 34 };
  const [blkRun, scsiRun] = await Promise.all([
    runVm({
      name: `vhostd-packed-blk-${qemu.version}`,
      qemu,
      image,
      params: diskScenarioParams(blk),
      deviceArgs: ['-chardev', `socket,id=c0,path=${d.socket('pblk')}`, '-device', 'vhost-user-blk-pci,chardev=c0,num-queues=1,queue-size=128,packed=on'],
      timeoutMs: 300_000,
    }),
    runVm({
      name: `vhostd-packed-scsi-${qemu.version}`,
      qemu,
      image,
      params: diskScenarioParams(scsi),
      deviceArgs: ['-chardev', `socket,id=c1,path=${d.socket('pscsi')}`, '-device', 'vhost-user-scsi-pci,chardev=c1,num_queues=1,virtqueue_size=128,packed=on'],
      timeoutMs: 300_000,
    }),
  ]);
  for (const run of [blkRun, scsiRun]) t.diagnostic(`${run.logPath} (${run.elapsedMs} ms):\n${formatResults(run.results)}`);
  await t.test('vhost-user-blk with packed=on: filesystem, fio verify, discard', () => withDaemonLog(d, () => assertDiskRun(blkRun, blk)));
  await t.test('vhost-user-scsi with packed=on: probe, filesystem, fio verify, discard', () => withDaemonLog(d, () => assertDiskRun(scsiRun, scsi)));
}

test('QEMU from PATH: packed virtqueues on blk and scsi', { timeout: 600_000 }, (t) => packedGuests(t, 'system'));

test('QEMU 7.2: packed virtqueues on blk and scsi', { timeout: 600_000 }, (t) => packedGuests(t, '7.2'));
