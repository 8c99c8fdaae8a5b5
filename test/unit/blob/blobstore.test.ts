import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Blobstore } from '../../../src/blob/blobstore.ts';
import { findInvariantViolations } from '../../../src/blob/blobstore-invariants.ts';
import { CS, code, fill, newStore, readAll, rejectsCode, write } from './ram-blobstore.ts';

test('format: geometry, free clusters, unique uuid, empty', async () => {
  const { bs } = await newStore({ bstype: 'LVOLSTORE' });
  assert.equal(bs.clusterSize, CS);
  assert.equal(bs.totalClusters, 256);
  assert.equal(bs.totalDataClusters, 247);
  assert.equal(bs.freeClusters, 247);
  assert.equal(bs.ioUnitSize, 4096);
  assert.equal(bs.bstype, 'LVOLSTORE');
  assert.match(bs.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(bs.uuid, (await newStore()).bs.uuid);
  assert.deepEqual(bs.blobIds(), []);
  await assert.rejects(Blobstore.create((await newStore()).dev, { clusterSize: 3000 }), code('INVALID_ARGUMENT'));
});

test('thin blob: reads zeroes, first write allocates one cluster, partial write zero-fills the rest', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 4, xattrs: { name: 'vol0' } });
  assert.equal(id, 2 ** 32, 'blob id = root metadata page 0 + 2^32');
  const b = bs.openBlob(id);
  assert.equal(b.isThin, true);
  assert.equal(b.sizeBytes, 4 * CS);
  assert.equal(b.getXattrString('name'), 'vol0');
  assert.deepEqual(await readAll(bs, id), new Uint8Array(4 * CS));
  const data = fill(4096, 1);
  await bs.writeBlob(b, CS + 8192, data);
  assert.equal(b.allocatedClusters, 1);
  assert.equal(bs.freeClusters, 246);
  assert.deepEqual([0, 1, 2, 3].map((i) => b.isClusterAllocated(i)), [false, true, false, false]);
  const all = await readAll(bs, id);
  const want = new Uint8Array(4 * CS);
  want.set(data, CS + 8192);
  assert.deepEqual(all, want);
  // A second write to the same cluster goes straight to the device.
  await bs.writeBlob(b, CS, fill(4096, 2));
  assert.equal(b.allocatedClusters, 1);
  b.close();
});

test('a write spanning clusters allocates each, and reads across them return the bytes', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 3 });
  const data = fill(CS + 8192, 3);
  await write(bs, id, CS - 4096, data);
  const b = bs.openBlob(id);
  assert.equal(b.allocatedClusters, 3);
  const out = new Uint8Array(data.length);
  await bs.readBlob(b, CS - 4096, out.length, out);
  assert.deepEqual(out, data);
  b.close();
});

test('thick blob: clusters allocated at create and on grow; shrink frees them', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 3, thin: false });
  const b = bs.openBlob(id);
  assert.equal(b.allocatedClusters, 3);
  assert.equal(bs.freeClusters, 244);
  assert.deepEqual(await readAll(bs, id), new Uint8Array(3 * CS), 'fresh clusters were unmapped at format');
  await bs.resizeBlob(b, 5);
  assert.equal(b.allocatedClusters, 5);
  assert.equal(bs.freeClusters, 242);
  await bs.resizeBlob(b, 1);
  assert.equal(b.numClusters, 1);
  assert.equal(bs.freeClusters, 246);
  b.close();
});

test('shrink drops allocated data by default and refuses only when asked to keep it', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 4 });
  await write(bs, id, 2 * CS, fill(4096, 4));
  const b = bs.openBlob(id);
  await bs.resizeBlob(b, 3, { preserveAllocated: true }); // cluster 3 unallocated: nothing to keep
  assert.equal(b.numClusters, 3);
  await rejectsCode(bs.resizeBlob(b, 2, { preserveAllocated: true }), 'WOULD_DROP_DATA');
  assert.equal(b.numClusters, 3, 'a refused shrink changes nothing');
  assert.equal(b.allocatedClusters, 1);
  await bs.resizeBlob(b, 2);
  assert.equal(b.allocatedClusters, 0);
  assert.equal(bs.freeClusters, 247);
  await bs.resizeBlob(b, 3);
  assert.deepEqual(await readAll(bs, id), new Uint8Array(3 * CS), 'regrown cluster reads zeroes, not the dropped data');
  b.close();
});

test('xattrs: set, replace, remove, and their errors', async () => {
  const { bs } = await newStore();
  const b = bs.openBlob(await bs.createBlob());
  await bs.setXattr(b, 'name', 'a');
  await bs.setXattr(b, 'name', 'bb');
  await bs.setXattr(b, 'bin', Uint8Array.of(0, 1, 255));
  assert.equal(b.getXattrString('name'), 'bb');
  assert.deepEqual(b.getXattr('bin'), Uint8Array.of(0, 1, 255));
  await bs.removeXattr(b, 'bin');
  assert.deepEqual(b.xattrNames(), ['name']);
  await rejectsCode(bs.removeXattr(b, 'bin'), 'XATTR_NOT_FOUND');
  await rejectsCode(bs.setXattr(b, 'big', new Uint8Array(5000)), 'XATTR_TOO_LARGE');
  await rejectsCode(bs.setXattr(b, '', 'x'), 'INVALID_ARGUMENT');
  b.close();
});

test('read-only blob: writes and resizes refused, reads and xattrs allowed', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 2 });
  await write(bs, id, 0, fill(4096, 5));
  const b = bs.openBlob(id);
  await bs.setReadOnly(b);
  assert.equal(b.isReadOnly, true);
  await rejectsCode(bs.writeBlob(b, 0, new Uint8Array(4096)), 'BLOB_READ_ONLY');
  await rejectsCode(bs.resizeBlob(b, 3), 'BLOB_READ_ONLY');
  await bs.setXattr(b, 'name', 'frozen');
  assert.deepEqual((await readAll(bs, id)).subarray(0, 4096), fill(4096, 5));
  b.close();
});

test('delete frees clusters and metadata; open blobs and closed handles are refused', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 2, thin: false });
  const b = bs.openBlob(id);
  await rejectsCode(bs.deleteBlob(id), 'BLOB_IN_USE');
  b.close();
  await rejectsCode(bs.writeBlob(b, 0, new Uint8Array(4096)), 'BLOB_CLOSED');
  await bs.deleteBlob(id);
  assert.deepEqual(bs.blobIds(), []);
  assert.equal(bs.freeClusters, 247);
  assert.throws(() => bs.openBlob(id), code('BLOB_NOT_FOUND'));
  await rejectsCode(bs.deleteBlob(id), 'BLOB_NOT_FOUND');
  const s = bs.inspect();
  assert.equal(s.usedPages.countSet(), 0);
  assert.equal(s.usedBlobIds.countSet(), 0);
  assert.equal(await bs.createBlob(), id, 'the freed root page (and so the id) is reused');
});

test('I/O must be aligned to the I/O unit and inside the blob', async () => {
  const { bs } = await newStore();
  const b = bs.openBlob(await bs.createBlob({ numClusters: 1 }));
  await rejectsCode(bs.writeBlob(b, 100, new Uint8Array(4096)), 'OUT_OF_RANGE');
  await rejectsCode(bs.writeBlob(b, 0, new Uint8Array(100)), 'OUT_OF_RANGE');
  await rejectsCode(bs.writeBlob(b, CS, new Uint8Array(4096)), 'OUT_OF_RANGE');
  await rejectsCode(bs.readBlob(b, 0, 8192, new Uint8Array(4096)), 'OUT_OF_RANGE');
  b.close();
});

test('NO_SPACE leaves nothing allocated; NO_MD_SPACE when metadata pages run out', async () => {
  const { bs } = await newStore();
  await rejectsCode(bs.createBlob({ numClusters: 248, thin: false }), 'NO_SPACE');
  assert.equal(bs.freeClusters, 247);
  assert.deepEqual(bs.blobIds(), []);
  const id = await bs.createBlob({ numClusters: 300 }); // thin: over-provisioning is allowed
  const b = bs.openBlob(id);
  await bs.writeBlob(b, 0, new Uint8Array(247 * CS));
  await rejectsCode(bs.writeBlob(b, 247 * CS, new Uint8Array(4096)), 'NO_SPACE');
  b.close();
  for (let i = 1; i < 32; i++) await bs.createBlob();
  await rejectsCode(bs.createBlob(), 'NO_MD_SPACE');
  assert.deepEqual(findInvariantViolations(bs.inspect()), []);
});

test('concurrent first writes to one cluster allocate it once and keep both writes', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 1 });
  const b = bs.openBlob(id);
  await Promise.all([bs.writeBlob(b, 0, fill(4096, 7)), bs.writeBlob(b, 8192, fill(4096, 8))]);
  assert.equal(b.allocatedClusters, 1);
  assert.equal(bs.freeClusters, 246);
  const all = await readAll(bs, id);
  assert.deepEqual(all.subarray(0, 4096), fill(4096, 7));
  assert.deepEqual(all.subarray(8192, 12288), fill(4096, 8));
  b.close();
});

test('super blob id is stored and survives reload; unload refuses open blobs', async () => {
  const { bs, dev } = await newStore();
  const id = await bs.createBlob();
  await bs.setSuperBlob(id);
  const b = bs.openBlob(id);
  await rejectsCode(bs.unload(), 'BLOB_IN_USE');
  b.close();
  await bs.unload();
  assert.throws(() => bs.blobIds(), code('UNLOADED'));
  const again = await Blobstore.load(dev);
  assert.equal(again.superBlobId, id);
  await again.deleteBlob(id);
  assert.equal(again.superBlobId, 0, 'deleting the super blob clears it');
});

test('a thick blob never shows an earlier owner\'s data: its clusters are unmapped when allocated', async () => {
  const { bs, dev } = await newStore();
  await bs.unload();
  const keep = await Blobstore.load(dev, { unmapClusters: false });
  const old = await keep.createBlob({ numClusters: 2 });
  const h = keep.openBlob(old);
  await keep.writeBlob(h, 0, fill(2 * CS, 9));
  h.close();
  await keep.deleteBlob(old); // no unmap: the freed clusters still hold the data
  assert.equal(dev.bytes[9 * CS], fill(1, 9)[0], 'stale bytes remain on the device');
  await keep.unload();
  const again = await Blobstore.load(dev);
  const id = await again.createBlob({ numClusters: 2, thin: false });
  const b = again.openBlob(id);
  assert.equal(b.record.map.entry(0), 9, 'the same cluster was handed out again');
  b.close();
  assert.deepEqual(await readAll(again, id), new Uint8Array(2 * CS));
});
