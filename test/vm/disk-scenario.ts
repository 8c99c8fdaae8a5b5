// The disk scenarios (test/vm/guest/scsi-disk.sh, blk-disk.sh) seen from the
// host: their kernel parameters, the steps they must report, and the marker
// sector they leave in the backing store.
import assert from 'node:assert/strict';
import { openSync, readSync, closeSync } from 'node:fs';
import { assertGuestSteps } from './run-assertions.ts';
import type { VmRun } from './qemu.ts';

export type DiskScenarioName = 'scsi-disk' | 'blk-disk';

export interface DiskScenario {
  test: DiskScenarioName;
  /** Disk size in 512-byte sectors; the guest checks the kernel sees exactly this. */
  sizeSectors: number;
  /** Written as "VHOSTD-MARKER <marker>\n" into sector markerLba; [A-Za-z0-9_.-]. */
  marker: string;
  markerLba: number;
  /** fio region, e.g. "32M". */
  fioSize?: string;
  /** The device offers UNMAP / discard (default true). */
  discard?: boolean;
  /** A virtio feature bit every virtio device of the VM must have negotiated (adds the feature step). */
  feature?: number;
  /** blk-disk: queue limits the guest must derive (adds the queue-limits step). */
  limits?: { logicalBlockSize: number; physicalBlockSize: number; discardMaxBytes: number; discardGranularity: number; hwQueues?: number };
}

export const SECTOR = 512;

export function diskScenarioParams(s: DiskScenario): Record<string, string | number> {
  return {
    test: s.test,
    size_sectors: s.sizeSectors,
    marker: s.marker,
    marker_lba: s.markerLba,
    fio_size: s.fioSize ?? '32M',
    discard: s.discard === false ? 0 : 1,
    ...(s.feature !== undefined ? { feature: s.feature } : {}),
    ...(s.limits
      ? {
          lbs: s.limits.logicalBlockSize,
          pbs: s.limits.physicalBlockSize,
          dmax: s.limits.discardMaxBytes,
          dgran: s.limits.discardGranularity,
          ...(s.limits.hwQueues ? { mq: s.limits.hwQueues } : {}),
        }
      : {}),
  };
}

const COMMON_STEPS = [
  'blkdiscard', 'mkfs', 'mount', 'write-files', 'remount-verify', 'fstrim', 'umount', 'fio-write', 'fio-verify', 'marker',
];
const SCSI_STEPS = [
  'sg_inq', 'sg_turs', 'sg_luns', 'sg_readcap', 'sg_vpd_b0', 'sg_vpd_b1', 'sg_vpd_b2', 'sg_vpd_83',
];

/** Every step the scenario must report, in order. */
export function expectedSteps(s: DiskScenario): string[] {
  const probe = s.test === 'scsi-disk' ? [...SCSI_STEPS, ...(s.discard === false ? [] : ['sg_unmap'])] : [];
  const common = s.discard === false ? COMMON_STEPS.filter((n) => n !== 'blkdiscard' && n !== 'fstrim') : COMMON_STEPS;
  const limits = s.test === 'blk-disk' && s.limits ? ['queue-limits'] : [];
  const feature = s.feature !== undefined ? ['feature'] : [];
  return ['boot', 'modules', 'disk', 'size', ...feature, ...limits, ...probe, ...common];
}

/** The 512-byte sector the guest writes at markerLba. */
export function markerSector(marker: string): Uint8Array {
  const sector = new Uint8Array(SECTOR);
  sector.set(new TextEncoder().encode(`VHOSTD-MARKER ${marker}\n`));
  return sector;
}

/** Reads sector `lba` of a raw backing file. */
export function readSector(path: string, lba: number): Uint8Array {
  const buf = new Uint8Array(SECTOR);
  const fd = openSync(path, 'r');
  try {
    const n = readSync(fd, buf, 0, SECTOR, lba * SECTOR);
    assert.equal(n, SECTOR, `${path}: short read at LBA ${lba}`);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** Asserts a clean run: powered off by itself, every expected step PASS, nothing else failed. */
export function assertDiskRun(run: VmRun, s: DiskScenario): void {
  assertGuestSteps(run, expectedSteps(s));
}

/** Asserts the scenario's marker landed in `backingFile` (a raw image) at its LBA. */
export function assertMarker(backingFile: string, s: DiskScenario): void {
  const got = readSector(backingFile, s.markerLba);
  const want = markerSector(s.marker);
  assert.deepEqual(
    Buffer.from(got).toString('latin1').replace(/\0+$/, ''),
    Buffer.from(want).toString('latin1').replace(/\0+$/, ''),
    `${backingFile} LBA ${s.markerLba}`,
  );
  assert.deepEqual(got, want, `${backingFile} LBA ${s.markerLba}: bytes after the marker text must be zero`);
}
