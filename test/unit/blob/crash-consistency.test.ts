import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCrashWorkload, runCrashSweep } from '../../../src/blob/crash-harness.ts';
import type { CrashStep } from '../../../src/blob/crash-workload.ts';

const CS = 16 * 1024;

// create, write (full, partial, spanning), chained metadata, snapshot, clone, resize both ways,
// thick blob, delete of a clone and of a middle snapshot (merge), decouple, inflate, unload.
const WORKLOAD: CrashStep[] = [
  { op: 'create', name: 'a', numClusters: 4, thin: true },
  { op: 'write', name: 'a', offset: 0, len: CS, seed: 1 },
  { op: 'write', name: 'a', offset: CS + 4096, len: 8192, seed: 2 },
  { op: 'setXattr', name: 'a', key: 'name', value: 'x'.repeat(3000) },
  { op: 'setXattr', name: 'a', key: 'uuid', value: 'y'.repeat(3000) },
  { op: 'snapshot', name: 'a', snap: 's1' },
  { op: 'write', name: 'a', offset: 4096, len: 4096, seed: 3 },
  { op: 'clone', snap: 's1', name: 'c' },
  { op: 'write', name: 'c', offset: 12288, len: 12288, seed: 4 },
  { op: 'resize', name: 'a', numClusters: 6 },
  { op: 'write', name: 'a', offset: 5 * CS, len: 4096, seed: 5 },
  { op: 'snapshot', name: 'a', snap: 's2' },
  { op: 'create', name: 't', numClusters: 3, thin: false },
  { op: 'write', name: 't', offset: 8192, len: 2 * CS, seed: 6 },
  { op: 'resize', name: 't', numClusters: 1 },
  { op: 'delete', name: 'c' },
  { op: 'delete', name: 's1' },
  { op: 'write', name: 'a', offset: 0, len: 4096, seed: 7 },
  { op: 'decouple', name: 'a' },
  { op: 'snapshot', name: 'a', snap: 's3' },
  { op: 'inflate', name: 'a' },
  { op: 'setXattr', name: 'a', key: 'name', value: 'short' },
  { op: 'delete', name: 't' },
  { op: 'resize', name: 'a', numClusters: 2 },
  { op: 'unload' },
];

test('crash at every write of the scripted workload: loads, consistent, atomic, usable', async () => {
  const r = await runCrashWorkload({ steps: WORKLOAD });
  assert.ok(r.totalWrites >= 40, `workload issued ${r.totalWrites} writes`);
  assert.equal(r.crashPointsChecked, r.totalWrites + 1);
  assert.equal(r.cleanLoads, 1, 'only the crash point after the whole unload loads clean');
  assert.ok(r.recoveries >= 2, 'some crash points interrupt snapshot creation or deletion');
});

test('same, with the first lost write torn after its first 4 KiB block', async () => {
  const r = await runCrashWorkload({ steps: WORKLOAD, tearBlocks: 1 });
  assert.equal(r.crashPointsChecked, r.totalWrites + 1);
});

test('same on a 512-byte-block device (metadata pages are multi-block writes, not torn here)', async () => {
  const r = await runCrashWorkload({ steps: WORKLOAD, blockSize: 512 });
  assert.equal(r.crashPointsChecked, r.totalWrites + 1);
});

test('the seeded random sweep runs (a short one here; the lead runs long ones)', async () => {
  const r = await runCrashSweep({ seed: 7, steps: 25, stride: 3 });
  assert.equal(r.seed, 7);
  assert.equal(r.steps, 26);
  assert.ok(r.crashPointsChecked > r.totalWrites / 3);
});
