// A Linux guest on a vhost-user-blk disk backed by a Ceph RBD image (a real single-node cluster on
// 127.0.0.1, ../integration/ceph-cluster.ts): size, filesystem, fio crc32c write + verify on two
// queues (over vhostd's two reactors, which share the image's completion queue). Then the image is
// read back by another client (`rbd export`): the guest's marker is in it, and the host's fio
// verifies every block the guest's fio wrote.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureGuestImage } from './guest-image.ts';
import { findQemu, runVm } from './qemu.ts';
import { assertDiskRun, assertMarker, diskScenarioParams, SECTOR, type DiskScenario } from './disk-scenario.ts';
import { formatResults } from './guest-results.ts';
import { prepareOrSkip } from './vm-prerequisites.ts';
import { VmPrerequisiteMissing } from './vm-errors.ts';
import { vhostUserBlkArgs } from './vhost-user-args.ts';
import { startDaemon } from '../integration/daemon-process.ts';
import { cephAvailable, startCephCluster } from '../integration/ceph-cluster.ts';
import { VM_DAEMON, withDaemonLog } from './daemon-log.ts';

const IMAGE_MIB = 256;
const FIO_SIZE = '32M';

async function rbdGuest(t: TestContext): Promise<void> {
  const prepared = await prepareOrSkip(t, async () => {
    if (!cephAvailable()) throw new VmPrerequisiteMissing('ceph-mon/ceph-osd/rbd are not installed (apt-get install ceph-mon ceph-osd ceph-common)');
    return { qemu: findQemu('system'), image: await ensureGuestImage() };
  });
  if (prepared === undefined) return;
  const { qemu, image } = prepared;
  const ceph = await startCephCluster();
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-rbd-vm-'));
  let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
  // The daemon goes first, while the cluster it has images on is still there.
  t.after(async () => {
    const code = d ? await d.stop() : 0;
    await ceph.stop();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(code, 0, `vhostd exit; stderr:\n${d?.stderr.join('').slice(-20000)}`);
  });
  await ceph.rbd(['create', '--size', `${IMAGE_MIB}M`, 'rbd/vm0']);
  d = await startDaemon(['-m', '0x3'], VM_DAEMON);
  await d.call('bdev_rbd_register_cluster', { name: 'ceph', config_file: ceph.conf });
  await d.call('bdev_rbd_create', { name: 'rbd0', pool_name: 'rbd', rbd_name: 'vm0', cluster_name: 'ceph', block_size: SECTOR });
  await d.call('vhost_create_blk_controller', { ctrlr: 'rbd0', dev_name: 'rbd0' });

  const disk: DiskScenario = {
    test: 'blk-disk',
    sizeSectors: (IMAGE_MIB << 20) / SECTOR,
    marker: `rbd-${qemu.version}-${process.pid}`,
    // Past fio's region (the host verifies that region block by block).
    markerLba: (40 << 20) / SECTOR,
    fioSize: FIO_SIZE,
    limits: { logicalBlockSize: 512, physicalBlockSize: 512, discardMaxBytes: 0x3fffff * 512, discardGranularity: 512, hwQueues: 2 },
  };
  const run = await runVm({ name: `vhostd-rbd-${qemu.version}`, qemu, image, params: diskScenarioParams(disk), deviceArgs: vhostUserBlkArgs('c0', d.socket('rbd0'), 2), cpus: 2, timeoutMs: 420_000 });
  t.diagnostic(`${run.logPath} (${run.elapsedMs} ms):\n${formatResults(run.results)}`);
  const [bdev] = (await d.call('bdev_get_bdevs', { name: 'rbd0' })) as { driver_specific: { rbd: Record<string, unknown> } }[];
  t.diagnostic(`rbd0: ${JSON.stringify(bdev.driver_specific.rbd)}`);

  await t.test('guest on an RBD image: size, queue limits, filesystem, fio crc32c verify on 2 queues, discard', () => withDaemonLog(d as NonNullable<typeof d>, () => assertDiskRun(run, disk)));
  await t.test('the image read back by rbd export holds the marker, and every block fio wrote verifies on the host', async () => {
    assert.equal(bdev.driver_specific.rbd.failed_requests, 0);
    const exported = join(dir, 'vm0.raw');
    await ceph.rbd(['export', 'rbd/vm0', exported], 120_000);
    assertMarker(exported, disk);
    // The guest's job, in verify-only mode, over the exported file (same seed, same offsets).
    const out = execFileSync(
      'fio',
      ['--name=vhostd', `--filename=${exported}`, '--rw=randwrite', '--bs=4k', '--iodepth=1', '--ioengine=psync', '--verify=crc32c', `--size=${FIO_SIZE}`, '--verify_only', '--verify_state_save=0'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.match(out, /vhostd: \(groupid=0/, out);
    assert.doesNotMatch(out, /verify.*(bad|fail)|crc32c: verify failed/i, out);
  });
}

test('QEMU from PATH: a vhost-user-blk guest on a Ceph RBD image', { timeout: 900_000 }, (t) => rbdGuest(t));
