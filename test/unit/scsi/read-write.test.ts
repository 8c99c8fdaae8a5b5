import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLun, run, buildTask, outcome, decodeSense, cdb10, cdb16, pattern, put } from './scsi-test-kit.ts';
import { BDEV_EIO, BDEV_ENOMEM, BDEV_ENOSPC } from '../../../src/bdev/bdev.ts';

const BS = 512;

test('WRITE(10) then READ(10) round-trips data through split SgLists', () => {
  const { lun, ch } = makeLun();
  const data = pattern(3 * BS, 11);
  let r = run(lun, cdb10(0x2a, 5, 3), { out: data });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, 3 * BS);
  assert.deepEqual(ch.store.subarray(5 * BS, 8 * BS), data);
  assert.deepEqual(ch.calls, [{ op: 'write', lba: 5, blocks: 3 }]);
  r = run(lun, cdb10(0x28, 5, 3), { inLen: 3 * BS });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, 3 * BS);
  assert.deepEqual(r.dataIn, data);
});

test('READ/WRITE 6, 12 and 16 decode LBA and length', () => {
  const { lun, ch } = makeLun({ numBlocks: 300 });
  // WRITE(6): 21-bit LBA 2, 1 block
  let r = run(lun, [0x0a, 0x00, 0x00, 0x02, 1, 0], { out: pattern(BS, 1) });
  assert.equal(r.task.status, 0);
  assert.deepEqual(ch.calls.at(-1), { op: 'write', lba: 2, blocks: 1 });
  // READ(6) transfer length 0 means 256 blocks
  r = run(lun, [0x08, 0x00, 0x00, 0x01, 0, 0], { inLen: 256 * BS });
  assert.equal(r.task.status, 0);
  assert.deepEqual(ch.calls.at(-1), { op: 'read', lba: 1, blocks: 256 });
  assert.deepEqual(r.dataIn.subarray(BS, 2 * BS), pattern(BS, 1));
  // WRITE(12) / READ(12)
  const c12 = put(put([0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2, 4, 299), 6, 4, 1);
  r = run(lun, c12, { out: pattern(BS, 2) });
  assert.deepEqual(ch.calls.at(-1), { op: 'write', lba: 299, blocks: 1 });
  c12[0] = 0xa8;
  r = run(lun, c12, { inLen: BS });
  assert.deepEqual(r.dataIn, pattern(BS, 2));
  // WRITE(16) / READ(16)
  r = run(lun, cdb16(0x8a, 100, 2), { out: pattern(2 * BS, 3) });
  assert.deepEqual(ch.calls.at(-1), { op: 'write', lba: 100, blocks: 2 });
  r = run(lun, cdb16(0x88, 100, 2), { inLen: 2 * BS });
  assert.deepEqual(r.dataIn, pattern(2 * BS, 3));
});

test('LBA out of range: past the end, straddling the end, huge 64-bit LBA, 0 blocks past the end', () => {
  const { lun, ch } = makeLun({ numBlocks: 64 });
  const bad = [cdb10(0x28, 64, 1), cdb10(0x28, 63, 2), cdb16(0x88, 2 ** 40, 1), cdb16(0x88, 0xffffffffffff, 1), cdb10(0x28, 64, 0), cdb16(0x8a, 60, 8)];
  for (const c of bad) {
    const r = run(lun, c, c[0] === 0x8a ? { out: new Uint8Array(8 * BS) } : { inLen: 2 * BS });
    assert.deepEqual(outcome(r.task), [2, 5, 0x21, 0x00], c.join(','));
    assert.equal(r.task.transferred, 0);
  }
  // 2^64-1 is not representable: must still be out of range
  const max = cdb16(0x88, 0, 1);
  max.fill(0xff, 2, 10);
  assert.deepEqual(outcome(run(lun, max, { inLen: BS }).task), [2, 5, 0x21, 0x00]);
  assert.equal(ch.calls.length, 0);
  assert.equal(run(lun, cdb16(0x88, 0, 0), { inLen: BS }).task.status, 0, 'LBA 0, 0 blocks is fine');
  assert.equal(run(lun, cdb10(0x28, 63, 1), { inLen: BS }).task.status, 0, 'last block is readable');
  assert.equal(ch.calls.length, 1);
});

test('short data-out is refused without reading past it; short data-in transfers whole blocks that fit', () => {
  const { lun, ch } = makeLun();
  let r = run(lun, cdb10(0x2a, 0, 2), { out: pattern(2 * BS - 1, 5) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0x00]);
  assert.equal(decodeSense(r.task.sense).sks, 0xc00007, 'points at the transfer length');
  assert.equal(ch.calls.length, 0);
  assert.ok(ch.store.every((b) => b === 0));

  ch.store.set(pattern(4 * BS, 9));
  r = run(lun, cdb10(0x28, 0, 4), { inLen: 2 * BS + 100 });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, 2 * BS);
  assert.deepEqual(ch.calls.at(-1), { op: 'read', lba: 0, blocks: 2 });
  assert.deepEqual(r.dataIn.subarray(0, 2 * BS), pattern(4 * BS, 9).subarray(0, 2 * BS));
  assert.ok(r.dataIn.subarray(2 * BS).every((b) => b === 0));

  r = run(lun, cdb10(0x28, 0, 4), { inLen: 100 });
  assert.equal(r.task.status, 0);
  assert.equal(r.task.transferred, 0);
  assert.equal(ch.calls.length, 1, 'nothing fits: no bdev I/O');
});

test('zero transfer length succeeds without I/O', () => {
  const { lun, ch } = makeLun();
  const r = run(lun, cdb10(0x2a, 3, 0), { out: new Uint8Array(0) });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, 0);
  assert.equal(ch.calls.length, 0);
});

test('read-only LUN: DATA PROTECT / WRITE PROTECTED for every writing command, reads still work', () => {
  const { lun, ch } = makeLun({ info: { readOnly: true } });
  const block = new Uint8Array(BS);
  const unmapList = new Uint8Array(24);
  unmapList.set([0, 22, 0, 16]);
  const writers: [number[], Uint8Array][] = [
    [[0x0a, 0, 0, 0, 1, 0], block],
    [cdb10(0x2a, 0, 1), block],
    [put(put([0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2, 4, 0), 6, 4, 1), block],
    [cdb16(0x8a, 0, 1), block],
    [cdb10(0x41, 0, 1), block],
    [cdb16(0x93, 0, 1), block],
    [[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], unmapList],
    [put([0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], 2, 8, 0), new Uint8Array(2 * BS)],
  ];
  for (const [cdb, out] of writers) {
    const r = run(lun, cdb, { out });
    assert.deepEqual(outcome(r.task), [2, 7, 0x27, 0x00], `opcode 0x${cdb[0].toString(16)}`);
  }
  assert.equal(ch.calls.length, 0);
  const r = run(lun, cdb10(0x28, 0, 1), { inLen: BS });
  assert.equal(r.task.status, 0);
  // MODE SENSE reports WP
  const ms = run(lun, [0x1a, 0x08, 0x3f, 0, 255, 0], { inLen: 255 });
  assert.equal(ms.dataIn[2], 0x90, 'WP | DPOFUA');
});

test('FUA writes then flushes the range; WCE=0 makes every write write-through', () => {
  const { lun, ch } = makeLun();
  run(lun, cdb10(0x2a, 4, 2, 0x08), { out: pattern(2 * BS, 1) });
  assert.deepEqual(ch.calls, [
    { op: 'write', lba: 4, blocks: 2 },
    { op: 'flush', lba: 4, blocks: 2 },
  ]);
  ch.calls.length = 0;
  run(lun, cdb10(0x2a, 4, 2), { out: pattern(2 * BS, 1) });
  assert.deepEqual(ch.calls, [{ op: 'write', lba: 4, blocks: 2 }]);
  // Turn the write cache off with MODE SELECT(6): caching page with WCE = 0
  ch.calls.length = 0;
  const list = new Uint8Array(4 + 20);
  list.set([0x08, 0x12], 4);
  const ms = run(lun, [0x15, 0x10, 0, 0, list.length, 0], { out: list });
  assert.equal(ms.task.status, 0);
  assert.equal(lun.wce, false);
  run(lun, cdb16(0x8a, 1, 1), { out: pattern(BS, 1) });
  assert.deepEqual(ch.calls, [
    { op: 'write', lba: 1, blocks: 1 },
    { op: 'flush', lba: 1, blocks: 1 },
  ]);
});

test('RDPROTECT/WRPROTECT set -> INVALID FIELD IN CDB (byte 1 bit 7)', () => {
  const { lun, ch } = makeLun();
  const r = run(lun, cdb10(0x28, 0, 1, 0x20), { inLen: BS });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(decodeSense(r.task.sense).sks, 0xcf0001);
  assert.equal(ch.calls.length, 0);
});

test('maximum transfer length is enforced when configured', () => {
  const { lun } = makeLun({ info: { maxTransferBlocks: 4 } });
  let r = run(lun, cdb10(0x28, 0, 5), { inLen: 5 * BS });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  r = run(lun, cdb10(0x28, 0, 4), { inLen: 5 * BS });
  assert.equal(r.task.status, 0);
});

test('bdev errors map to sense: EIO on read/write, ENOSPC, ENOMEM -> BUSY', () => {
  const { lun, ch } = makeLun();
  ch.failNext = BDEV_EIO;
  let r = run(lun, cdb10(0x28, 0, 1), { inLen: BS });
  assert.deepEqual(outcome(r.task), [2, 3, 0x11, 0x00]);
  assert.equal(r.task.transferred, 0);
  ch.failNext = BDEV_EIO;
  r = run(lun, cdb10(0x2a, 0, 1), { out: new Uint8Array(BS) });
  assert.deepEqual(outcome(r.task), [2, 3, 0x0c, 0x00]);
  ch.failNext = BDEV_ENOSPC;
  r = run(lun, cdb10(0x2a, 0, 1), { out: new Uint8Array(BS) });
  assert.deepEqual(outcome(r.task), [2, 7, 0x27, 0x07]);
  ch.failNext = BDEV_ENOMEM;
  r = run(lun, cdb10(0x2a, 0, 1), { out: new Uint8Array(BS) });
  assert.deepEqual(outcome(r.task), [0x08, -1, -1, -1]);
  // a failed write with FUA does not flush
  ch.calls.length = 0;
  ch.failNext = BDEV_EIO;
  run(lun, cdb10(0x2a, 0, 1, 0x08), { out: new Uint8Array(BS) });
  assert.deepEqual(ch.calls, [{ op: 'write', lba: 0, blocks: 1 }]);
});

test('asynchronous completions: the task completes from poll(), FUA flush included', () => {
  const { lun, ch } = makeLun();
  ch.async = true;
  const w = buildTask(cdb10(0x2a, 8, 1, 0x08), { out: pattern(BS, 4) });
  lun.execute(w.task);
  assert.equal(w.rec.done.length, 0);
  assert.equal(lun.activeTasks, 1);
  assert.equal(lun.poll(), 1); // write done -> flush submitted
  assert.equal(w.rec.done.length, 0);
  assert.deepEqual(ch.calls.at(-1), { op: 'flush', lba: 8, blocks: 1 });
  assert.equal(lun.poll(), 1);
  assert.equal(w.rec.done.length, 1);
  assert.equal(w.task.status, 0);
  assert.equal(w.task.transferred, BS);
  assert.equal(lun.activeTasks, 0);
  const rd = buildTask(cdb10(0x28, 8, 1), { inLen: BS });
  lun.execute(rd.task);
  assert.equal(rd.rec.done.length, 0);
  lun.poll();
  assert.equal(rd.rec.done.length, 1);
  assert.deepEqual(rd.dataIn, pattern(BS, 4));
});

test('many in-flight tasks beyond the initial context pool', () => {
  const { lun, ch } = makeLun({ numBlocks: 256 });
  ch.async = true;
  const tasks = [];
  for (let i = 0; i < 200; i++) {
    const b = buildTask(cdb10(0x2a, i, 1), { out: pattern(BS, i) });
    lun.execute(b.task);
    tasks.push(b);
  }
  assert.equal(lun.activeTasks, 200);
  lun.poll();
  for (let i = 0; i < 200; i++) {
    assert.equal(tasks[i].rec.done.length, 1);
    assert.equal(tasks[i].task.status, 0);
  }
  assert.deepEqual(ch.store.subarray(199 * BS, 200 * BS), pattern(BS, 199));
});

test('SYNCHRONIZE CACHE(10)/(16) flush the range (0 = to the end) and check it', () => {
  const { lun, ch } = makeLun({ numBlocks: 64 });
  let r = run(lun, cdb10(0x35, 0, 0));
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.deepEqual(ch.calls.at(-1), { op: 'flush', lba: 0, blocks: 64 });
  r = run(lun, cdb16(0x91, 10, 5));
  assert.deepEqual(ch.calls.at(-1), { op: 'flush', lba: 10, blocks: 5 });
  r = run(lun, cdb16(0x91, 60, 5));
  assert.deepEqual(outcome(r.task), [2, 5, 0x21, 0]);
  ch.failNext = BDEV_EIO;
  r = run(lun, cdb10(0x35, 0, 0));
  assert.deepEqual(outcome(r.task), [2, 3, 0x0c, 0]);
});

test('a CDB shorter than its opcode needs is refused', () => {
  const { lun, ch } = makeLun();
  const r = run(lun, cdb16(0x88, 0, 1), { inLen: BS, cdbLength: 10 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(ch.calls.length, 0);
});
