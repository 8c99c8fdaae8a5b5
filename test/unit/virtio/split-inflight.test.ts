// Inflight tracking of a split virtqueue: what a back-end restarted after a crash serves again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SplitVirtqueue } from '../../../src/virtio/split-virtqueue.ts';
import { SplitInflightLog, inflightQueueBytes } from '../../../src/virtio/split-inflight.ts';
import { DescriptorChain } from '../../../src/virtio/descriptor-chain.ts';
import { VirtqueueError } from '../../../src/virtio/virtqueue-error.ts';
import { VIRTQ_DESC_F_WRITE as WRITE } from '../../../src/virtio/virtio-constants.ts';
import { GuestAccess, makeMemory, makeRegions, RING8, TestDriver } from './virtq-driver.ts';

function guest() {
  const regions = makeRegions();
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  const drv = new TestDriver(g, RING8);
  // One writable descriptor per head, so any head walks.
  for (let h = 0; h < RING8.size; h++) drv.desc(h, 0x40000 + h * 0x100, 0x100, WRITE);
  return { memory, drv };
}

/** A back-end instance over the guest's ring and a record that outlives it (the front-end's fd). */
function backend(memory: ReturnType<typeof makeMemory>, record: Uint8Array, lastAvailIdx: number) {
  return new SplitVirtqueue(memory, { ...RING8, lastAvailIdx, eventIdx: false, indirect: false, inflight: new SplitInflightLog(record, RING8.size) });
}

function popAll(vq: SplitVirtqueue): number[] {
  const chain = new DescriptorChain(4);
  const heads: number[] = [];
  while (vq.pop(chain)) heads.push(chain.head);
  return heads;
}

test('after a crash the restarted queue serves the heads in flight, oldest first, then new ones', () => {
  const { memory, drv } = guest();
  const record = new Uint8Array(inflightQueueBytes(RING8.size));
  const a = backend(memory, record, 0);
  for (const h of [5, 2, 7, 1]) drv.offer(h);
  assert.deepEqual(popAll(a), [5, 2, 7, 1]);
  // 2 and 1 complete (out of order), published; 5 and 7 are in flight when the process dies.
  a.pushUsed(2, 0);
  a.pushUsed(1, 0);
  a.flushUsed();
  assert.equal(drv.usedIdx(), 2);

  // The front-end resumes the ring at used.idx (what QEMU does when GET_VRING_BASE fails).
  drv.offer(3);
  const b = backend(memory, record, drv.usedIdx());
  assert.equal(b.lastAvailIdx, 4, 'the avail ring resumes after what the crashed instance took');
  assert.equal(b.available(), 3);
  assert.deepEqual(popAll(b), [5, 7, 3]);
  for (const h of [7, 3, 5]) b.pushUsed(h, 0);
  b.flushUsed();
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => drv.usedElem(i)[0]), [2, 1, 7, 3, 5]);
  assert.deepEqual(new SplitInflightLog(record, RING8.size).inflightHeads(), []);
});

test('a crash between publishing used.idx and clearing the record: the published heads are not served again', () => {
  const { memory, drv } = guest();
  const record = new Uint8Array(inflightQueueBytes(RING8.size));
  const a = backend(memory, record, 0);
  for (const h of [0, 1, 2]) drv.offer(h);
  assert.deepEqual(popAll(a), [0, 1, 2]);
  // The crashed instance wrote used elements for 1 and 0 and published used.idx, then died before
  // it cleared them in the record: a queue over the same ring without the record does that part.
  const raw = new SplitVirtqueue(memory, { ...RING8, lastAvailIdx: 3, eventIdx: false, indirect: false });
  raw.pushUsed(1, 0);
  raw.pushUsed(0, 0);
  raw.flushUsed();
  assert.deepEqual(new SplitInflightLog(record, RING8.size).inflightHeads(), [0, 1, 2], 'the record still has all three');

  const b = backend(memory, record, drv.usedIdx());
  assert.equal(b.lastAvailIdx, 3);
  assert.deepEqual(popAll(b), [2]);
});

test('a fresh (zeroed) record starts at SET_VRING_BASE and resubmits nothing', () => {
  const { memory, drv } = guest();
  const record = new Uint8Array(inflightQueueBytes(RING8.size));
  drv.setAvailIdx(6);
  drv.setUsedIdx(6);
  drv.offer(4);
  const vq = backend(memory, record, 6);
  assert.equal(vq.lastAvailIdx, 6);
  assert.deepEqual(popAll(vq), [4]);
  assert.deepEqual(new SplitInflightLog(record, RING8.size).inflightHeads(), [4]);
});

test('a record for another queue size, or more than a queue behind the used ring, is started over', () => {
  const { memory, drv } = guest();
  const record = new Uint8Array(inflightQueueBytes(16));
  const other = new SplitInflightLog(record, 16);
  other.recover(0, new Uint32Array(40), 15, 0);
  other.popped(3);
  drv.offer(6);
  const log = new SplitInflightLog(record, RING8.size);
  const vq = new SplitVirtqueue(memory, { ...RING8, lastAvailIdx: 0, eventIdx: false, indirect: false, inflight: log });
  assert.equal(log.discarded, true);
  assert.deepEqual(popAll(vq), [6]);

  // A used ring that moved on without the record (a guest writing used.idx itself).
  drv.setUsedIdx(100);
  drv.setAvailIdx(100);
  drv.offer(2);
  const again = new SplitInflightLog(record, RING8.size);
  const vq2 = new SplitVirtqueue(memory, { ...RING8, lastAvailIdx: 100, eventIdx: false, indirect: false, inflight: again });
  assert.equal(again.discarded, true);
  assert.deepEqual(popAll(vq2), [2]);
  assert.throws(() => new SplitInflightLog(new Uint8Array(64), RING8.size), (e: unknown) => e instanceof VirtqueueError && e.code === 'BAD_INFLIGHT_REGION');
});
