// Linux guests on vhostd's vhost-user-blk controllers: /dev/vda with the right size, block sizes and
// discard limits, filesystem + fio verify on two queues, a read-only controller, and a resize that
// reaches the running guest.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ensureGuestImage } from './guest-image.ts';
import { findQemu, runVm, type QemuFlavour, type VmRun } from './qemu.ts';
import { assertDiskRun, diskScenarioParams, SECTOR, type DiskScenario } from './disk-scenario.ts';
import { formatResults } from './guest-results.ts';
import { prepareOrSkip } from './vm-prerequisites.ts';
import { vhostUserBlkArgs } from './vhost-user-args.ts';
import { startDaemon } from '../integration/daemon-process.ts';
import { VM_DAEMON, withDaemonLog } from './daemon-log.ts';
import { assertGuestSteps } from './run-assertions.ts';

const MIB_SECTORS = 2048;

async function blkGuests(t: TestContext, flavour: QemuFlavour): Promise<void> {
  const prepared = await prepareOrSkip(t, async () => ({ qemu: findQemu(flavour), image: await ensureGuestImage() }));
  if (prepared === undefined) return;
  const { qemu, image } = prepared;
  const d = await startDaemon(['-m', '0x3'], VM_DAEMON);
  t.after(async () => assert.equal(await d.stop(), 0, `vhostd exit; stderr:\n${d.stderr.join('')}`));

  await d.call('bdev_malloc_create', { name: 'm0', num_blocks: 256 * MIB_SECTORS, block_size: SECTOR });
  await d.call('bdev_malloc_create', { name: 'r0', num_blocks: 64 * MIB_SECTORS, block_size: SECTOR });
  await d.call('bdev_null_create', { name: 'n0', num_blocks: 128 * MIB_SECTORS, block_size: SECTOR });
  await d.call('vhost_create_blk_controller', { ctrlr: 'blk0', dev_name: 'm0' });
  await d.call('vhost_create_blk_controller', { ctrlr: 'ro0', dev_name: 'r0', readonly: true });
  await d.call('vhost_create_blk_controller', { ctrlr: 'rs0', dev_name: 'n0' });

  const disk: DiskScenario = {
    test: 'blk-disk',
    sizeSectors: 256 * MIB_SECTORS,
    marker: `blk-${qemu.version}-${process.pid}`,
    markerLba: 4096,
    // What the guest derives from vhostd's config space: 512-byte blocks, discard up to
    // max_discard_sectors (0x3fffff sectors) with 512-byte granularity, two hardware queues.
    limits: { logicalBlockSize: 512, physicalBlockSize: 512, discardMaxBytes: 0x3fffff * 512, discardGranularity: 512, hwQueues: 2 },
  };
  let resizedAt = -1;
  const [diskRun, roRun, resizeRun] = await Promise.all([
    runVm({ name: `vhostd-blk0-${qemu.version}`, qemu, image, params: diskScenarioParams(disk), deviceArgs: vhostUserBlkArgs('c0', d.socket('blk0'), 2), cpus: 2, timeoutMs: 300_000 }),
    runVm({
      name: `vhostd-ro0-${qemu.version}`,
      qemu,
      image,
      params: { test: 'blk-readonly', size_sectors: 64 * MIB_SECTORS },
      deviceArgs: vhostUserBlkArgs('c1', d.socket('ro0'), 1),
      timeoutMs: 300_000,
    }),
    runVm({
      name: `vhostd-rs0-${qemu.version}`,
      qemu,
      image,
      params: { test: 'blk-resize', size_sectors: 128 * MIB_SECTORS, new_size_sectors: 192 * MIB_SECTORS },
      deviceArgs: vhostUserBlkArgs('c2', d.socket('rs0'), 1),
      timeoutMs: 300_000,
      // Grow the bdev once the guest has seen the old size.
      onResult: (r) => {
        if (r.name === 'size' && r.status === 'PASS') {
          resizedAt = r.atMs;
          void d.call('bdev_null_resize', { name: 'n0', new_size: 192 });
        }
      },
    }),
  ]);
  for (const run of [diskRun, roRun, resizeRun]) t.diagnostic(`${run.logPath} (${run.elapsedMs} ms):\n${formatResults(run.results)}`);

  await t.test('blk0: size, queue limits, filesystem, fio verify on 2 queues, discard', () => withDaemonLog(d, () => assertDiskRun(diskRun, disk)));
  await t.test('ro0: read-only flag, writes refused, reads work', () =>
    withDaemonLog(d, () => assertGuestSteps(roRun, ['boot', 'modules', 'disk', 'size', 'ro-flag', 'write-refused', 'read'])));
  await t.test('rs0: a bdev resize shows in /sys/block/vda/size without a reboot', () => {
    assert.ok(resizedAt > 0, 'the guest reported its initial size');
    withDaemonLog(d, () => assertGuestSteps(resizeRun, ['boot', 'modules', 'disk', 'size', 'resized']));
  });
}

test('QEMU from PATH: vhost-user-blk guests (disk, read-only, resize)', { timeout: 600_000 }, (t) => blkGuests(t, 'system'));

test('QEMU 7.2: vhost-user-blk guests (disk, read-only, resize)', { timeout: 600_000 }, (t) => blkGuests(t, '7.2'));
