// A real Linux guest (QEMU under TCG) uses vhostd's vhost-user-scsi disk: probing with sg3_utils,
// mkfs/mount/files, fio with crc32c verify, discard; two VMs on two controllers of one daemon.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ensureGuestImage } from './guest-image.ts';
import { findQemu, runVm, type QemuFlavour } from './qemu.ts';
import { assertDiskRun, diskScenarioParams, markerSector, SECTOR, type DiskScenario } from './disk-scenario.ts';
import { formatResults } from './guest-results.ts';
import { prepareOrSkip } from './vm-prerequisites.ts';
import { vhostUserScsiArgs } from './vhost-user-args.ts';
import { VM_DAEMON, withDaemonLog } from './daemon-log.ts';
import { startDaemon, type Daemon } from '../integration/daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemu } from '../../src/frontend/qemu-like-session.ts';
import { VirtioScsiDriver } from '../../src/frontend/virtio-scsi-driver.ts';

/** Reads the marker sector back through the daemon (a RAM bdev has no file to look at). */
async function readMarker(d: Daemon, ctrlr: string, lba: number): Promise<Uint8Array> {
  const arena = new GuestMemoryArena();
  const session = await connectLikeQemu({ socketPath: d.socket(ctrlr), arena, queueSizes: [16, 16, 32] });
  const drv = VirtioScsiDriver.fromSession(session, { maxDataBytes: 65536, timeoutMs: 5000 });
  drv.start();
  try {
    const lun = drv.lun();
    await lun.testUnitReady();
    const r = await lun.read10(lba, 1);
    assert.equal(r.status, 0);
    return r.data.slice();
  } finally {
    drv.close();
    await session.stop();
    session.close();
    arena.close();
  }
}

async function twoGuests(t: TestContext, flavour: QemuFlavour): Promise<void> {
  const prepared = await prepareOrSkip(t, async () => ({ qemu: findQemu(flavour), image: await ensureGuestImage() }));
  if (prepared === undefined) return;
  const { qemu, image } = prepared;
  const d = await startDaemon(['-m', '0x3'], VM_DAEMON);
  t.after(async () => {
    const code = await d.stop();
    assert.equal(code, 0, `vhostd exit code; stderr:\n${d.stderr.join('')}`);
  });
  const tag = `q${qemu.version}-${process.pid}`;
  const disks: (DiskScenario & { ctrlr: string; bdev: string })[] = [
    { ctrlr: 'vhost.0', bdev: 'm0', test: 'scsi-disk', sizeSectors: 256 * 2048, marker: `a-${tag}`, markerLba: 4096 },
    { ctrlr: 'vhost.1', bdev: 'm1', test: 'scsi-disk', sizeSectors: 192 * 2048, marker: `b-${tag}`, markerLba: 6144 },
  ];
  for (const s of disks) {
    await d.call('bdev_malloc_create', { name: s.bdev, num_blocks: s.sizeSectors, block_size: SECTOR });
    await d.call('vhost_create_scsi_controller', { ctrlr: s.ctrlr });
    await d.call('vhost_scsi_controller_add_target', { ctrlr: s.ctrlr, scsi_target_num: 0, bdev_name: s.bdev });
  }
  const runs = await Promise.all(
    disks.map((s, i) =>
      runVm({
        name: `vhostd-${s.ctrlr}-${qemu.version}`,
        qemu,
        image,
        params: diskScenarioParams(s),
        deviceArgs: vhostUserScsiArgs(`c${i}`, d.socket(s.ctrlr), 2),
        // Two vCPUs: Linux uses min(num_queues, CPUs) request queues.
        cpus: 2,
        timeoutMs: 300_000,
      }),
    ),
  );
  for (const [i, run] of runs.entries()) {
    t.diagnostic(`QEMU ${qemu.version} ${disks[i].ctrlr} (${run.elapsedMs} ms, ${run.logPath}):\n${formatResults(run.results)}`);
  }
  await t.test('the four request queues of the two controllers are spread two per reactor', async () => {
    const infos = (await d.call('vhost_get_controllers')) as { ctrlr: string; backend_specific: { queue_cpus: Record<string, number> } }[];
    const perCpu = [0, 0];
    for (const info of infos) {
      const cpus = info.backend_specific.queue_cpus;
      assert.deepEqual(Object.keys(cpus).sort(), ['0', '1', '2', '3'], `${info.ctrlr}: the guest started control, event and two request queues`);
      perCpu[cpus[2]]++;
      perCpu[cpus[3]]++;
    }
    assert.deepEqual(perCpu, [2, 2], JSON.stringify(infos.map((i) => i.backend_specific.queue_cpus)));
  });
  for (const [i, s] of disks.entries()) {
    await t.test(`guest on ${s.ctrlr}: probe, filesystem, fio verify, discard`, () => withDaemonLog(d, () => assertDiskRun(runs[i], s)));
    await t.test(`guest on ${s.ctrlr} wrote its marker to its own disk`, async () => {
      assert.deepEqual(await readMarker(d, s.ctrlr, s.markerLba), markerSector(s.marker));
    });
  }
}

test('QEMU from PATH: two guests on two vhostd vhost-user-scsi controllers at once', { timeout: 600_000 }, (t) => twoGuests(t, 'system'));

test('QEMU 7.2: two guests on two vhostd vhost-user-scsi controllers at once', { timeout: 600_000 }, (t) => twoGuests(t, '7.2'));
