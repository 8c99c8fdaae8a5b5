// Harness self-test: the disk scenarios against QEMU's own in-process devices
// (virtio-scsi-pci + scsi-hd, virtio-blk-pci, raw files), two VMs at once, on
// the QEMU from PATH and on QEMU 7.2. The vhostd tests reuse all of this and
// swap only the device arguments for vhost-user ones.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureGuestImage, VM_BUILD_DIR } from './guest-image.ts';
import { findQemu, runVm } from './qemu.ts';
import type { QemuFlavour } from './qemu.ts';
import { assertDiskRun, assertMarker, diskScenarioParams, SECTOR } from './disk-scenario.ts';
import type { DiskScenario } from './disk-scenario.ts';
import { formatResults } from './guest-results.ts';
import { prepareOrSkip } from './vm-prerequisites.ts';

function scsiHdArgs(file: string): string[] {
  return [
    '-device', 'virtio-scsi-pci,id=scsi0',
    '-drive', `file=${file},format=raw,if=none,id=d0,discard=unmap`,
    '-device', 'scsi-hd,drive=d0,bus=scsi0.0',
  ];
}

function virtioBlkArgs(file: string): string[] {
  return [
    '-drive', `file=${file},format=raw,if=none,id=d1,discard=unmap`,
    '-device', 'virtio-blk-pci,drive=d1',
  ];
}

async function twoVmsAtOnce(t: TestContext, flavour: QemuFlavour): Promise<void> {
  const prepared = await prepareOrSkip(t, async () => ({ qemu: findQemu(flavour), image: await ensureGuestImage() }));
  if (prepared === undefined) return;
  const { qemu, image } = prepared;
  const dir = mkdtempSync(join(VM_BUILD_DIR, 'disks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tag = `q${qemu.version}-${process.pid}`;
  // Different sizes and markers: each VM must see its own disk and write only there.
  const scsi: DiskScenario = { test: 'scsi-disk', sizeSectors: 256 * 2048, marker: `scsi-${tag}`, markerLba: 4096 };
  const blk: DiskScenario = { test: 'blk-disk', sizeSectors: 192 * 2048, marker: `blk-${tag}`, markerLba: 4096 };
  const scsiFile = join(dir, 'scsi.raw');
  const blkFile = join(dir, 'blk.raw');
  for (const [file, s] of [[scsiFile, scsi], [blkFile, blk]] as const) {
    writeFileSync(file, '');
    truncateSync(file, s.sizeSectors * SECTOR);
  }

  const [scsiRun, blkRun] = await Promise.all([
    runVm({ name: `builtin-scsi-${qemu.version}`, qemu, image, params: diskScenarioParams(scsi), deviceArgs: scsiHdArgs(scsiFile) }),
    runVm({ name: `builtin-blk-${qemu.version}`, qemu, image, params: diskScenarioParams(blk), deviceArgs: virtioBlkArgs(blkFile) }),
  ]);
  t.diagnostic(`QEMU ${qemu.version} scsi-disk (${scsiRun.elapsedMs} ms, ${scsiRun.logPath}):\n${formatResults(scsiRun.results)}`);
  t.diagnostic(`QEMU ${qemu.version} blk-disk (${blkRun.elapsedMs} ms, ${blkRun.logPath}):\n${formatResults(blkRun.results)}`);

  await t.test('scsi-disk on virtio-scsi-pci + scsi-hd', () => {
    assertDiskRun(scsiRun, scsi);
    assertMarker(scsiFile, scsi);
  });
  await t.test('blk-disk on virtio-blk-pci', () => {
    assertDiskRun(blkRun, blk);
    assertMarker(blkFile, blk);
  });
}

test('QEMU from PATH: built-in virtio-scsi and virtio-blk guests, two VMs at once', { timeout: 300_000 }, (t) =>
  twoVmsAtOnce(t, 'system'));

test('QEMU 7.2 (build/qemu-7.2): built-in virtio-scsi and virtio-blk guests, two VMs at once', { timeout: 300_000 }, (t) =>
  twoVmsAtOnce(t, '7.2'));
