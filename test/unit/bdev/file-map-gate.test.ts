// The gate between a file's mappings in the reactors and the lease guarding the file: slots are
// claimed and given back, enter() fails once closed, and close() returns only when no user is
// inside (a worker stays inside ~20 us per entry and checks it never enters after close returned).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAP_GATE_SLOTS, MapGateOwner, MapGateUser } from '../../../src/bdev/modules/file-map-gate.ts';

test('slots are claimed up to the limit and given back; a closed gate lets nobody in', () => {
  const owner = new MapGateOwner();
  assert.equal(owner.isOpen, false);
  const users: MapGateUser[] = [];
  for (let i = 0; i < MAP_GATE_SLOTS; i++) users.push(new MapGateUser(owner.buffer));
  assert.ok(users.every((u) => u.claimed));
  const extra = new MapGateUser(owner.buffer);
  assert.equal(extra.claimed, false, 'no slot left');
  owner.open();
  assert.equal(extra.enter(), false, 'a user without a slot never enters');
  assert.equal(users[0].enter(), true);
  users[0].leave();
  owner.close();
  assert.equal(users[0].enter(), false, 'closed');
  users[5].release();
  assert.equal(users[5].enter(), false, 'released');
  assert.equal(owner.usersClaimed(), MAP_GATE_SLOTS - 1);
  const again = new MapGateUser(owner.buffer);
  assert.equal(again.claimed, true, 'a released slot is reused');
  assert.throws(() => new MapGateUser(new SharedArrayBuffer(64)), /not a gate buffer/);
});

test('close() waits for a user inside; after it returns the user never gets in until the gate opens again', async () => {
  const owner = new MapGateOwner();
  owner.open();
  const counters = new SharedArrayBuffer(16);
  const c = new Int32Array(counters);
  const worker = new Worker(new URL('./map-gate-user.worker.ts', import.meta.url), { workerData: { gate: owner.buffer, counters } });
  try {
    for (let round = 0; round < 20; round++) {
      const start = Atomics.load(c, 0);
      const deadline = Date.now() + 5000;
      while (Atomics.load(c, 0) < start + 20 && Date.now() < deadline) await sleep(1);
      assert.ok(Atomics.load(c, 0) >= start + 20, 'the worker enters while open');
      owner.close();
      Atomics.store(c, 2, 1);
      const closedAt = Atomics.load(c, 0);
      await sleep(5);
      assert.equal(Atomics.load(c, 1), 0, `round ${round}: nobody inside after close() returned`);
      assert.equal(Atomics.load(c, 0), closedAt, 'no entry while closed');
      Atomics.store(c, 2, 0);
      owner.open();
    }
  } finally {
    Atomics.store(c, 3, 1);
    await worker.terminate();
  }
});
