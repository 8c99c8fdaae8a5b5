import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Blobstore } from '../../../src/blob/blobstore.ts';
import { findInvariantViolations } from '../../../src/blob/blobstore-invariants.ts';
import { FaultyBlobDevice } from '../../../src/blob/faulty-blob-device.ts';
import { RamBlobDevice } from '../../../src/blob/ram-blob-device.ts';
import { mdPageOffset } from '../../../src/blob/blobstore-layout.ts';
import { SB_CLEAN_OFFSET } from '../../../src/blob/super-block.ts';
import { CS, code, fill, newStore, readAll, write } from './ram-blobstore.ts';

/** A store with a snapshot, a clone, a thick blob and a blob whose metadata spans pages. */
async function populated() {
  const { bs, dev } = await newStore();
  const a = await bs.createBlob({ numClusters: 3, xattrs: { name: 'a' } });
  await write(bs, a, 0, fill(CS + 4096, 1));
  const ha = bs.openBlob(a);
  const s = await bs.createSnapshot(ha);
  await bs.writeBlob(ha, 2 * CS, fill(4096, 2));
  await bs.setXattr(ha, 'big1', new Uint8Array(3000).fill(1));
  await bs.setXattr(ha, 'big2', new Uint8Array(3000).fill(2));
  ha.close();
  const hs = bs.openBlob(s);
  const c = await bs.createClone(hs);
  hs.close();
  await write(bs, c, CS, fill(8192, 3));
  const t = await bs.createBlob({ numClusters: 2, thin: false });
  await write(bs, t, 4096, fill(4096, 4));
  return { bs, dev, ids: { a, s, c, t } };
}

async function contents(bs: Blobstore) {
  const out: Record<string, unknown> = {};
  for (const id of bs.blobIds()) {
    const b = bs.openBlob(id);
    out[id.toString(16)] = {
      size: b.sizeBytes, parent: b.parentId, ro: b.isReadOnly, thin: b.isThin, clones: b.cloneIds(),
      x: Object.fromEntries(b.xattrNames().map((n) => [n, Array.from(b.getXattr(n)!).join(',')])),
    };
    b.close();
    (out[id.toString(16)] as Record<string, unknown>).data = Buffer.from(await readAll(bs, id)).toString('base64');
  }
  return out;
}

test('clean unload and load restore every blob, its data, links and xattrs', async () => {
  const { bs, dev, ids } = await populated();
  const before = await contents(bs);
  const state = bs.inspect();
  assert.ok(state.blobs.find((b) => b.id === ids.a)!.chainPages.length >= 1, 'blob a needs a chained page');
  await bs.unload();
  assert.equal(dev.bytes[SB_CLEAN_OFFSET], 1);
  const again = await Blobstore.load(dev);
  assert.equal(again.loadedClean, true);
  assert.equal(dev.bytes[SB_CLEAN_OFFSET], 0, 'loading marks the store in use before any change');
  assert.deepEqual(await contents(again), before);
  assert.ok(again.inspect().usedClusters.equals(state.usedClusters));
  assert.deepEqual(findInvariantViolations(again.inspect()), []);
});

test('dirty load (no unload) replays metadata and rebuilds the same bitmaps', async () => {
  const { bs, dev } = await populated();
  const before = await contents(bs);
  const state = bs.inspect();
  const again = await Blobstore.load(new RamBlobDevice(4096, dev.numBlocks, dev.bytes));
  assert.equal(again.loadedClean, false);
  const after = again.inspect();
  assert.ok(after.usedClusters.equals(state.usedClusters), 'cluster bitmap rebuilt');
  assert.ok(after.usedPages.equals(state.usedPages), 'metadata page bitmap rebuilt');
  assert.ok(after.usedBlobIds.equals(state.usedBlobIds), 'blob id bitmap rebuilt');
  assert.deepEqual(await contents(again), before);
  assert.deepEqual(findInvariantViolations(after), []);
});

test('dirty load ignores a stale mask: clusters freed after the last clean unload are free again', async () => {
  const { bs, dev, ids } = await populated();
  await bs.unload();
  const again = await Blobstore.load(dev);
  await again.deleteBlob(ids.t); // 2 clusters freed; the on-disk mask still says used
  const freeNow = again.freeClusters;
  const crashed = await Blobstore.load(new RamBlobDevice(4096, dev.numBlocks, dev.bytes));
  assert.equal(crashed.loadedClean, false);
  assert.equal(crashed.freeClusters, freeNow);
});

test('corrupted metadata is detected: root page, chained page, super block, mask', async () => {
  const { bs, dev, ids } = await populated();
  const L = bs.inspect().layout;
  const chain = bs.inspect().blobs.find((b) => b.id === ids.a)!.chainPages[0];
  await bs.unload();
  const corrupt = (off: number) => {
    const d = new RamBlobDevice(4096, dev.numBlocks, dev.bytes);
    d.bytes[off] ^= 0x10;
    return d;
  };
  const rootOff = mdPageOffset(L, ids.c - 2 ** 32) + 100;
  await assert.rejects(Blobstore.load(corrupt(rootOff)), (e: unknown) => code('BAD_CHECKSUM')(e) && /root page/.test((e as Error).message));
  await assert.rejects(
    Blobstore.load(corrupt(mdPageOffset(L, chain) + 50)),
    (e: unknown) => code('BAD_CHECKSUM')(e) && new RegExp(`metadata page ${chain}`).test((e as Error).message),
  );
  await assert.rejects(Blobstore.load(corrupt(64)), code('BAD_CHECKSUM'));
  await assert.rejects(Blobstore.load(corrupt(L.usedClusterMaskStart * 4096 + 20)), code('BAD_CHECKSUM'));
  await assert.rejects(Blobstore.load(corrupt(0)), code('BAD_SUPER'));
  await assert.rejects(Blobstore.load(new RamBlobDevice(4096, 64)), code('BAD_SUPER'));
  await assert.rejects(Blobstore.load(new RamBlobDevice(4096, dev.numBlocks, dev.bytes), { bstype: 'OTHER' }), code('BS_TYPE_MISMATCH'));
  // A chained page that fails its crc is caught on a dirty load too (reached from a valid root).
  const dirty = corrupt(mdPageOffset(L, chain) + 50);
  dirty.bytes[SB_CLEAN_OFFSET] = 0;
  await assert.rejects(Blobstore.load(dirty), code('BAD_CHECKSUM'));
});

test('a crash between the snapshot\'s metadata writes is undone or completed at load', async () => {
  for (const [extra, expectSnapshot] of [[0, false], [1, true]] as const) {
    const { dev } = await newStore();
    const base = await Blobstore.load(dev);
    const id = await base.createBlob({ numClusters: 2 });
    await write(base, id, 0, fill(2 * CS, 5));
    // The snapshot writes: new snapshot root (1), blob root (2), snapshot root without marker (3).
    const f = new FaultyBlobDevice(new RamBlobDevice(4096, dev.numBlocks, dev.bytes), { writeLimit: 1 + extra });
    const bs = await Blobstore.load(f); // dirty load (no unload above): writes nothing
    const h = bs.openBlob(id);
    await bs.createSnapshot(h);
    h.close();
    assert.equal(f.writesIssued, 3);
    const got = await Blobstore.load(f.inner);
    assert.equal(got.blobIds().length, expectSnapshot ? 2 : 1);
    assert.equal(got.recovered.length, 1, got.recovered.join());
    assert.match(got.recovered[0], expectSnapshot ? /snapshot creation completed/ : /interrupted snapshot/);
    assert.deepEqual(findInvariantViolations(got.inspect()), []);
    assert.deepEqual(await readAll(got, id), fill(2 * CS, 5));
  }
});

test('a crash during a snapshot deletion merge is rolled back or finished at load', async () => {
  for (const [limit, expectBlobs] of [[1, 2], [2, 1]] as const) {
    const { bs: setup, dev } = await newStore();
    const id = await setup.createBlob({ numClusters: 2 });
    await write(setup, id, 0, fill(2 * CS, 6));
    const h = setup.openBlob(id);
    const snap = await setup.createSnapshot(h);
    await setup.writeBlob(h, CS, fill(4096, 7));
    h.close();
    const want = await readAll(setup, id);
    // Deletion writes: snapshot marker (1), clone with merged map (2), snapshot root zeroed (3), unmap (4).
    const f = new FaultyBlobDevice(new RamBlobDevice(4096, dev.numBlocks, dev.bytes), { writeLimit: limit });
    const bs = await Blobstore.load(f);
    await bs.deleteBlob(snap);
    const got = await Blobstore.load(f.inner);
    assert.equal(got.blobIds().length, expectBlobs);
    assert.equal(got.recovered.length, 1);
    assert.match(got.recovered[0], limit === 1 ? /snapshot deletion rolled back/ : /interrupted snapshot deletion/);
    assert.deepEqual(await readAll(got, id), want);
    assert.deepEqual(findInvariantViolations(got.inspect()), []);
  }
});

test('formatting over an old blobstore leaves none of its blobs for a dirty load to find', async () => {
  const { dev } = await populated();
  await Blobstore.create(dev, { clusterSize: CS, mdPages: 32 });
  const again = await Blobstore.load(new RamBlobDevice(4096, dev.numBlocks, dev.bytes));
  assert.equal(again.loadedClean, false);
  assert.deepEqual(again.blobIds(), []);
  assert.equal(again.freeClusters, 247);
});

test('a delete waits for I/O still in flight on a handle closed just before it', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 2 });
  const b = bs.openBlob(id);
  const w = bs.writeBlob(b, 0, new Uint8Array(4096));
  b.close();
  await Promise.all([w, bs.deleteBlob(id)]);
  assert.deepEqual(bs.blobIds(), []);
  assert.equal(bs.freeClusters, 247);
  assert.deepEqual(findInvariantViolations(bs.inspect()), []);
});
