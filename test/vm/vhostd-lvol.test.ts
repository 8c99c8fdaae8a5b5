// Linux guests on logical volumes: a thin lvol on an lvol store on a uring file bdev, served on a
// 2-queue vhost-user-blk controller. The guest writes fio-verified data, then keeps writing another
// region while the host takes a snapshot; a clone of that snapshot on a second controller boots a
// second VM, which finds exactly the data from before the snapshot (while the first VM overwrites
// half of it, copy-on-write). Then the daemon restarts from its saved config and both volumes come
// back with their data, checked by two more guests. Guest side: test/vm/guest/lvol-disk.sh.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureGuestImage } from './guest-image.ts';
import { findQemu, runVm, type QemuBinary, type QemuFlavour, type VmRun } from './qemu.ts';
import { assertGuestSteps } from './run-assertions.ts';
import type { GuestImage } from './guest-image.ts';
import { formatResults } from './guest-results.ts';
import { prepareOrSkip } from './vm-prerequisites.ts';
import { vhostUserBlkArgs } from './vhost-user-args.ts';
import { VM_DAEMON, withDaemonLog } from './daemon-log.ts';
import { startDaemon, type Daemon } from '../integration/daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk } from '../../src/frontend/qemu-like-blk.ts';

const MiB = 1024 * 1024;
const SECTOR = 512;
const BLOCK = 4096;
const LVOL_MIB = 128;
/** The guest's regions (lvol-disk.sh): A at 0, B at 32 MiB, C at 64 MiB, 16 MiB each. */
const REGION_MIB = 16;
const B_OFFSET_MIB = 32;
const C_OFFSET_MIB = 64;
/** Region B's write IOPS limit in the guest: 4096 blocks take >= 5 s, time enough for the snapshot. */
const B_RATE = 800;
/** The guest reports write-b-running once this much of B is on the disk (acknowledged). */
const B_WRITTEN_BEFORE_MARKER = 1 * MiB;

/** Every scenario starts with these (test/vm/guest/init). */
const FIRST_STEPS = ['boot', 'modules', 'disk', 'size'];
const ORIGIN_STEPS = [...FIRST_STEPS, 'write-a1', 'verify-a1', 'write-b-running', 'write-b', 'write-a2', 'verify-a2', 'verify-a1-odd'];
const CLONE_STEPS = [...FIRST_STEPS, 'verify-a1', 'no-a2', 'write-c4'];
const ORIGIN_AGAIN_STEPS = [...FIRST_STEPS, 'verify-a2', 'verify-a1-odd', 'verify-b'];
const CLONE_AGAIN_STEPS = [...FIRST_STEPS, 'verify-a1', 'no-a2', 'verify-c4'];

/** What fio's verify=pattern with verify_pattern=0x<gen>5c3e9d17%o writes in the 4 KiB block at `offset`. */
function fioPatternBlock(gen: number, offset: number): Buffer {
  const unit = Buffer.alloc(13);
  unit.set([gen, 0x5c, 0x3e, 0x9d, 0x17]);
  unit.writeBigUInt64LE(BigInt(offset), 5);
  const block = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i += unit.length) unit.copy(block, i, 0, Math.min(unit.length, BLOCK - i));
  return block;
}

interface RegionScan {
  /** Blocks holding generation `gen` at their own offset. */
  written: number;
  zero: number;
  /** Offsets of blocks that are neither (torn, misplaced, another generation). */
  bad: number[];
  sha256: string;
}

/** Reads a region of a blk controller's disk as a front-end (no VM may be attached) and classifies its 4 KiB blocks. */
async function scanRegion(d: Daemon, ctrlr: string, offsetMiB: number, sizeMiB: number, gen: number): Promise<RegionScan> {
  const arena = new GuestMemoryArena();
  const c = await connectLikeQemuBlk({ socketPath: d.socket(ctrlr), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 256 * 1024, timeoutMs: 10_000 } });
  const scan: RegionScan = { written: 0, zero: 0, bad: [], sha256: '' };
  const hash = createHash('sha256');
  const zero = Buffer.alloc(BLOCK);
  const chunk = 128 * 1024;
  try {
    for (let off = offsetMiB * MiB; off < (offsetMiB + sizeMiB) * MiB; off += chunk) {
      const r = await c.driver.read(off / SECTOR, chunk / SECTOR);
      assert.equal(r.status, 0, `${ctrlr}: read at ${off} failed with status ${r.status}`);
      const data = Buffer.from(r.data);
      hash.update(data);
      for (let i = 0; i < chunk; i += BLOCK) {
        const block = data.subarray(i, i + BLOCK);
        if (block.equals(zero)) scan.zero++;
        else if (block.equals(fioPatternBlock(gen, off + i))) scan.written++;
        else scan.bad.push(off + i);
      }
    }
  } finally {
    await c.stop().catch(() => {});
    c.close();
    arena.close();
  }
  scan.sha256 = hash.digest('hex');
  return scan;
}

interface LvolInfo {
  name: string;
  alias: string;
  uuid: string;
  is_snapshot: boolean;
  is_clone: boolean;
  is_thin_provisioned: boolean;
}

/** The store's lvols by name: what bdev_lvol_get_lvols says, plus allocated clusters and parent from bdev_get_bdevs. */
async function lvols(d: Daemon): Promise<Record<string, Record<string, unknown>>> {
  const list = (await d.call('bdev_lvol_get_lvols', { lvs_name: 'lvs0' })) as LvolInfo[];
  const out: Record<string, Record<string, unknown>> = {};
  for (const l of list) {
    const [bdev] = (await d.call('bdev_get_bdevs', { name: l.alias })) as Array<{ driver_specific: { lvol: Record<string, unknown> } }>;
    const { num_allocated_clusters, base_snapshot, clones } = bdev.driver_specific.lvol;
    out[l.name] = {
      uuid: l.uuid, is_snapshot: l.is_snapshot, is_clone: l.is_clone, is_thin_provisioned: l.is_thin_provisioned,
      num_allocated_clusters, base_snapshot, clones: Array.isArray(clones) ? [...clones].sort() : clones,
    };
  }
  return out;
}

async function lvolGuests(t: TestContext, flavour: QemuFlavour): Promise<void> {
  const prepared = await prepareOrSkip(t, async () => ({ qemu: findQemu(flavour), image: await ensureGuestImage() }));
  if (prepared === undefined) return;
  const { qemu, image }: { qemu: QemuBinary; image: GuestImage } = prepared;
  // The pool file outlives the daemon (whose own directory is removed when it stops).
  const dataDir = mkdtempSync(join(tmpdir(), 'vhostd-lvol-vm-'));
  const poolFile = join(dataDir, 'pool.img');
  writeFileSync(poolFile, '');
  truncateSync(poolFile, 256 * MiB);
  let d = await startDaemon(['-m', '0x3'], VM_DAEMON);
  t.after(async () => {
    const code = await d.stop();
    rmSync(dataDir, { recursive: true, force: true });
    assert.equal(code, 0, `vhostd exit; stderr:\n${d.stderr.join('').slice(-20000)}`);
  });
  await d.call('framework_wait_init', {});

  await d.call('bdev_uring_create', { name: 'pool', filename: poolFile, block_size: SECTOR });
  await d.call('bdev_lvol_create_lvstore', { bdev_name: 'pool', lvs_name: 'lvs0', cluster_sz: MiB });
  await d.call('bdev_lvol_create', { lvs_name: 'lvs0', lvol_name: 'vol1', size_in_mib: LVOL_MIB, thin_provision: true });
  await d.call('vhost_create_blk_controller', { ctrlr: 'vm1', dev_name: 'lvs0/vol1' });

  const params = (phase: string) => ({
    test: 'lvol-disk',
    phase,
    size_sectors: LVOL_MIB * (MiB / SECTOR),
    fio_size: `${REGION_MIB}M`,
    b_offset: `${B_OFFSET_MIB}M`,
    c_offset: `${C_OFFSET_MIB}M`,
    b_rate: B_RATE,
  });
  const vmName = (what: string) => `vhostd-lvol-${what}-${qemu.version}`;

  // VM1 on the origin; when it reports write-b-running, the snapshot is taken, cloned, and VM2
  // boots on the clone while VM1 goes on writing.
  const seen = new Set<string>();
  let snapshot: { bWasDone: boolean; bDoneAfterSnapshot: boolean; snapshotMs: number; vm2: VmRun } | undefined;
  let cloneFlow: Promise<void> | undefined;
  const snapshotAndClone = async (): Promise<void> => {
    const bWasDone = seen.has('write-b');
    const t0 = Date.now();
    await d.call('bdev_lvol_snapshot', { lvol_name: 'lvs0/vol1', snapshot_name: 'snap1' });
    const snapshotMs = Date.now() - t0;
    const bDoneAfterSnapshot = seen.has('write-b');
    await d.call('bdev_lvol_clone', { snapshot_name: 'lvs0/snap1', clone_name: 'vol2' });
    await d.call('vhost_create_blk_controller', { ctrlr: 'vm2', dev_name: 'lvs0/vol2' });
    const vm2 = await runVm({
      name: vmName('clone'), qemu, image, params: params('clone'), deviceArgs: vhostUserBlkArgs('c1', d.socket('vm2'), 1), timeoutMs: 300_000,
    });
    snapshot = { bWasDone, bDoneAfterSnapshot, snapshotMs, vm2 };
  };
  const vm1 = await runVm({
    name: vmName('origin'),
    qemu,
    image,
    params: params('origin'),
    deviceArgs: vhostUserBlkArgs('c0', d.socket('vm1'), 2),
    cpus: 2,
    timeoutMs: 300_000,
    onResult: (r) => {
      seen.add(r.name);
      if (r.name === 'write-b-running' && r.status === 'PASS') cloneFlow = snapshotAndClone();
    },
  });
  // Rejections surface here, not as unhandled ones: the flow's promise is awaited whatever VM1 did.
  const cloneError = cloneFlow === undefined ? undefined : await cloneFlow.then(() => undefined, (e: unknown) => e);
  t.diagnostic(`${vm1.logPath} (${vm1.elapsedMs} ms):\n${formatResults(vm1.results)}`);
  if (snapshot) t.diagnostic(`${snapshot.vm2.logPath} (${snapshot.vm2.elapsedMs} ms, snapshot RPC ${snapshot.snapshotMs} ms):\n${formatResults(snapshot.vm2.results)}`);

  await t.test('guest on a thin lvol writes and verifies; a snapshot is taken while it writes', () =>
    withDaemonLog(d, () => {
      assertGuestSteps(vm1, ORIGIN_STEPS);
      if (cloneError !== undefined) throw cloneError;
      assert.ok(snapshot, 'the snapshot was taken');
      assert.equal(snapshot.bWasDone || snapshot.bDoneAfterSnapshot, false, 'the snapshot completed while region B was still being written');
    }));
  await t.test('a clone of the snapshot on a second VM holds the data from before the snapshot, not the later writes', () =>
    withDaemonLog(d, () => {
      assert.ok(snapshot, 'the clone VM ran');
      assertGuestSteps(snapshot.vm2, CLONE_STEPS);
    }));

  // Region B in the clone: what the guest had written when the snapshot was taken (at least what
  // it saw acknowledged before it reported write-b-running), each block whole or not at all.
  const cloneB = await scanRegion(d, 'vm2', B_OFFSET_MIB, REGION_MIB, 0xb3);
  const originB = await scanRegion(d, 'vm1', B_OFFSET_MIB, REGION_MIB, 0xb3);
  const totalBlocks = (REGION_MIB * MiB) / BLOCK;
  t.diagnostic(`clone region B: ${cloneB.written} of ${totalBlocks} blocks written at snapshot time, ${cloneB.zero} zero`);
  await t.test('the snapshot caught region B mid-write, with no torn or misplaced block', () => {
    assert.deepEqual(cloneB.bad, [], 'blocks of the clone that are neither zero nor generation b3');
    assert.ok(cloneB.written >= B_WRITTEN_BEFORE_MARKER / BLOCK, `${cloneB.written} blocks of B in the snapshot; the guest had ${B_WRITTEN_BEFORE_MARKER / BLOCK} acknowledged before it asked for it`);
    assert.ok(cloneB.written < totalBlocks, 'region B was not complete at snapshot time');
    assert.deepEqual(originB, { written: totalBlocks, zero: 0, bad: [], sha256: originB.sha256 }, 'the origin has all of region B');
  });

  // Restart: save the config, stop cleanly (the pool file stays), start from the config.
  const before = await lvols(d);
  t.diagnostic(`lvols before the restart: ${JSON.stringify(before)}`);
  assert.deepEqual(
    Object.fromEntries(Object.entries(before).map(([n, l]) => [n, [l.is_snapshot, l.is_clone, l.base_snapshot, l.clones]])),
    { vol1: [false, true, 'snap1', undefined], snap1: [true, false, undefined, ['vol1', 'vol2']], vol2: [false, true, 'snap1', undefined] },
    'vol1 and vol2 are clones of snap1',
  );
  const config = join(dataDir, 'config.json');
  writeFileSync(config, JSON.stringify(await d.call('save_config', {})));
  const oldLog = d.stderr;
  const code = await d.stop();
  assert.equal(code, 0, `vhostd exit at restart; stderr:\n${oldLog.join('').slice(-20000)}`);
  d = await startDaemon(['-m', '0x3', '-c', config], VM_DAEMON);
  await d.call('framework_wait_init', {});
  await t.test('after a clean restart from the saved config the lvols are back as they were', async () => {
    assert.doesNotMatch(d.stderr.join(''), /not unloaded cleanly/, 'a clean stop leaves nothing to recover');
    assert.deepEqual(await lvols(d), before);
  });

  const [again1, again2] = await Promise.all([
    runVm({ name: vmName('origin-again'), qemu, image, params: params('origin-again'), deviceArgs: vhostUserBlkArgs('c0', d.socket('vm1'), 2), cpus: 2, timeoutMs: 300_000 }),
    runVm({ name: vmName('clone-again'), qemu, image, params: params('clone-again'), deviceArgs: vhostUserBlkArgs('c1', d.socket('vm2'), 1), timeoutMs: 300_000 }),
  ]);
  for (const run of [again1, again2]) t.diagnostic(`${run.logPath} (${run.elapsedMs} ms):\n${formatResults(run.results)}`);
  await t.test('after the restart the origin has its newest data in both regions', () => withDaemonLog(d, () => assertGuestSteps(again1, ORIGIN_AGAIN_STEPS)));
  await t.test('after the restart the clone has the snapshot data and its own writes', () => withDaemonLog(d, () => assertGuestSteps(again2, CLONE_AGAIN_STEPS)));
  await t.test('after the restart region B reads the same on both volumes', async () => {
    assert.deepEqual(await scanRegion(d, 'vm2', B_OFFSET_MIB, REGION_MIB, 0xb3), cloneB);
    assert.deepEqual(await scanRegion(d, 'vm1', B_OFFSET_MIB, REGION_MIB, 0xb3), originB);
  });
}

test('QEMU from PATH: guests on a thin lvol, a snapshot under writes, its clone, a daemon restart', { timeout: 600_000 }, (t) => lvolGuests(t, 'system'));

test('QEMU 7.2: guests on a thin lvol, a snapshot under writes, its clone, a daemon restart', { timeout: 600_000 }, (t) => lvolGuests(t, '7.2'));
