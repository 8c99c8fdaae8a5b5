import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BdevRegistry } from '../../../src/bdev/bdev-registry.ts';
import { MallocBdev } from '../../../src/bdev/modules/malloc.ts';
import { BDEV_ENOSPC, BDEV_EROFS, BDEV_OK } from '../../../src/bdev/bdev.ts';
import { LvolModule } from '../../../src/lvol/lvol-module.ts';
import { LvolError } from '../../../src/lvol/lvol-error.ts';
import { LvolIo, pattern } from './lvol-io.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { UringBdev } from '../../../src/bdev/modules/uring.ts';
import { SgList } from '../../../src/iovec/sg-list.ts';
import type { BdevIoWaiter } from '../../../src/bdev/bdev.ts';

const MiB = 1024 * 1024;
const CS = 1 * MiB;

async function setup(sizeMiB = 64): Promise<{ bdevs: BdevRegistry; mod: LvolModule; base: MallocBdev }> {
  const bdevs = new BdevRegistry();
  const mod = new LvolModule(bdevs);
  const base = new MallocBdev({ name: 'Malloc0', numBlocks: (sizeMiB * MiB) / 512, blockSize: 512 });
  bdevs.register(base);
  await mod.waitForExamine();
  return { bdevs, mod, base };
}

function code(e: unknown): string | undefined {
  return e instanceof LvolError ? e.code : (e as { code?: string }).code;
}

test('lvol store: create, thin lvol, first writes allocate, reads of unwritten ranges are zeroes', async () => {
  const { bdevs, mod } = await setup();
  const lvs = await mod.createStore('Malloc0', { name: 'lvs0', clusterSize: CS });
  assert.equal(bdevs.get('Malloc0')?.claimedBy, 'lvol');
  const free0 = lvs.freeClusters;
  const lvol = await lvs.createLvol('vol0', 8 * MiB, true);
  assert.equal(bdevs.get('lvs0/vol0'), lvol);
  assert.equal(lvol.numBlocks, (8 * MiB) / 512);
  assert.equal(lvs.freeClusters, free0, 'thin: nothing allocated yet');
  const io = new LvolIo(lvol);
  // Crosses the boundary between clusters 0 and 1; unaligned inside both.
  const data = pattern(64 * 1024, 1);
  assert.equal(await io.write(CS - 32 * 1024, data), BDEV_OK);
  assert.equal(lvs.freeClusters, free0 - 2);
  assert.deepEqual(await io.read(CS - 32 * 1024, data.length), data);
  const z = await io.read(0, 4096);
  assert.ok(z.every((b) => b === 0), 'rest of the allocated cluster reads zeroes');
  const far = await io.read(5 * CS, 8192);
  assert.ok(far.every((b) => b === 0), 'unallocated cluster reads zeroes');
  // Write-zeroes over never-written space allocates nothing.
  assert.equal(await io.op('writeZeroes', 6 * CS, CS), BDEV_OK);
  assert.equal(lvs.freeClusters, free0 - 2);
  assert.equal(await io.op('flush', 0, 512), BDEV_OK);
  io.close();
});

test('lvol: thick lvol takes its clusters at create; no space is an error', async () => {
  const { mod } = await setup(16);
  const lvs = await mod.createStore('Malloc0', { name: 'lvs0', clusterSize: CS });
  const free0 = lvs.freeClusters;
  const thick = await lvs.createLvol('thick', 4 * MiB, false);
  assert.equal(lvs.freeClusters, free0 - 4);
  assert.equal(thick.blob.allocatedClusters, 4);
  await assert.rejects(lvs.createLvol('huge', 64 * MiB, false), (e) => code(e) === 'LVOL_NO_SPACE');
  await assert.rejects(lvs.createLvol('thick', MiB, true), (e) => code(e) === 'LVOL_NAME_TAKEN');
  await assert.rejects(lvs.createLvol('a/b', MiB, true), (e) => code(e) === 'LVOL_INVALID_PARAM');
  // A thin lvol larger than the store fills it, then its writes fail with ENOSPC.
  const thin = await lvs.createLvol('thin', 64 * MiB, true);
  const io = new LvolIo(thin);
  let last = BDEV_OK;
  for (let c = 0; c < 64 && last === BDEV_OK; c++) last = await io.write(c * CS, pattern(4096, c));
  assert.equal(last, BDEV_ENOSPC);
  io.close();
});

test('lvol: snapshot chain of depth 3, clone diverges, delete of a middle snapshot keeps data', async () => {
  const { bdevs, mod } = await setup();
  const lvs = await mod.createStore('Malloc0', { name: 'lvs0', clusterSize: CS });
  const vol = await lvs.createLvol('vol', 4 * MiB, true);
  const io = new LvolIo(vol);
  const gens = [pattern(4096, 10), pattern(4096, 11), pattern(4096, 12)];
  const snaps = [];
  for (let g = 0; g < 3; g++) {
    // Each generation writes cluster g and overwrites cluster 0.
    assert.equal(await io.write(g * CS, gens[g]), BDEV_OK);
    assert.equal(await io.write(0, gens[g]), BDEV_OK);
    snaps.push(await lvs.snapshot(vol, `snap${g}`));
  }
  assert.equal(bdevs.get('lvs0/snap2')?.moduleName, 'lvol');
  assert.ok(snaps.every((s) => s.isSnapshot));
  // The lvol (a clone of snap2 now) still reads everything through the chain.
  assert.deepEqual(await io.read(0, 4096), gens[2]);
  assert.deepEqual(await io.read(CS, 4096), gens[1]);
  assert.deepEqual(await io.read(2 * CS, 4096), gens[2]);
  // Writes to a snapshot are refused.
  const sio = new LvolIo(snaps[0]);
  assert.equal(await sio.write(0, gens[0]), BDEV_EROFS);
  assert.deepEqual(await sio.read(0, 4096), gens[0]);
  // A clone of snap0 sees generation 0 and diverges from it.
  const clone = await lvs.clone(snaps[0], 'clone0');
  const cio = new LvolIo(clone);
  assert.deepEqual(await cio.read(0, 4096), gens[0]);
  assert.ok((await cio.read(CS, 4096)).every((b) => b === 0));
  const mine = pattern(4096, 99);
  assert.equal(await cio.write(0, mine), BDEV_OK);
  assert.deepEqual(await cio.read(0, 4096), mine);
  assert.deepEqual(await sio.read(0, 4096), gens[0], 'snapshot unchanged by its clone');
  // snap0 now has 2 clones (snap1 and clone0): refused.
  await assert.rejects(lvs.deleteLvol(snaps[0]), (e) => code(e) === 'LVOL_HAS_CLONES');
  // Delete the middle snapshot (one clone: snap2): merged, data intact everywhere.
  await lvs.deleteLvol(snaps[1]);
  assert.equal(bdevs.get('lvs0/snap1'), undefined);
  assert.deepEqual(await io.read(0, 4096), gens[2]);
  assert.deepEqual(await io.read(CS, 4096), gens[1]);
  assert.deepEqual(await io.read(2 * CS, 4096), gens[2]);
  assert.equal(snaps[2].blob.parentId, snaps[0].blob.id);
  io.close();
  sio.close();
  cio.close();
});

test('lvol: a snapshot goes through while a channel always has I/O in flight (asynchronous base)', async () => {
  // Each completion submits the next write from inside the channel's poll, so the channel never
  // finds itself idle: it must notice the freeze, stop admitting, drain and give back its share.
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-lvol-uring-'));
  try {
    const file = join(dir, 'disk.img');
    writeFileSync(file, Buffer.alloc(32 * MiB));
    const bdevs = new BdevRegistry();
    const mod = new LvolModule(bdevs);
    bdevs.register(new UringBdev({ name: 'u0', filename: file }));
    await mod.waitForExamine();
    const lvs = await mod.createStore('u0', { name: 'lvs0', clusterSize: CS });
    const vol = await lvs.createLvol('vol', 4 * MiB, false);
    const io = new LvolIo(vol);
    const ch = io.ch;
    let writes = 0;
    let failed = 0;
    let stop = false;
    const writers = Array.from({ length: 4 }, (_, i) => {
      const sg = new SgList(1);
      sg.push(pattern(4096, i), 0, 4096);
      const w: BdevIoWaiter = {
        bdevIoDone(status: number): void {
          writes++;
          if (status !== BDEV_OK) failed++;
          if (!stop) ch.write(((writes * 8) % 8192) + i * 8, 8, sg, 0, w);
        },
      };
      return { sg, w };
    });
    writers.forEach(({ sg, w }, i) => ch.write(i * 8, 8, sg, 0, w));
    let snapped = false;
    const snapP = lvs.snapshot(vol, 'snap').then(() => (snapped = true));
    const deadline = Date.now() + 10_000;
    while (!snapped && Date.now() < deadline) {
      ch.poll();
      await tick();
    }
    assert.ok(snapped, 'snapshot finished within 10 s while the channel kept I/O in flight');
    const before = writes;
    while (writes < before + 100 && Date.now() < deadline + 5000) {
      ch.poll();
      await tick();
    }
    assert.ok(writes >= before + 100, 'writes parked across the snapshot resumed');
    stop = true;
    while (writes < before + 104 && Date.now() < deadline + 10_000) {
      ch.poll();
      await tick();
    }
    await snapP;
    assert.equal(failed, 0);
    io.close();
    await mod.unloadAll();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lvol: a snapshot taken while writes are in flight holds each write whole or not at all', async () => {
  const { mod } = await setup();
  const lvs = await mod.createStore('Malloc0', { name: 'lvs0', clusterSize: CS });
  const vol = await lvs.createLvol('vol', 8 * MiB, true);
  const io = new LvolIo(vol);
  // Writes that need allocation are in flight when the snapshot starts.
  const data = Array.from({ length: 8 }, (_, i) => pattern(128 * 1024, 40 + i));
  const waiters = data.map((d, i) => io.startWrite(i * CS + 4096, d));
  const snapP = lvs.snapshot(vol, 'snap');
  const { until } = await import('./lvol-io.ts');
  for (const w of waiters) assert.equal(await until(io.ch, w), BDEV_OK);
  const snap = await snapP;
  const sio = new LvolIo(snap);
  for (let i = 0; i < 8; i++) {
    const got = await sio.read(i * CS + 4096, data[i].length);
    const whole = got.every((b, k) => b === data[i][k]);
    const none = got.every((b) => b === 0);
    assert.ok(whole || none, `write ${i} is torn in the snapshot`);
    assert.deepEqual(await io.read(i * CS + 4096, data[i].length), data[i]);
  }
  io.close();
  sio.close();
});

test('lvol: resize grows and shrinks, read-only, rename, inflate and decouple with progress', async () => {
  const { bdevs, mod } = await setup();
  const lvs = await mod.createStore('Malloc0', { name: 'lvs0', clusterSize: CS });
  const vol = await lvs.createLvol('vol', 2 * MiB, true);
  let resized = 0;
  bdevs.on('resized', () => resized++);
  const io = new LvolIo(vol);
  await io.write(CS, pattern(4096, 3));
  await lvs.resize(vol, 5 * MiB);
  assert.equal(vol.numBlocks, (5 * MiB) / 512);
  assert.equal(resized, 1);
  io.ch.resize(vol.numBlocks);
  assert.equal(await io.write(4 * CS, pattern(4096, 4)), BDEV_OK);
  assert.deepEqual(await io.read(CS, 4096), pattern(4096, 3));
  await lvs.resize(vol, 2 * MiB);
  assert.equal(vol.numBlocks, (2 * MiB) / 512);
  assert.deepEqual(await io.read(CS, 4096), pattern(4096, 3));

  await lvs.rename(vol, 'vol2');
  assert.equal(bdevs.get('lvs0/vol2'), vol);
  assert.equal(bdevs.get('lvs0/vol'), undefined);
  await mod.renameStore('lvs0', 'store');
  assert.equal(bdevs.get('store/vol2'), vol);

  const snap = await lvs.snapshot(vol, 'base');
  const clone = await lvs.clone(snap, 'c1');
  const steps: Array<[number, number]> = [];
  await lvs.inflate(clone, (d, t) => steps.push([d, t]));
  assert.equal(clone.blob.parentId, 0);
  assert.equal(clone.blob.isThin, false);
  assert.deepEqual(steps.at(-1), [2, 2]);
  const cio = new LvolIo(clone);
  assert.deepEqual(await cio.read(CS, 4096), pattern(4096, 3));
  await assert.rejects(lvs.decoupleParent(clone), (e) => code(e) === 'LVOL_NO_PARENT');
  await lvs.decoupleParent(vol);
  assert.equal(vol.blob.parentId, 0);
  assert.deepEqual(await io.read(CS, 4096), pattern(4096, 3));
  await lvs.setReadOnly(clone);
  // The open channel learns of it at once.
  assert.equal(await cio.write(0, pattern(512, 1)), BDEV_EROFS);
  io.close();
  cio.close();
});

test('lvol: examine finds the store again after unload, with names and data; delete_lvstore wipes it', async () => {
  const { bdevs, mod, base } = await setup();
  const lvs = await mod.createStore('Malloc0', { name: 'lvs0', clusterSize: CS });
  const vol = await lvs.createLvol('vol', 4 * MiB, true);
  const io = new LvolIo(vol);
  await io.write(3 * CS, pattern(8192, 5));
  io.close();
  const snap = await lvs.snapshot(vol, 'snap');
  const uuid = vol.uuid;
  bdevs.claim('lvs0/vol', 'vhost.0');
  await assert.rejects(lvs.deleteLvol(vol), (e) => code(e) === 'LVOL_IN_USE');
  await assert.rejects(mod.deleteStore(lvs), (e) => code(e) === 'LVOL_IN_USE');
  bdevs.release('lvs0/vol');
  await mod.unloadAll();
  assert.equal(bdevs.get('lvs0/vol'), undefined);
  assert.equal(base.claimedBy, null);
  assert.equal(snap.blob.isOpen, false);

  // A second module over the same memfd: examine on register.
  const bdevs2 = new BdevRegistry();
  const mod2 = new LvolModule(bdevs2);
  bdevs2.register(base);
  await mod2.waitForExamine();
  const back = mod2.lvol('lvs0/vol');
  assert.equal(back.uuid, uuid);
  assert.ok(mod2.lvol('lvs0/snap').isSnapshot);
  const io2 = new LvolIo(back);
  assert.deepEqual(await io2.read(3 * CS, 8192), pattern(8192, 5));
  io2.close();
  await mod2.deleteStore(mod2.store({ lvs_name: 'lvs0' }));
  assert.equal(bdevs2.get('lvs0/vol'), undefined);
  const bdevs3 = new BdevRegistry();
  const mod3 = new LvolModule(bdevs3);
  bdevs3.register(base);
  await mod3.waitForExamine();
  assert.equal(mod3.stores().length, 0);
  assert.equal(base.claimedBy, null);
});

test('lvol store grows onto its base bdev after the bdev grew (bdev_lvol_grow_lvstore)', async () => {
  const { NullBdev } = await import('../../../src/bdev/modules/null.ts');
  const bdevs = new BdevRegistry();
  const mod = new LvolModule(bdevs);
  const base = new NullBdev({ name: 'Null0', numBlocks: (64 * MiB) / 512, blockSize: 512 });
  bdevs.register(base);
  await mod.waitForExamine();
  const lvs = await mod.createStore('Null0', { name: 'lvs0', clusterSize: CS });
  const total0 = lvs.blobstore.totalDataClusters;
  assert.equal(await lvs.grow(), 0);
  base.resize((128 * MiB) / 512);
  bdevs.notifyResized(base);
  assert.equal(await lvs.grow(), 64);
  assert.equal(lvs.blobstore.totalDataClusters, total0 + 64);
  const big = await lvs.createLvol('big', (total0 + 32) * CS, false);
  assert.equal(big.blob.allocatedClusters, total0 + 32);
});

test('lvol clear_method write_zeroes: deleting the lvol zeroes its clusters on the base bdev', async () => {
  const { bdevs, mod, base } = await setup();
  const lvs = await mod.createStore('Malloc0', { name: 'lvs0', clusterSize: CS, clearMethod: 'none' });
  const keep = await lvs.createLvol('keep', 2 * MiB, false, 'none');
  const wipe = await lvs.createLvol('wipe', 2 * MiB, false, 'write_zeroes');
  const secret = pattern(4096, 77);
  for (const l of [keep, wipe]) {
    const io = new LvolIo(l);
    await io.write(CS + 8192, secret);
    io.close();
  }
  // Scan every cluster of the base bdev for the written block (at 8 KiB into its cluster).
  const raw = new LvolIo(base);
  const find = async (): Promise<number> => {
    let hits = 0;
    for (let off = 0; off < 64 * MiB; off += CS) {
      const chunk = await raw.read(off + 8192, 4096);
      if (chunk.every((b, i) => b === secret[i])) hits++;
    }
    return hits;
  };
  assert.equal(await find(), 2);
  const steps: number[] = [];
  await lvs.deleteLvol(wipe, (d) => steps.push(d));
  assert.deepEqual(steps, [1, 2]);
  assert.equal(await find(), 1, 'only the lvol with clear_method none still holds it');
  assert.equal(bdevs.get('lvs0/wipe'), undefined);
  raw.close();
});
