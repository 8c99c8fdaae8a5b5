import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Blobstore } from '../../../src/blob/blobstore.ts';
import { RamBlobDevice } from '../../../src/blob/ram-blob-device.ts';
import { findInvariantViolations } from '../../../src/blob/blobstore-invariants.ts';
import { CS, fill, newStore, readAll, rejectsCode, write } from './ram-blobstore.ts';

/** The same bytes on a device of `bytes`, as after the disk under a blobstore grew. */
function grownCopy(dev: RamBlobDevice, bytes: number): RamBlobDevice {
  const contents = new Uint8Array(bytes);
  contents.set(dev.bytes);
  return new RamBlobDevice(dev.blockSize, bytes / dev.blockSize, contents);
}

test('grow: a blobstore takes in a larger device, uses the new clusters, and keeps the size across reloads', async () => {
  const { dev, bs } = await newStore({ bytes: 2 * 1024 * 1024 });
  const total0 = bs.totalClusters;
  const id = await bs.createBlob({ numClusters: 8, thin: true });
  await write(bs, id, CS, fill(CS, 1));
  await bs.unload();

  const big = grownCopy(dev, 4 * 1024 * 1024);
  const bs2 = await Blobstore.load(big);
  assert.equal(bs2.totalClusters, total0, 'loading on a larger device does not grow by itself');
  const free0 = bs2.freeClusters;
  assert.equal(await bs2.grow(), total0);
  assert.equal(bs2.totalClusters, 2 * total0);
  assert.equal(bs2.freeClusters, free0 + total0);
  assert.equal(await bs2.grow(), 0, 'nothing more to take');
  // Enough thick clusters that some must come from the new half.
  const thick = await bs2.createBlob({ numClusters: free0 + 10, thin: false });
  await write(bs2, thick, (free0 + 5) * CS, fill(CS, 2));
  assert.deepEqual((await readAll(bs2, id)).subarray(CS, 2 * CS), fill(CS, 1));
  await bs2.unload();

  const bs3 = await Blobstore.load(big);
  assert.equal(bs3.totalClusters, 2 * total0);
  assert.deepEqual((await readAll(bs3, thick)).subarray((free0 + 5) * CS, (free0 + 6) * CS), fill(CS, 2));
  assert.deepEqual(findInvariantViolations(bs3.inspect()), []);
});

test('grow: past what the cluster mask pages reserved at format can hold, it is refused and nothing changes', async () => {
  // 4 KiB clusters: one mask page describes (4096 - 16) * 8 = 32640 clusters = 127.5 MiB.
  const { dev, bs } = await newStore({ bytes: 1024 * 1024, clusterSize: 4096, mdPages: 8 });
  await bs.unload();
  const big = grownCopy(dev, 130 * 1024 * 1024);
  const bs2 = await Blobstore.load(big);
  const before = bs2.totalClusters;
  await rejectsCode(bs2.grow(), 'CANNOT_GROW');
  assert.equal(bs2.totalClusters, before);
  await bs2.unload();
  assert.equal((await Blobstore.load(big)).totalClusters, before);
});
