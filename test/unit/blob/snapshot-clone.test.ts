import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findInvariantViolations } from '../../../src/blob/blobstore-invariants.ts';
import { CS, fill, newStore, readAll, rejectsCode, write } from './ram-blobstore.ts';

function expectBytes(size: number, ...writes: Array<[number, Uint8Array]>): Uint8Array {
  const out = new Uint8Array(size);
  for (const [off, d] of writes) out.set(d, off);
  return out;
}

test('snapshot: the snapshot keeps the data, the blob becomes its thin clone, copy-on-write on partial writes', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 2, thin: false });
  const w1 = fill(2 * CS, 1);
  await write(bs, id, 0, w1);
  const b = bs.openBlob(id);
  const snap = await bs.createSnapshot(b, { xattrs: { name: 'snap1' } });
  const s = bs.openBlob(snap);
  assert.equal(s.isReadOnly, true);
  assert.equal(s.getXattrString('name'), 'snap1');
  assert.equal(s.allocatedClusters, 2, 'the snapshot took the clusters');
  assert.deepEqual(s.cloneIds(), [id]);
  assert.equal(b.parentId, snap);
  assert.equal(b.isThin, true);
  assert.equal(b.allocatedClusters, 0);
  assert.equal(bs.freeClusters, 245, 'a snapshot copies no data');
  const w2 = fill(4096, 2);
  await bs.writeBlob(b, 4096, w2);
  assert.equal(b.allocatedClusters, 1);
  assert.deepEqual(await readAll(bs, id), expectBytes(2 * CS, [0, w1], [4096, w2]), 'rest of cluster 0 copied from the snapshot');
  assert.deepEqual(await readAll(bs, snap), w1, 'snapshot unchanged');
  await rejectsCode(bs.writeBlob(s, 0, new Uint8Array(4096)), 'BLOB_READ_ONLY');
  await rejectsCode(bs.createSnapshot(s), 'BLOB_READ_ONLY');
  b.close();
  s.close();
  assert.deepEqual(findInvariantViolations(bs.inspect()), []);
});

test('snapshot chain of depth 3: every level reads its own point in time', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 3 });
  const b = bs.openBlob(id);
  const v: Uint8Array[] = [];
  const snaps: number[] = [];
  let cur = new Uint8Array(3 * CS);
  for (let gen = 0; gen < 4; gen++) {
    const d = fill(8192, 10 + gen);
    await bs.writeBlob(b, gen * 8192, d); // generations overlap clusters 0..1 and move along
    cur = cur.slice();
    cur.set(d, gen * 8192);
    v.push(cur);
    if (gen < 3) snaps.push(await bs.createSnapshot(b));
  }
  // snaps[0] <- snaps[1] <- snaps[2] <- b
  const parents = snaps.map((sid) => {
    const h = bs.openBlob(sid);
    const p = h.parentId;
    h.close();
    return p;
  });
  assert.deepEqual(parents, [0, snaps[0], snaps[1]]);
  assert.equal(b.parentId, snaps[2]);
  for (let i = 0; i < 3; i++) assert.deepEqual(await readAll(bs, snaps[i]), v[i], `snapshot ${i}`);
  assert.deepEqual(await readAll(bs, id), v[3]);
  b.close();
  assert.deepEqual(findInvariantViolations(bs.inspect()), []);
});

test('clones of one snapshot diverge independently', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 2 });
  const base = fill(2 * CS, 3);
  await write(bs, id, 0, base);
  const b = bs.openBlob(id);
  await bs.setReadOnly(b);
  const c1 = await bs.createClone(b, { xattrs: { name: 'c1' } });
  const c2 = await bs.createClone(b);
  assert.deepEqual(b.cloneIds(), [c1, c2]);
  b.close();
  const d1 = fill(4096, 4);
  const d2 = fill(CS, 5);
  await write(bs, c1, 0, d1);
  await write(bs, c2, CS, d2);
  assert.deepEqual(await readAll(bs, c1), expectBytes(2 * CS, [0, base], [0, d1]));
  assert.deepEqual(await readAll(bs, c2), expectBytes(2 * CS, [0, base], [CS, d2]));
  assert.deepEqual(await readAll(bs, id), base);
  await rejectsCode(bs.deleteBlob(id), 'HAS_CLONES');
});

test('clone of a writable blob is refused; a clone larger than its snapshot reads zeroes beyond it', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 1 });
  await write(bs, id, 0, fill(CS, 6));
  const b = bs.openBlob(id);
  await rejectsCode(bs.createClone(b), 'BLOB_NOT_READ_ONLY');
  const snap = await bs.createSnapshot(b);
  await bs.resizeBlob(b, 3);
  assert.deepEqual(await readAll(bs, id), expectBytes(3 * CS, [0, fill(CS, 6)]));
  // A partial write beyond the snapshot's size is zero-filled, not copied.
  await bs.writeBlob(b, 2 * CS + 4096, fill(4096, 7));
  assert.deepEqual(await readAll(bs, id), expectBytes(3 * CS, [0, fill(CS, 6)], [2 * CS + 4096, fill(4096, 7)]));
  b.close();
  assert.deepEqual(await readAll(bs, snap), fill(CS, 6));
});

test('deleting a middle snapshot merges its clusters into its one clone', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 3 });
  const b = bs.openBlob(id);
  await bs.writeBlob(b, 0, fill(3 * CS, 1));
  const s1 = await bs.createSnapshot(b);
  await bs.writeBlob(b, CS, fill(CS, 2)); // cluster 1 changes after s1
  const s2 = await bs.createSnapshot(b);
  await bs.writeBlob(b, 2 * CS, fill(4096, 3));
  const s2Before = await readAll(bs, s2);
  const bBefore = await readAll(bs, id);
  const free = bs.freeClusters;
  // s1 <- s2 <- b. s2 owns cluster 1 only; b owns cluster 2. Delete s2.
  await bs.deleteBlob(s2);
  assert.equal(b.parentId, s1);
  assert.equal(b.allocatedClusters, 2, 'b took s2\'s cluster 1 and kept its own cluster 2');
  assert.equal(bs.freeClusters, free, 'no cluster freed: the only one s2 had moved to b');
  assert.deepEqual(await readAll(bs, id), bBefore);
  const h1 = bs.openBlob(s1);
  assert.deepEqual(h1.cloneIds(), [id]);
  h1.close();
  assert.notDeepEqual(s2Before, await readAll(bs, s1), 'b now reads cluster 1 from itself, not s1');
  // Now delete s1 (clusters 0, 1, 2): b, its only clone, lacks only cluster 0, which moves to it;
  // s1's clusters 1 and 2 are shadowed by b's own and are freed.
  await bs.deleteBlob(s1);
  assert.equal(b.parentId, 0);
  assert.equal(b.allocatedClusters, 3);
  assert.equal(bs.freeClusters, free + 2);
  assert.deepEqual(await readAll(bs, id), bBefore);
  b.close();
  assert.deepEqual(findInvariantViolations(bs.inspect()), []);
});

test('inflate copies everything from the chain; decouple copies only the parent\'s clusters', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 3 });
  const b = bs.openBlob(id);
  await bs.writeBlob(b, 0, fill(CS, 1)); // cluster 0 in s1
  const s1 = await bs.createSnapshot(b);
  await bs.writeBlob(b, CS, fill(CS, 2)); // cluster 1 in s2
  const s2 = await bs.createSnapshot(b);
  const c = await bs.createClone(bs.openBlob(s2));
  const ch = bs.openBlob(c);
  const before = await readAll(bs, c);
  await bs.decoupleParent(ch);
  assert.equal(ch.parentId, s1, 'grandparent is the new parent');
  assert.deepEqual([0, 1, 2].map((i) => ch.isClusterAllocated(i)), [false, true, false], 'only s2\'s cluster copied');
  assert.deepEqual(await readAll(bs, c), before);
  await bs.inflateBlob(ch);
  assert.equal(ch.parentId, 0);
  assert.equal(ch.isThin, false);
  assert.equal(ch.allocatedClusters, 3, 'all clusters, the never-written one as zeroes');
  assert.deepEqual(await readAll(bs, c), before);
  await rejectsCode(bs.decoupleParent(ch), 'NO_PARENT');
  ch.close();
  b.close();
  assert.deepEqual(findInvariantViolations(bs.inspect()), []);
});

test('I/O waits while a snapshot moves clusters, and lands on the right side', async () => {
  const { bs } = await newStore();
  const id = await bs.createBlob({ numClusters: 2 });
  const b = bs.openBlob(id);
  await bs.writeBlob(b, 0, fill(2 * CS, 1));
  const w = fill(4096, 9);
  const [snap] = await Promise.all([bs.createSnapshot(b), bs.writeBlob(b, 0, w)]);
  // The write either preceded the snapshot (both see it) or followed it (only b does).
  const s = await readAll(bs, snap);
  const cur = await readAll(bs, id);
  assert.deepEqual(cur.subarray(0, 4096), w);
  assert.ok(s.subarray(0, 4096).every((x, i) => x === w[i]) || s.subarray(0, 4096).every((x, i) => x === fill(4096, 1)[i]));
  b.close();
  assert.deepEqual(findInvariantViolations(bs.inspect()), []);
});

test('removing a small snapshot from the chain keeps the zeroes it implied beyond its size', async () => {
  for (const how of ['delete', 'decouple'] as const) {
    const { bs } = await newStore();
    const id = await bs.createBlob({ numClusters: 3 });
    const b = bs.openBlob(id);
    await bs.writeBlob(b, 0, fill(3 * CS, 1));
    const s1 = await bs.createSnapshot(b); // s1: 3 clusters of data
    await bs.resizeBlob(b, 1);
    const s2 = await bs.createSnapshot(b); // s2: 1 cluster; beyond it b reads zeroes
    await bs.resizeBlob(b, 3);
    const want = expectBytes(3 * CS, [0, fill(CS, 1)]);
    assert.deepEqual(await readAll(bs, id), want);
    const free = bs.freeClusters;
    if (how === 'delete') await bs.deleteBlob(s2);
    else await bs.decoupleParent(b);
    assert.equal(b.parentId, s1, how);
    assert.deepEqual(await readAll(bs, id), want, `${how}: s1's clusters 1-2 must not show through`);
    // s2 owned no cluster (b had none when it was taken): cluster 0 still comes from s1.
    assert.deepEqual([0, 1, 2].map((i) => b.isClusterAllocated(i)), [false, true, true], `${how}: zero clusters allocated`);
    assert.equal(bs.freeClusters, free - 2, how);
    b.close();
    assert.deepEqual(findInvariantViolations(bs.inspect()), []);
  }
});
