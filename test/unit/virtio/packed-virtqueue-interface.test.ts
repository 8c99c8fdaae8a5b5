// The Virtqueue interface over both ring layouts: the split ring's new chain form of pushUsed and
// the id / descCount fields, and one device loop driving a split and a packed ring alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PackedVirtqueue } from '../../../src/virtio/packed-virtqueue.ts';
import { SplitVirtqueue } from '../../../src/virtio/split-virtqueue.ts';
import { DescriptorChain } from '../../../src/virtio/descriptor-chain.ts';
import type { Virtqueue } from '../../../src/virtio/virtqueue.ts';
import { VIRTQ_DESC_F_NEXT as NEXT } from '../../../src/virtio/virtio-constants.ts';
import { GuestAccess, makeMemory, makeRegions, RING8, TestDriver } from './virtq-driver.ts';
import { PackedTestDriver, PRING8 } from './packed-driver.ts';

test('split ring: pop fills id and descCount; pushUsed(chain, len) completes by chain.id', () => {
  const regions = makeRegions();
  const g = new GuestAccess(regions);
  const drv = new TestDriver(g, RING8);
  const vq = new SplitVirtqueue(makeMemory(regions), { ...RING8, lastAvailIdx: 0, eventIdx: false, indirect: true });
  drv.desc(5, 0x4000, 4, NEXT, 2);
  drv.desc(2, 0x40000, 32, 4); // indirect, two entries
  drv.descAt(0x40000, 0, 0x4100, 4, NEXT, 1);
  drv.descAt(0x40000, 1, 0x4200, 8, 2);
  drv.offer(5);
  drv.desc(3, 0x4300, 6, 2);
  drv.offer(3);
  const a = new DescriptorChain(4);
  const b = new DescriptorChain(4);
  assert.equal(vq.pop(a), true, vq.error?.message);
  assert.equal(vq.pop(b), true);
  assert.deepEqual([a.head, a.id, a.descCount, a.out.length, a.in.length], [5, 5, 2, 8, 8]);
  assert.deepEqual([b.head, b.id, b.descCount], [3, 3, 1]);
  assert.equal(vq.vringBase, 2);
  vq.pushUsed(b, 6);
  vq.pushUsed(a, 8);
  vq.pushUsed(4, 1); // the head form still works
  assert.equal(vq.flushUsed(), true);
  assert.equal(drv.usedIdx(), 3);
  assert.deepEqual([drv.usedElem(0), drv.usedElem(1), drv.usedElem(2)], [[3, 6], [5, 8], [4, 1]]);
  a.reset();
  assert.deepEqual([a.head, a.id, a.descCount], [-1, -1, 0]);
  assert.throws(() => vq.pushUsed(a, 0), RangeError);
});

/** A device loop that knows only the interface: echo the readable bytes' sum into the first writable byte. */
function serve(vq: Virtqueue, chain: DescriptorChain): number {
  let n = 0;
  while (vq.pop(chain)) {
    const buf = new Uint8Array(chain.out.length);
    chain.out.copyOut(0, buf, 0, buf.length);
    const sum = buf.reduce((a, b) => (a + b) & 0xff, 0);
    chain.in.copyIn(0, new Uint8Array([sum]), 0, 1);
    vq.pushUsed(chain, 1);
    n++;
  }
  return n;
}

test('one device loop serves a split and a packed ring through the Virtqueue interface', () => {
  const regions = makeRegions();
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  g.write(0x5000, [1, 2, 3, 4]);
  g.write(0x5100, [10, 20]);
  const split = new SplitVirtqueue(memory, { ...RING8, lastAvailIdx: 0, eventIdx: false, indirect: false });
  const sd = new TestDriver(g, RING8);
  sd.desc(0, 0x5000, 4, NEXT, 1);
  sd.desc(1, 0x6000, 1, 2);
  sd.offer(0);
  const pring = { ...PRING8, descGpa: 0x40000, driverEventGpa: 0x41000, deviceEventGpa: 0x41004 };
  const packed = new PackedVirtqueue(memory, { ...pring, lastAvailIdx: 0x8000, eventIdx: false, indirect: false });
  const pd = new PackedTestDriver(g, pring);
  pd.add([{ addr: 0x5100, len: 2 }, { addr: 0x6100, len: 1, write: true }], 42);
  const chain = new DescriptorChain(4);
  const queues: Virtqueue[] = [split, packed];
  assert.deepEqual(queues.map((q) => serve(q, chain)), [1, 1]);
  assert.deepEqual(queues.map((q) => q.flushUsed()), [true, true]);
  assert.deepEqual(g.read(0x6000, 1), [10]);
  assert.deepEqual(g.read(0x6100, 1), [30]);
  assert.equal(sd.usedIdx(), 1);
  assert.deepEqual(sd.usedElem(0), [0, 1]);
  const u = pd.getUsed();
  assert.deepEqual([u?.id, u?.len], [42, 1]);
  assert.deepEqual(queues.map((q) => q.vringBase), [1, 0x80028002]);
});
