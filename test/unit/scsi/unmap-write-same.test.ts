import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLun, run, buildTask, outcome, decodeSense, cdb10, cdb16, pattern, put } from './scsi-test-kit.ts';
import { BDEV_EIO } from '../../../src/bdev/bdev.ts';

const BS = 512;

/** An UNMAP parameter list with the given (lba, blocks) descriptors. */
function unmapList(descs: [number, number][]): Uint8Array {
  const l = new Uint8Array(8 + 16 * descs.length);
  const v = new DataView(l.buffer);
  v.setUint16(0, 6 + 16 * descs.length);
  v.setUint16(2, 16 * descs.length);
  descs.forEach(([lba, n], i) => {
    v.setBigUint64(8 + 16 * i, BigInt(lba));
    v.setUint32(16 + 16 * i, n);
  });
  return l;
}

function unmapCdb(len: number, byte1 = 0): number[] {
  return put([0x42, byte1, 0, 0, 0, 0, 0, 0, 0, 0], 7, 2, len);
}

test('UNMAP runs one bdev unmap per non-empty descriptor, in order', () => {
  const { lun, ch } = makeLun({ numBlocks: 128 });
  ch.store.fill(0xaa);
  const list = unmapList([
    [10, 4],
    [0, 0],
    [100, 28],
  ]);
  const r = run(lun, unmapCdb(list.length), { out: list });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, list.length);
  assert.deepEqual(ch.calls, [
    { op: 'unmap', lba: 10, blocks: 4 },
    { op: 'unmap', lba: 100, blocks: 28 },
  ]);
  assert.equal(ch.store[10 * BS], 0);
  assert.equal(ch.store[14 * BS], 0xaa);
  assert.equal(ch.store[127 * BS + 511], 0);
});

test('UNMAP validates the whole list before unmapping anything', () => {
  const { lun, ch } = makeLun({ numBlocks: 128 });
  let list = unmapList([
    [0, 4],
    [126, 3],
  ]);
  let r = run(lun, unmapCdb(list.length), { out: list });
  assert.deepEqual(outcome(r.task), [2, 5, 0x21, 0], 'second descriptor out of range');
  assert.equal(ch.calls.length, 0);
  // descriptor data length larger than the list
  list = unmapList([[0, 4]]);
  new DataView(list.buffer).setUint16(2, 32);
  r = run(lun, unmapCdb(list.length), { out: list });
  assert.deepEqual(outcome(r.task), [2, 5, 0x1a, 0]);
  // parameter list shorter than the header
  r = run(lun, unmapCdb(6), { out: new Uint8Array(6) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x1a, 0]);
  // more descriptors than VPD B0 allows
  const many = unmapList(new Array(257).fill([0, 1]));
  r = run(lun, unmapCdb(many.length), { out: many });
  assert.deepEqual(outcome(r.task), [2, 5, 0x26, 0]);
  assert.equal(decodeSense(r.task.sense).sks, 0x800002);
  // parameter list length larger than the data-out buffer
  list = unmapList([[0, 4]]);
  r = run(lun, unmapCdb(list.length + 16), { out: list });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  // ANCHOR
  r = run(lun, unmapCdb(list.length, 0x01), { out: list });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(ch.calls.length, 0);
  // a trailing partial descriptor is ignored; length 0 is a no-op
  const partial = new Uint8Array(8 + 16 + 8);
  partial.set(unmapList([[5, 1]]));
  new DataView(partial.buffer).setUint16(0, 30);
  new DataView(partial.buffer).setUint16(2, 24);
  r = run(lun, unmapCdb(partial.length), { out: partial });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.deepEqual(ch.calls, [{ op: 'unmap', lba: 5, blocks: 1 }]);
  r = run(lun, unmapCdb(0));
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
});

test('UNMAP without unmap support is an unknown opcode; a bdev error is a write error', () => {
  const thick = makeLun({ info: { unmapSupported: false, unmapReadsZero: false } });
  const list = unmapList([[0, 1]]);
  let r = run(thick.lun, unmapCdb(list.length), { out: list });
  assert.deepEqual(outcome(r.task), [2, 5, 0x20, 0]);
  const { lun, ch } = makeLun();
  ch.failNext = BDEV_EIO;
  r = run(lun, unmapCdb(list.length), { out: list });
  assert.deepEqual(outcome(r.task), [2, 3, 0x0c, 0]);
});

test('WRITE SAME(16) replicates a non-zero block over the range in scratch-sized chunks', () => {
  const { lun, ch } = makeLun({ numBlocks: 400 });
  const block = pattern(BS, 77);
  const r = run(lun, cdb16(0x93, 3, 300), { out: block });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, BS);
  // 64 KiB scratch = 128 blocks per write
  assert.deepEqual(ch.calls, [
    { op: 'write', lba: 3, blocks: 128 },
    { op: 'write', lba: 131, blocks: 128 },
    { op: 'write', lba: 259, blocks: 44 },
  ]);
  for (let b = 3; b < 303; b++) assert.deepEqual(ch.store.subarray(b * BS, (b + 1) * BS), block, `block ${b}`);
  assert.ok(ch.store.subarray(0, 3 * BS).every((x) => x === 0));
  assert.ok(ch.store.subarray(303 * BS).every((x) => x === 0));
});

test('WRITE SAME(10) with a zero block writes zeroes in one call; falls back to replicate without write-zeroes', () => {
  const { lun, ch } = makeLun({ numBlocks: 200 });
  ch.store.fill(0x55);
  let r = run(lun, cdb10(0x41, 10, 150), { out: new Uint8Array(BS) });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.deepEqual(ch.calls, [{ op: 'writeZeroes', lba: 10, blocks: 150 }]);
  assert.ok(ch.store.subarray(10 * BS, 160 * BS).every((x) => x === 0));
  ch.calls.length = 0;
  ch.store.fill(0x55);
  ch.writeZeroesSupported = false;
  r = run(lun, cdb10(0x41, 10, 150), { out: new Uint8Array(BS) });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.deepEqual(ch.calls, [
    { op: 'writeZeroes', lba: 10, blocks: 150 },
    { op: 'write', lba: 10, blocks: 128 },
    { op: 'write', lba: 138, blocks: 22 },
  ]);
  assert.ok(ch.store.subarray(10 * BS, 160 * BS).every((x) => x === 0));
  assert.equal(ch.store[160 * BS], 0x55);
});

test('WRITE SAME with UNMAP: zero block or NDOB unmaps, a non-zero block is written', () => {
  const { lun, ch } = makeLun({ numBlocks: 64 });
  let r = run(lun, cdb16(0x93, 8, 16, 0x08), { out: new Uint8Array(BS) });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.deepEqual(ch.calls, [{ op: 'unmap', lba: 8, blocks: 16 }]);
  ch.calls.length = 0;
  r = run(lun, cdb16(0x93, 8, 16, 0x09)); // UNMAP + NDOB, no data-out buffer
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, 0);
  assert.deepEqual(ch.calls, [{ op: 'unmap', lba: 8, blocks: 16 }]);
  ch.calls.length = 0;
  r = run(lun, cdb10(0x41, 8, 2, 0x08), { out: new Uint8Array(BS) });
  assert.deepEqual(ch.calls, [{ op: 'unmap', lba: 8, blocks: 2 }]);
  ch.calls.length = 0;
  r = run(lun, cdb16(0x93, 8, 2, 0x08), { out: pattern(BS, 1) });
  assert.deepEqual(ch.calls, [{ op: 'write', lba: 8, blocks: 2 }]);
  assert.deepEqual(ch.store.subarray(9 * BS, 10 * BS), pattern(BS, 1));
  ch.calls.length = 0;
  r = run(lun, cdb16(0x93, 8, 2, 0x01)); // NDOB without UNMAP: zeroes
  assert.deepEqual(ch.calls, [{ op: 'writeZeroes', lba: 8, blocks: 2 }]);
});

test('WRITE SAME field checks', () => {
  const { lun, ch } = makeLun({ numBlocks: 64 });
  const cases: [number[], Uint8Array | undefined, [number, number, number, number], number][] = [
    [cdb10(0x41, 0, 1, 0x01), new Uint8Array(BS), [2, 5, 0x24, 0], 0xc80001], // NDOB in (10)
    [cdb16(0x93, 0, 1, 0x10), new Uint8Array(BS), [2, 5, 0x24, 0], 0xcc0001], // ANCHOR
    [cdb16(0x93, 0, 1, 0x20), new Uint8Array(BS), [2, 5, 0x24, 0], 0xcf0001], // WRPROTECT
    [cdb16(0x93, 0, 0), new Uint8Array(BS), [2, 5, 0x24, 0], 0xc0000a], // WSNZ
    [cdb16(0x93, 60, 5), new Uint8Array(BS), [2, 5, 0x21, 0], -1],
    [cdb16(0x93, 0, 1), new Uint8Array(BS - 1), [2, 5, 0x24, 0], -1], // short data-out
  ];
  for (const [cdb, out, exp, sks] of cases) {
    const r = run(lun, cdb, out ? { out } : {});
    assert.deepEqual(outcome(r.task), exp, cdb.join(','));
    assert.equal(decodeSense(r.task.sense).sks, sks, cdb.join(','));
  }
  const thick = makeLun({ info: { unmapSupported: false, unmapReadsZero: false } }).lun;
  const r = run(thick, cdb16(0x93, 0, 1, 0x08), { out: new Uint8Array(BS) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0], 'UNMAP bit without LBPWS');
  assert.equal(ch.calls.length, 0);
});

test('concurrent WRITE SAMEs share the scratch buffer one at a time (async bdev)', () => {
  const { lun, ch } = makeLun({ numBlocks: 512 });
  ch.async = true;
  const a = buildTask(cdb16(0x93, 0, 200), { out: pattern(BS, 1) });
  const b = buildTask(cdb16(0x93, 256, 200), { out: pattern(BS, 2) });
  const rd = buildTask(cdb10(0x28, 500, 1), { inLen: BS });
  lun.execute(a.task);
  lun.execute(b.task);
  lun.execute(rd.task);
  assert.deepEqual(
    ch.calls.map((c) => `${c.op}:${c.lba}`),
    ['write:0', 'read:500'],
    'second WRITE SAME waits; the read does not',
  );
  assert.equal(lun.activeTasks, 3);
  while (a.rec.done.length + b.rec.done.length < 2) lun.poll();
  assert.equal(a.task.status, 0);
  assert.equal(b.task.status, 0);
  for (let i = 0; i < 200; i++) {
    assert.deepEqual(ch.store.subarray(i * BS, (i + 1) * BS), pattern(BS, 1));
    assert.deepEqual(ch.store.subarray((256 + i) * BS, (257 + i) * BS), pattern(BS, 2));
  }
  assert.equal(lun.activeTasks, 0);
});
