// The LUN's range lock table on its own: several handles over one buffer stand for the LUN's
// instances in several reactors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RANGE_LOCK_BUSY,
  RANGE_LOCK_CONFLICT,
  RANGE_LOCK_TAKEN,
  RangeLockTable,
  rangeLockTableWords,
  type RangeLockHolder,
} from '../../../src/scsi/range-lock-table.ts';
import { ScsiConfigError } from '../../../src/scsi/scsi-errors.ts';

function table(instances: number): { words: Int32Array; join: () => RangeLockTable } {
  const words = new Int32Array(new SharedArrayBuffer(rangeLockTableWords(instances) * 4));
  return {
    words,
    join() {
      const t = new RangeLockTable(words, instances);
      assert.ok(t.join());
      return t;
    },
  };
}

/** An instance whose in-flight writes are the given [lba, blocks] ranges. */
function writes(...ranges: [number, number][]): RangeLockHolder {
  return { writeInFlight: (lba, blocks) => ranges.some(([l, b]) => l < lba + blocks && lba < l + b) };
}

const IDLE = writes();

test('a lock is granted once every other live instance acknowledged it; overlapping writes are blocked meanwhile and after', () => {
  const t = table(3);
  const [a, b, c] = [t.join(), t.join(), t.join()];
  assert.equal(a.active, false);
  assert.equal(b.blocked(0, 1000), false);
  assert.equal(a.tryLock(100, 8), RANGE_LOCK_TAKEN);
  assert.ok(a.held);
  assert.equal(b.active, true);
  assert.equal(b.blocked(107, 1), true);
  assert.equal(b.blocked(99, 2), true);
  assert.equal(b.blocked(108, 10), false, 'a write next to the range is not blocked');
  assert.equal(b.blocked(90, 10), false);
  assert.equal(a.granted(), false);
  b.acknowledge(writes([104, 1])); // b has an overlapping write in flight: no acknowledgement
  c.acknowledge(writes([0, 100], [108, 50])); // c's writes are beside the range
  assert.equal(a.granted(), false);
  b.acknowledge(IDLE);
  assert.equal(a.granted(), true);
  a.unlock();
  assert.equal(a.held, false);
  assert.equal(b.active, false);
  assert.equal(b.blocked(100, 8), false);
});

test('an instance that sleeps or left is not waited for', () => {
  const t = table(3);
  const [a, b, c] = [t.join(), t.join(), t.join()];
  b.setAsleep(true);
  assert.equal(a.tryLock(0, 1), RANGE_LOCK_TAKEN);
  assert.equal(a.granted(), false, 'c is awake and has not acknowledged');
  c.leave();
  assert.equal(a.granted(), true);
  b.setAsleep(false);
  assert.equal(b.blocked(0, 1), true, 'awake again, b sees the lock before it writes');
});

test('overlapping locks exclude each other; a released lock lets the other in and moves `releases`', () => {
  const t = table(2);
  const [a, b] = [t.join(), t.join()];
  assert.equal(a.tryLock(10, 5), RANGE_LOCK_TAKEN);
  assert.equal(b.tryLock(14, 1), RANGE_LOCK_CONFLICT);
  assert.equal(b.held, false);
  assert.equal(b.tryLock(15, 5), RANGE_LOCK_TAKEN, 'a disjoint range is not in conflict');
  b.unlock();
  const before = b.releases;
  a.unlock();
  assert.equal(b.releases, before + 1);
  assert.equal(b.tryLock(14, 1), RANGE_LOCK_TAKEN);
  b.unlock();
  a.unlock(); // holds none: nothing happens
  assert.equal(a.active, false);
});

test('the table is busy while another instance changes it: tryLock returns at once', () => {
  const t = table(2);
  const a = t.join();
  Atomics.store(t.words, 0, 1); // the mutex word, as another instance inside tryLock leaves it
  assert.equal(a.tryLock(0, 1), RANGE_LOCK_BUSY);
  assert.equal(a.active, false);
  Atomics.store(t.words, 0, 0);
  assert.equal(a.tryLock(0, 1), RANGE_LOCK_TAKEN);
});

test('an acknowledgement is for one lock: the next lock of the same instance needs a new one', () => {
  const t = table(2);
  const [a, b] = [t.join(), t.join()];
  a.tryLock(0, 4);
  b.acknowledge(IDLE);
  assert.equal(a.granted(), true);
  a.unlock();
  a.tryLock(0, 4);
  assert.equal(a.granted(), false);
  b.acknowledge(IDLE);
  assert.equal(a.granted(), true);
});

test('leaving releases the lock held; a new instance takes the free row and must acknowledge', () => {
  const t = table(2);
  const [a, b] = [t.join(), t.join()];
  assert.equal(new RangeLockTable(t.words, 2).join(), false, 'both rows taken');
  b.tryLock(7, 1);
  assert.equal(a.blocked(7, 1), true);
  b.leave();
  assert.equal(a.active, false);
  assert.equal(a.blocked(7, 1), false);
  const b2 = t.join();
  a.tryLock(7, 1);
  assert.equal(a.granted(), false);
  b2.acknowledge(IDLE);
  assert.equal(a.granted(), true);
});

test('LBAs beyond 32 bits', () => {
  const t = table(2);
  const [a, b] = [t.join(), t.join()];
  const lba = 2 ** 40 + 5;
  a.tryLock(lba, 2);
  assert.equal(b.blocked(lba + 1, 1), true);
  assert.equal(b.blocked(5, 2), false, 'the same low 32 bits elsewhere');
  b.acknowledge(writes([lba - 1, 1]));
  assert.equal(a.granted(), true);
});

test('a table of the wrong size or instance count is refused', () => {
  assert.throws(() => new RangeLockTable(new Int32Array(10), 2), ScsiConfigError);
  assert.throws(() => rangeLockTableWords(0), ScsiConfigError);
  assert.throws(() => rangeLockTableWords(1025), ScsiConfigError);
});
