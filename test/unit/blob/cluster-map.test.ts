import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import {
  bytesToClusterEnd, ClusterMap, TRANSLATE_OUT_OF_RANGE, TRANSLATE_PARENT, TRANSLATE_ZEROES, translateOwn, translateRead,
} from '../../../src/blob/cluster-map.ts';

const CS = 16384;

test('own translation: device offset, parent, zeroes, out of range', () => {
  const parent = new ClusterMap(CS, 2);
  const m = new ClusterMap(CS, 3, parent);
  m.setEntry(1, 20);
  assert.equal(translateOwn(m, CS + 4096), 20 * CS + 4096);
  assert.equal(translateOwn(m, 0), TRANSLATE_PARENT);
  assert.equal(translateOwn(new ClusterMap(CS, 3), 0), TRANSLATE_ZEROES);
  assert.equal(translateOwn(m, 3 * CS), TRANSLATE_OUT_OF_RANGE);
  assert.equal(translateOwn(m, -4096), TRANSLATE_OUT_OF_RANGE);
  assert.equal(bytesToClusterEnd(m, CS + 4096), CS - 4096);
});

test('read translation walks the parent chain; beyond an ancestor it is zeroes', () => {
  const grand = new ClusterMap(CS, 4);
  grand.setEntry(0, 10);
  grand.setEntry(3, 13);
  const parent = new ClusterMap(CS, 2, grand);
  parent.setEntry(1, 11);
  const child = new ClusterMap(CS, 5, parent);
  child.setEntry(4, 30);
  assert.equal(translateRead(child, 512), 10 * CS + 512, 'from the grandparent');
  assert.equal(translateRead(child, CS), 11 * CS, 'from the parent');
  assert.equal(translateRead(child, 2 * CS), TRANSLATE_ZEROES, 'nobody has it');
  assert.equal(translateRead(child, 3 * CS), TRANSLATE_ZEROES, 'the parent is only 2 clusters: the grandparent is not consulted');
  assert.equal(translateRead(child, 4 * CS + 8), 30 * CS + 8);
  assert.equal(translateRead(child, 5 * CS), TRANSLATE_OUT_OF_RANGE);
});

test('resize: shrink clears dropped entries, growth past capacity moves to a new buffer', () => {
  const m = new ClusterMap(CS, 2);
  m.setEntry(0, 9);
  m.setEntry(1, 10);
  const before = m.words.buffer;
  m.resize(1);
  assert.equal(m.numClusters, 1);
  m.resize(2);
  assert.equal(m.entry(1), 0, 'regrown entry starts unallocated');
  assert.equal(m.words.buffer, before, 'within capacity: same buffer');
  m.resize(40);
  assert.notEqual(m.words.buffer, before);
  assert.equal(m.entry(0), 9);
  assert.equal(m.numClusters, 40);
});

test('a worker translating from the shared spec sees entries the metadata thread publishes', async () => {
  const parent = new ClusterMap(CS, 2);
  parent.setEntry(0, 50);
  const m = new ClusterMap(CS, 2, parent);
  const w = new Worker(new URL('./cluster-map.worker.ts', import.meta.url), { workerData: m.spec() });
  try {
    w.postMessage([0, CS]);
    assert.deepEqual((await once(w, 'message'))[0], [50 * CS, TRANSLATE_ZEROES]);
    m.setEntry(1, 77); // first write allocated cluster 77: one store, no message to the worker
    w.postMessage([CS + 4096]);
    assert.deepEqual((await once(w, 'message'))[0], [77 * CS + 4096]);
  } finally {
    await w.terminate();
  }
});
