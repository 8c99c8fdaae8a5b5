import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RamBlobDevice } from '../../../src/blob/ram-blob-device.ts';
import { FaultyBlobDevice } from '../../../src/blob/faulty-blob-device.ts';
import { code } from './ram-blobstore.ts';

test('RAM device: reads what was written, unmap zeroes, misaligned or out-of-range access refused', async () => {
  const d = new RamBlobDevice(512, 16);
  await d.write(512, new Uint8Array(1024).fill(0xab));
  const out = new Uint8Array(1536);
  await d.read(0, 1536, out);
  assert.equal(out[511], 0);
  assert.equal(out[512], 0xab);
  assert.equal(out[1535], 0xab);
  await d.unmap(1024, 512);
  await d.read(512, 1024, out);
  assert.deepEqual([out[0], out[511], out[512], out[1023]], [0xab, 0xab, 0, 0]);
  await assert.rejects(d.write(100, new Uint8Array(512)), code('OUT_OF_RANGE'));
  await assert.rejects(d.read(7680, 1024, new Uint8Array(1024)), code('OUT_OF_RANGE'));
  await assert.rejects(d.read(0, 1024, new Uint8Array(512)), code('OUT_OF_RANGE'));
  assert.throws(() => new RamBlobDevice(1000, 4), code('INVALID_ARGUMENT'));
});

test('faulty device: applies the first N writes (unmaps count), drops the rest', async () => {
  const inner = new RamBlobDevice(512, 8);
  const f = new FaultyBlobDevice(inner, { writeLimit: 2 });
  await f.write(0, new Uint8Array(512).fill(1));
  await f.unmap(0, 512);
  await f.write(512, new Uint8Array(512).fill(3));
  await f.write(1024, new Uint8Array(512).fill(4));
  assert.equal(f.writesIssued, 4);
  assert.equal(f.crashed, true);
  assert.deepEqual([inner.bytes[0], inner.bytes[512], inner.bytes[1024]], [0, 0, 0]);
  assert.equal(inner.writes, 1);
  assert.equal(inner.unmaps, 1);
  const back = new Uint8Array(512);
  await f.read(0, 512, back);
  assert.equal(back[0], 0, 'reads see the surviving image');
});

test('faulty device: tears the first dropped write at a block boundary, never a single block', async () => {
  const inner = new RamBlobDevice(4096, 8);
  const f = new FaultyBlobDevice(inner, { writeLimit: 0, tearBlocks: 2 });
  await f.write(0, new Uint8Array(4 * 4096).fill(9));
  assert.equal(inner.bytes[2 * 4096 - 1], 9);
  assert.equal(inner.bytes[2 * 4096], 0, 'blocks after the tear are lost');
  await f.write(4 * 4096, new Uint8Array(4096).fill(9));
  assert.equal(inner.bytes[4 * 4096], 0, 'later writes are dropped whole');

  const single = new RamBlobDevice(4096, 2);
  await new FaultyBlobDevice(single, { writeLimit: 0, tearBlocks: 5 }).write(0, new Uint8Array(4096).fill(1));
  assert.equal(single.bytes[0], 0, 'a one-block write is atomic: dropped, not torn');
});
