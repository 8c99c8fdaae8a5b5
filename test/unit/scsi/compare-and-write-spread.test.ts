// COMPARE AND WRITE across two instances of one LUN (as in two reactors of a spread device) over
// one shared state and one medium: atomic against writes of the other instance, which never
// blocks; each instance's bdev completes only when that instance polls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScsiLun } from '../../../src/scsi/scsi-lun.ts';
import { createLunSharedState } from '../../../src/scsi/lun-shared-state.ts';
import { ScsiConfigError } from '../../../src/scsi/scsi-errors.ts';
import { RamChannel, lunInfo, buildTask, cdb10, pattern, put, type BuiltTask } from './scsi-test-kit.ts';

const BS = 512;

interface Side {
  lun: ScsiLun;
  ch: RamChannel;
}

function pair(): [Side, Side] {
  const shared = createLunSharedState(2);
  const ca = new RamChannel(BS, 64);
  const cb = new RamChannel(BS, 64);
  cb.store = ca.store; // one bdev
  ca.async = cb.async = true;
  const a = { lun: new ScsiLun(0, lunInfo(), ca, shared), ch: ca };
  const b = { lun: new ScsiLun(0, lunInfo(), cb, shared), ch: cb };
  a.lun.unitAttention.clear();
  return [a, b];
}

function caw(side: Side, lba: number, expect: Uint8Array, data: Uint8Array): BuiltTask {
  const c = put(new Array<number>(16).fill(0), 2, 8, lba);
  c[0] = 0x89;
  c[13] = expect.length / BS;
  const out = new Uint8Array(expect.length * 2);
  out.set(expect);
  out.set(data, expect.length);
  const t = buildTask(c, { out });
  side.lun.execute(t.task);
  return t;
}

function write(side: Side, lba: number, data: Uint8Array): BuiltTask {
  const t = buildTask(cdb10(0x2a, lba, data.length / BS), { out: data });
  side.lun.execute(t.task);
  return t;
}

function ops(side: Side): string[] {
  return side.ch.calls.map((c) => `${c.op}:${c.lba}`);
}

function block(side: Side, lba: number): Uint8Array {
  return side.ch.store.subarray(lba * BS, (lba + 1) * BS);
}

test('a write on the other instance overlapping a running COMPARE AND WRITE waits for it; one elsewhere does not', () => {
  const [a, b] = pair();
  a.ch.store.set(pattern(BS, 1), 10 * BS);
  const c = caw(a, 10, pattern(BS, 1), pattern(BS, 2));
  assert.deepEqual(ops(a), [], 'the lock waits for b to acknowledge');
  b.lun.poll(); // b has no write in flight: acknowledges
  a.lun.poll();
  assert.deepEqual(ops(a), ['read:10']);
  const w = write(b, 10, pattern(BS, 3));
  const other = write(b, 20, pattern(BS, 4));
  assert.deepEqual(ops(b), ['write:20'], 'the overlapping write is parked, the other one goes');
  b.lun.poll();
  assert.equal(other.rec.done.length, 1);
  assert.deepEqual(ops(b), ['write:20']);
  a.lun.poll(); // read done, compare matches -> write
  b.lun.poll();
  assert.deepEqual(ops(b), ['write:20'], 'still parked while the CAW writes');
  a.lun.poll(); // CAW done, lock released
  assert.deepEqual([c.rec.done.length, c.task.status], [1, 0]);
  assert.deepEqual(block(a, 10), pattern(BS, 2));
  b.lun.poll(); // retried -> submitted
  assert.deepEqual(ops(b), ['write:20', 'write:10']);
  b.lun.poll();
  assert.deepEqual([w.rec.done.length, w.task.status], [1, 0]);
  assert.deepEqual(block(a, 10), pattern(BS, 3), 'the write landed after the CAW');
  assert.equal(a.lun.activeTasks + b.lun.activeTasks, 0);
});

test('a COMPARE AND WRITE reads only once an overlapping write in flight on the other instance completed', () => {
  const [a, b] = pair();
  const data = pattern(2 * BS, 7);
  const w = write(b, 5, data); // at the bdev, completes at b's next poll
  const c = caw(a, 6, data.subarray(BS), pattern(BS, 8));
  a.lun.poll();
  a.lun.poll();
  assert.deepEqual(ops(a), [], 'b has an overlapping write in flight: no read yet');
  b.lun.poll(); // the write completes; b acknowledges
  assert.equal(w.rec.done.length, 1);
  a.lun.poll();
  assert.deepEqual(ops(a), ['read:6']);
  a.lun.poll();
  a.lun.poll();
  assert.deepEqual([c.rec.done.length, c.task.status], [1, 0], 'it compared against the write\'s data');
  assert.deepEqual(block(a, 6), pattern(BS, 8));
});

test('a sleeping instance is not waited for; when it wakes its overlapping write waits', () => {
  const [a, b] = pair();
  b.lun.setAsleep(true);
  const c = caw(a, 0, new Uint8Array(BS), pattern(BS, 5));
  assert.deepEqual(ops(a), ['read:0'], 'granted at once');
  b.lun.setAsleep(false);
  const w = write(b, 0, pattern(BS, 6));
  assert.deepEqual(ops(b), []);
  a.lun.poll();
  a.lun.poll();
  assert.equal(c.task.status, 0);
  b.lun.poll();
  b.lun.poll();
  assert.equal(w.rec.done.length, 1);
  assert.deepEqual(block(a, 0), pattern(BS, 6));
});

test('overlapping COMPARE AND WRITEs on the two instances run one after the other', () => {
  const [a, b] = pair();
  const c1 = caw(a, 3, new Uint8Array(BS), pattern(BS, 1));
  b.lun.poll();
  a.lun.poll();
  const c2 = caw(b, 3, pattern(BS, 1), pattern(BS, 2));
  assert.deepEqual(ops(b), [], 'the second waits for the first lock');
  a.lun.poll();
  a.lun.poll();
  assert.equal(c1.task.status, 0);
  b.lun.poll(); // lock released -> takes its own, waits for a
  assert.deepEqual(ops(b), []);
  a.lun.poll(); // a acknowledges
  b.lun.poll();
  assert.deepEqual(ops(b), ['read:3']);
  b.lun.poll();
  b.lun.poll();
  assert.deepEqual([c2.task.status, c2.rec.done.length], [0, 1], 'compared against the first one\'s data');
  assert.deepEqual(block(a, 3), pattern(BS, 2));
});

test('a COMPARE AND WRITE waiting for its lock is aborted at once and lets the other instance go', () => {
  const [a, b] = pair();
  const w = write(b, 0, pattern(BS, 1));
  const c = caw(a, 0, new Uint8Array(BS), pattern(BS, 2));
  let tmf = -1;
  a.lun.abortTaskSet({ scsiTmfDone: (r) => (tmf = r) });
  assert.equal(tmf, 0);
  assert.deepEqual([c.rec.done.length, c.task.aborted], [1, true]);
  assert.deepEqual(ops(a), []);
  const w2 = write(b, 0, pattern(BS, 3));
  assert.deepEqual(ops(b), ['write:0', 'write:0'], 'no lock left');
  b.lun.poll();
  assert.equal(w.rec.done.length + w2.rec.done.length, 2);
});

test('an instance closed while holding a lock releases it: the other one does not wait forever', () => {
  const [a, b] = pair();
  b.lun.poll();
  caw(a, 8, new Uint8Array(BS), pattern(BS, 2));
  b.lun.poll();
  a.lun.poll();
  assert.deepEqual(ops(a), ['read:8']);
  const w = write(b, 8, pattern(BS, 4));
  assert.deepEqual(ops(b), []);
  a.lun.close(); // the LUN leaves a's reactor with the CAW in flight
  b.lun.poll();
  assert.deepEqual(ops(b), ['write:8']);
  b.lun.poll();
  assert.equal(w.rec.done.length, 1);
  // and a CAW on b no longer waits for a's acknowledgement
  const c = caw(b, 8, pattern(BS, 4), pattern(BS, 5));
  assert.deepEqual(ops(b), ['write:8', 'read:8']);
  b.lun.poll();
  b.lun.poll();
  assert.equal(c.task.status, 0);
});

test('more instances than the shared state has rows for are refused', () => {
  const shared = createLunSharedState(1);
  new ScsiLun(0, lunInfo(), new RamChannel(BS, 8), shared);
  assert.throws(() => new ScsiLun(0, lunInfo(), new RamChannel(BS, 8), shared), (e: unknown) => e instanceof ScsiConfigError && e.code === 'SCSI_LUN_INSTANCES');
});
