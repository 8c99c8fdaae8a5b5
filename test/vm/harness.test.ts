// The VM harness's pure parts: console protocol, kernel command line, scenario
// bookkeeping and skip-vs-fail. No QEMU needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGuestLine, formatResults } from './guest-results.ts';
import { kernelCommandLine, qemuArgs } from './qemu.ts';
import type { QemuBinary } from './qemu.ts';
import { diskScenarioParams, expectedSteps, markerSector, readSector, assertMarker } from './disk-scenario.ts';
import { inCi, prepareOrSkip } from './vm-prerequisites.ts';
import { VmHarnessError, VmPrerequisiteMissing } from './vm-errors.ts';

test('console lines: results survive terminal escapes and CR; other lines are ignored', () => {
  assert.deepEqual(parseGuestLine('\x1bc\x1b[?7l\x1b[2JVHOSTD-RESULT boot PASS uptime=3.66s kernel=6.1.0\r'), {
    kind: 'result', name: 'boot', status: 'PASS', detail: 'uptime=3.66s kernel=6.1.0',
  });
  assert.deepEqual(parseGuestLine('VHOSTD-RESULT size FAIL size_sectors=131072, expected 999 (0.01s)'), {
    kind: 'result', name: 'size', status: 'FAIL', detail: 'size_sectors=131072, expected 999 (0.01s)',
  });
  assert.deepEqual(parseGuestLine('VHOSTD-RESULT umount PASS'), { kind: 'result', name: 'umount', status: 'PASS', detail: '' });
  assert.deepEqual(parseGuestLine('VHOSTD-LOG mkfs: mkfs.ext4: not found\r'), { kind: 'log', name: 'mkfs', text: 'mkfs.ext4: not found' });
  assert.deepEqual(parseGuestLine('VHOSTD-DONE\r'), { kind: 'done' });
  assert.equal(parseGuestLine('VHOSTD-RESULT boot MAYBE x'), null);
  assert.equal(parseGuestLine('[   30.595844] reboot: Power down'), null);
  assert.equal(
    formatResults([{ name: 'mkfs', status: 'PASS', detail: 'ext4 on /dev/sda', atMs: 10_840 }]),
    '  10.8s PASS mkfs: ext4 on /dev/sda',
  );
});

test('kernel command line: vhostd.* parameters, hostile values refused', () => {
  assert.equal(
    kernelCommandLine({ test: 'scsi-disk', size_sectors: 524288 }),
    'console=ttyS0 quiet panic=-1 vhostd.test=scsi-disk vhostd.size_sectors=524288',
  );
  const bads: Record<string, string | number>[] = [{ marker: 'a b' }, { marker: 'x"y' }, { 'Bad-Key': 1 }, { marker: 'a\nb' }];
  for (const bad of bads) {
    assert.throws(() => kernelCommandLine(bad), (e: unknown) => e instanceof VmHarnessError && e.code === 'VM_BAD_KERNEL_PARAM');
  }
});

test('qemu arguments: shared memfd RAM, TCG, firmware dirs first, devices last', () => {
  const qemu: QemuBinary = { flavour: '7.2', path: '/q', version: '7.2.22', major: 7, dataDirs: ['/fw1', '/fw2'], env: {} };
  const args = qemuArgs({
    name: 'x', qemu, image: { kernel: '/k', initrd: '/i' }, params: { test: 'blk-disk' },
    deviceArgs: ['-device', 'virtio-blk-pci,drive=d1'], memoryMiB: 768,
  });
  assert.deepEqual(args.slice(0, 4), ['-L', '/fw1', '-L', '/fw2']);
  assert.equal(args[args.indexOf('-object') + 1], 'memory-backend-memfd,id=mem,size=768M,share=on');
  assert.equal(args[args.indexOf('-m') + 1], '768M');
  assert.equal(args[args.indexOf('-accel') + 1], 'tcg');
  assert.equal(args[args.indexOf('-append') + 1], 'console=ttyS0 quiet panic=-1 vhostd.test=blk-disk');
  assert.deepEqual(args.slice(-2), ['-device', 'virtio-blk-pci,drive=d1']);
});

test('disk scenario: parameters, expected steps, marker sector', () => {
  const s = { test: 'blk-disk' as const, sizeSectors: 2048, marker: 'vm-a', markerLba: 3 };
  assert.deepEqual(diskScenarioParams(s), {
    test: 'blk-disk', size_sectors: 2048, marker: 'vm-a', marker_lba: 3, fio_size: '32M', discard: 1,
  });
  assert.deepEqual(expectedSteps(s), [
    'boot', 'modules', 'disk', 'size', 'blkdiscard', 'mkfs', 'mount', 'write-files', 'remount-verify',
    'fstrim', 'umount', 'fio-write', 'fio-verify', 'marker',
  ]);
  const scsiNoDiscard = expectedSteps({ ...s, test: 'scsi-disk', discard: false });
  assert.ok(scsiNoDiscard.includes('sg_vpd_b2') && !scsiNoDiscard.includes('sg_unmap') && !scsiNoDiscard.includes('fstrim'));
  const sector = markerSector('vm-a');
  assert.equal(sector.length, 512);
  assert.equal(Buffer.from(sector.subarray(0, 19)).toString('latin1'), 'VHOSTD-MARKER vm-a\n');
  assert.ok(sector.subarray(19).every((b) => b === 0));

  const dir = mkdtempSync(join(tmpdir(), 'vhostd-vm-'));
  try {
    const file = join(dir, 'disk.raw');
    const disk = new Uint8Array(8 * 512);
    disk.set(sector, 3 * 512);
    writeFileSync(file, disk);
    assert.deepEqual(readSector(file, 3), sector);
    assertMarker(file, s);
    assert.throws(() => assertMarker(file, { ...s, marker: 'vm-b' }), /LBA 3/);
    assert.throws(() => assertMarker(file, { ...s, markerLba: 2 }), /LBA 2/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('missing prerequisites skip locally and fail in CI', async () => {
  const saved = process.env.CI;
  try {
    delete process.env.CI;
    assert.equal(inCi(), false);
    let skipped = '';
    const fake = { skip: (msg: string) => { skipped = msg; } } as unknown as Parameters<typeof prepareOrSkip>[0];
    const r = await prepareOrSkip(fake, () => { throw new VmPrerequisiteMissing('no qemu'); });
    assert.equal(r, undefined);
    assert.equal(skipped, 'VM prerequisite missing: no qemu');
    assert.equal(await prepareOrSkip(fake, () => 42), 42);

    process.env.CI = 'true';
    assert.equal(inCi(), true);
    await assert.rejects(
      prepareOrSkip(fake, () => { throw new VmPrerequisiteMissing('no qemu'); }),
      (e: unknown) => e instanceof VmPrerequisiteMissing && e.code === 'VM_PREREQUISITE_MISSING' && /CI is set/.test(e.message),
    );
    // Other errors are never turned into skips.
    process.env.CI = '0';
    await assert.rejects(prepareOrSkip(fake, () => { throw new Error('boom'); }), /boom/);
  } finally {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  }
});
