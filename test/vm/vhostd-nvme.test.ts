// A Linux guest on a vhost-user-blk disk backed by an NVMe/TCP namespace: the Linux kernel's
// nvmet in a second TCG guest exports a host file (../integration/nvmf-targets.ts), vhostd (two
// reactors, an I/O queue each) attaches it, and the guest runs the blk scenario: size, filesystem,
// fio crc32c write + verify on two queues, discard. Then the target's file is checked on the host:
// the guest's marker is in it, and the host's fio verifies every block the guest's fio wrote.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ensureGuestImage } from './guest-image.ts';
import { findQemu, runVm } from './qemu.ts';
import { assertDiskRun, assertMarker, diskScenarioParams, SECTOR, type DiskScenario } from './disk-scenario.ts';
import { formatResults } from './guest-results.ts';
import { prepareOrSkip } from './vm-prerequisites.ts';
import { vhostUserBlkArgs } from './vhost-user-args.ts';
import { startDaemon } from '../integration/daemon-process.ts';
import { startNvmfTarget, type NvmfTarget } from '../integration/nvmf-targets.ts';
import { VM_DAEMON, withDaemonLog } from './daemon-log.ts';

const IMAGE_MIB = 256;
const FIO_SIZE = '32M';

async function nvmeGuest(t: TestContext): Promise<void> {
  const prepared = await prepareOrSkip(t, async () => ({ qemu: findQemu('system'), image: await ensureGuestImage() }));
  if (prepared === undefined) return;
  const { qemu, image } = prepared;
  const target: NvmfTarget = await startNvmfTarget('linux-nvmet', IMAGE_MIB);
  let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
  // The daemon goes first, while its target is still there.
  t.after(async () => {
    const code = d ? await d.stop() : 0;
    await target.stop();
    assert.equal(code, 0, `vhostd exit; stderr:\n${d?.stderr.join('').slice(-20000)}`);
  });
  d = await startDaemon(['-m', '0x3'], VM_DAEMON);
  await d.call('bdev_nvme_attach_controller', { name: 'nv', trtype: 'tcp', traddr: target.host, trsvcid: String(target.port), subnqn: target.nqn });
  await d.call('vhost_create_blk_controller', { ctrlr: 'nv0', dev_name: 'nvn1' });

  const disk: DiskScenario = {
    test: 'blk-disk',
    sizeSectors: (IMAGE_MIB << 20) / SECTOR,
    marker: `nvme-${qemu.version}-${process.pid}`,
    // Past fio's region (the host verifies that region block by block).
    markerLba: (40 << 20) / SECTOR,
    fioSize: FIO_SIZE,
    limits: { logicalBlockSize: 512, physicalBlockSize: 512, discardMaxBytes: 0x3fffff * 512, discardGranularity: 512, hwQueues: 2 },
  };
  const run = await runVm({ name: `vhostd-nvme-${qemu.version}`, qemu, image, params: diskScenarioParams(disk), deviceArgs: vhostUserBlkArgs('c0', d.socket('nv0'), 2), cpus: 2, timeoutMs: 600_000 });
  t.diagnostic(`${run.logPath} (${run.elapsedMs} ms):\n${formatResults(run.results)}`);
  const [c] = (await d.call('bdev_nvme_get_controllers', { name: 'nv' })) as { ctrlrs: { state: string; vhostd: Record<string, unknown> }[] }[];
  t.diagnostic(`nv: ${JSON.stringify(c.ctrlrs[0])}`);

  await t.test('guest on an NVMe/TCP namespace: size, queue limits, filesystem, fio crc32c verify on 2 queues, discard', () =>
    withDaemonLog(d as NonNullable<typeof d>, () => assertDiskRun(run, disk)),
  );
  await t.test("the target's file holds the marker, and every block fio wrote verifies on the host", () => {
    assert.equal(c.ctrlrs[0].state, 'enabled');
    assert.equal(c.ctrlrs[0].vhostd.failed_requests, 0);
    assert.equal(c.ctrlrs[0].vhostd.io_queues_connected, 2, 'an I/O queue per reactor');
    assertMarker(target.image, disk);
    // The guest's job, in verify-only mode, over the target's file (same seed, same offsets).
    const out = execFileSync(
      'fio',
      ['--name=vhostd', `--filename=${target.image}`, '--rw=randwrite', '--bs=4k', '--iodepth=1', '--ioengine=psync', '--verify=crc32c', `--size=${FIO_SIZE}`, '--verify_only', '--verify_state_save=0'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.match(out, /vhostd: \(groupid=0/, out);
    assert.doesNotMatch(out, /verify.*(bad|fail)|crc32c: verify failed/i, out);
  });
}

test('QEMU from PATH: a vhost-user-blk guest on an NVMe/TCP namespace (Linux nvmet in a second guest)', { timeout: 900_000 }, (t) => nvmeGuest(t));
