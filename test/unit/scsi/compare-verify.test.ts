import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLun, run, buildTask, outcome, decodeSense, cdb10, cdb16, pattern, put } from './scsi-test-kit.ts';

const BS = 512;

function cawCdb(lba: number, blocks: number, byte1 = 0): number[] {
  const c = put(new Array<number>(16).fill(0), 2, 8, lba);
  c[0] = 0x89;
  c[1] = byte1;
  c[13] = blocks;
  return c;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length);
  r.set(a);
  r.set(b, a.length);
  return r;
}

test('COMPARE AND WRITE: match -> the second half is written', () => {
  const { lun, ch } = makeLun();
  const old = pattern(2 * BS, 3);
  ch.store.set(old, 4 * BS);
  const neu = pattern(2 * BS, 90);
  const r = run(lun, cawCdb(4, 2), { out: concat(old, neu) });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, 4 * BS);
  assert.deepEqual(ch.store.subarray(4 * BS, 6 * BS), neu);
  assert.deepEqual(ch.calls, [
    { op: 'read', lba: 4, blocks: 2 },
    { op: 'write', lba: 4, blocks: 2 },
  ]);
});

test('COMPARE AND WRITE: miscompare reports the offset in INFORMATION and writes nothing', () => {
  const { lun, ch } = makeLun();
  const old = pattern(2 * BS, 3);
  ch.store.set(old, 4 * BS);
  const verify = old.slice();
  verify[700] ^= 1;
  const r = run(lun, cawCdb(4, 2), { out: concat(verify, pattern(2 * BS, 90)) });
  assert.deepEqual(outcome(r.task), [2, 0x0e, 0x1d, 0x00]);
  const s = decodeSense(r.task.sense);
  assert.equal(s.info, 700);
  assert.equal(r.task.sense[0], 0xf0, 'VALID bit with fixed format');
  assert.deepEqual(ch.store.subarray(4 * BS, 6 * BS), old);
  assert.deepEqual(ch.calls, [{ op: 'read', lba: 4, blocks: 2 }]);
});

test('COMPARE AND WRITE: FUA flushes; field and length checks', () => {
  const { lun, ch } = makeLun();
  let r = run(lun, cawCdb(0, 1, 0x08), { out: new Uint8Array(2 * BS) });
  assert.equal(r.task.status, 0);
  assert.deepEqual(ch.calls.at(-1), { op: 'flush', lba: 0, blocks: 1 });
  r = run(lun, cawCdb(0, 1), { out: new Uint8Array(2 * BS - 1) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0], 'data-out shorter than 2 blocks');
  r = run(lun, cawCdb(0, 129), { out: new Uint8Array(258 * BS) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0], 'beyond MAXIMUM COMPARE AND WRITE LENGTH');
  assert.equal(decodeSense(r.task.sense).sks, 0xc0000d);
  r = run(lun, cawCdb(63, 2), { out: new Uint8Array(4 * BS) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x21, 0]);
  r = run(lun, cawCdb(0, 0));
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1], 'zero blocks: nothing to do');
});

test('COMPARE AND WRITE is atomic against overlapping writes (async bdev)', () => {
  const { lun, ch } = makeLun();
  ch.async = true;
  // An overlapping write is in flight: the CAW must wait for it.
  const w1 = buildTask(cdb10(0x2a, 10, 1), { out: pattern(BS, 1) });
  lun.execute(w1.task);
  const caw = buildTask(cawCdb(10, 1), { out: concat(pattern(BS, 1), pattern(BS, 2)) });
  lun.execute(caw.task);
  assert.deepEqual(ch.calls.map((c) => c.op), ['write'], 'CAW deferred behind the in-flight write');
  lun.poll(); // w1 completes -> CAW starts reading
  assert.equal(w1.rec.done.length, 1);
  assert.deepEqual(ch.calls.map((c) => c.op), ['write', 'read']);
  // A write to the same block while the CAW runs is held back; one elsewhere is not.
  const w2 = buildTask(cdb10(0x2a, 10, 1), { out: pattern(BS, 3) });
  const w3 = buildTask(cdb10(0x2a, 20, 1), { out: pattern(BS, 4) });
  lun.execute(w2.task);
  lun.execute(w3.task);
  assert.deepEqual(ch.calls.map((c) => `${c.op}:${c.lba}`), ['write:10', 'read:10', 'write:20']);
  lun.poll(); // read done -> compare matches -> CAW write; w3 done
  assert.deepEqual(ch.calls.map((c) => `${c.op}:${c.lba}`), ['write:10', 'read:10', 'write:20', 'write:10']);
  assert.equal(w2.rec.done.length, 0);
  lun.poll(); // CAW done -> w2 starts
  assert.equal(caw.rec.done.length, 1);
  assert.equal(caw.task.status, 0);
  assert.deepEqual(ch.store.subarray(10 * BS, 11 * BS), pattern(BS, 2));
  lun.poll();
  assert.equal(w2.rec.done.length, 1);
  assert.deepEqual(ch.store.subarray(10 * BS, 11 * BS), pattern(BS, 3));
  assert.equal(lun.activeTasks, 0);
});

test('VERIFY BYTCHK=0 checks the range only', () => {
  const { lun, ch } = makeLun({ numBlocks: 64 });
  let r = run(lun, cdb10(0x2f, 0, 64));
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  r = run(lun, cdb16(0x8f, 60, 5));
  assert.deepEqual(outcome(r.task), [2, 5, 0x21, 0]);
  r = run(lun, put(put([0xaf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2, 4, 64), 6, 4, 1));
  assert.deepEqual(outcome(r.task), [2, 5, 0x21, 0]);
  assert.equal(ch.calls.length, 0);
});

test('VERIFY BYTCHK=1 compares the medium with data-out in chunks', () => {
  const { lun, ch } = makeLun({ numBlocks: 300 });
  const data = pattern(200 * BS, 5);
  ch.store.set(data, 50 * BS);
  let r = run(lun, cdb16(0x8f, 50, 200, 0x02), { out: data });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, 200 * BS);
  assert.deepEqual(ch.calls, [
    { op: 'read', lba: 50, blocks: 128 },
    { op: 'read', lba: 178, blocks: 72 },
  ]);
  const bad = data.slice();
  bad[150 * BS + 3] ^= 0x80;
  r = run(lun, cdb16(0x8f, 50, 200, 0x02), { out: bad });
  assert.deepEqual(outcome(r.task), [2, 0x0e, 0x1d, 0]);
  assert.equal(decodeSense(r.task.sense).info, 150 * BS + 3);
  r = run(lun, cdb16(0x8f, 50, 200, 0x02), { out: data.subarray(0, 199 * BS) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0], 'short data-out');
});

test('VERIFY BYTCHK=3 compares each block with the single data-out block; BYTCHK=2 is reserved', () => {
  const { lun, ch } = makeLun({ numBlocks: 16 });
  const blk = pattern(BS, 8);
  for (let b = 2; b < 6; b++) ch.store.set(blk, b * BS);
  let r = run(lun, cdb10(0x2f, 2, 4, 0x06), { out: blk });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, BS);
  ch.store[4 * BS + 10] ^= 1;
  r = run(lun, cdb10(0x2f, 2, 4, 0x06), { out: blk });
  assert.deepEqual(outcome(r.task), [2, 0x0e, 0x1d, 0]);
  assert.equal(decodeSense(r.task.sense).info, 2 * BS + 10);
  r = run(lun, cdb10(0x2f, 2, 4, 0x04), { out: blk });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(decodeSense(r.task.sense).sks, 0xca0001);
});
