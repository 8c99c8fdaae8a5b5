import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SplitVirtqueue, type SplitVirtqueueOptions } from '../../../src/virtio/split-virtqueue.ts';
import { DescriptorChain } from '../../../src/virtio/descriptor-chain.ts';
import { VirtqueueError } from '../../../src/virtio/virtqueue-error.ts';
import { VIRTQ_DESC_F_INDIRECT as INDIRECT, VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE } from '../../../src/virtio/virtio-constants.ts';
import { GuestAccess, makeMemory, makeRegions, RING8, TestDriver, type RingAddrs } from './virtq-driver.ts';

function setup(opts: Partial<SplitVirtqueueOptions> = {}, ring: RingAddrs = RING8) {
  const regions = makeRegions();
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  const drv = new TestDriver(g, ring);
  drv.availIdx = opts.lastAvailIdx ?? 0;
  const vq = new SplitVirtqueue(memory, {
    size: ring.size,
    descGpa: ring.descGpa,
    availGpa: ring.availGpa,
    usedGpa: ring.usedGpa,
    lastAvailIdx: 0,
    eventIdx: false,
    indirect: true,
    ...opts,
  });
  return { regions, memory, g, drv, vq };
}

function segs(list: DescriptorChain['out']): [number, number, number][] {
  const r: [number, number, number][] = [];
  for (let i = 0; i < list.count; i++) r.push([list.offsets[i], list.lengths[i], list.addrs[i]]);
  return r;
}

test('a readable-then-writable chain becomes out and in segments with host addresses', () => {
  const { regions, g, drv, vq } = setup();
  g.write(0x5000, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  g.write(0x6000, [0xde, 0xad]);
  drv.desc(3, 0x5000, 16, NEXT, 5);
  drv.desc(5, 0x6000, 512, NEXT, 0);
  drv.desc(0, 0x40100, 1, WRITE);
  drv.offer(3);
  assert.equal(vq.available(), 1);
  const chain = new DescriptorChain(8);
  assert.equal(vq.pop(chain), true);
  assert.equal(chain.head, 3);
  assert.deepEqual(segs(chain.out), [
    [0x5000, 16, 0x555500000000 + 0x5000],
    [0x6000, 512, 0x555500000000 + 0x6000],
  ]);
  assert.equal(chain.out.bufs[0], regions[0].bytes);
  assert.equal(chain.out.length, 528);
  assert.deepEqual(segs(chain.in), [[0x100, 1, 0x555700000000 + 0x100]]);
  assert.equal(chain.in.bufs[0], regions[2].bytes);
  // The segments really are the guest's bytes.
  const hdr = new Uint8Array(18);
  assert.equal(chain.out.copyOut(0, hdr, 0, 18), 18);
  assert.deepEqual([...hdr], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0xde, 0xad]);
  chain.in.copyIn(0, new Uint8Array([0x77]), 0, 1);
  assert.deepEqual(g.read(0x40100, 1), [0x77]);
  assert.equal(vq.lastAvailIdx, 1);
  assert.equal(vq.available(), 0);
  assert.equal(vq.pop(chain), false);
  assert.equal(chain.head, -1);
  assert.equal(chain.out.count, 0);
  assert.equal(vq.error, null);
});

test('a header split over several descriptors reads back contiguously', () => {
  const { g, drv, vq } = setup();
  // A 19-byte request header in pieces of 7, 0 (skipped), 12, then a 3-byte response split 1 + 2.
  g.write(0x8000, [0, 1, 2, 3, 4, 5, 6]);
  g.write(0x9000, [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
  drv.desc(0, 0x8000, 7, NEXT, 1);
  drv.desc(1, 0xdead0000, 0, NEXT, 2); // zero length: address never looked at, no segment
  drv.desc(2, 0x9000, 12, NEXT, 3);
  drv.desc(3, 0xa000, 1, WRITE | NEXT, 4);
  drv.desc(4, 0xb000, 2, WRITE);
  drv.offer(0);
  const chain = new DescriptorChain(4);
  assert.equal(vq.pop(chain), true);
  assert.equal(chain.out.count, 2);
  const hdr = new Uint8Array(19);
  chain.out.copyOut(0, hdr, 0, 19);
  assert.deepEqual([...hdr], Array.from({ length: 19 }, (_, i) => i));
  assert.equal(chain.in.count, 2);
  chain.in.copyIn(0, new Uint8Array([0xa1, 0xb1, 0xb2]), 0, 3);
  assert.deepEqual(g.read(0xa000, 1), [0xa1]);
  assert.deepEqual(g.read(0xb000, 2), [0xb1, 0xb2]);
});

test('a descriptor spanning two adjacent regions becomes two segments', () => {
  const { regions, drv, vq } = setup();
  drv.desc(0, 0xff00, 0x200, WRITE);
  drv.offer(0);
  const chain = new DescriptorChain(4);
  assert.equal(vq.pop(chain), true);
  assert.deepEqual(segs(chain.in), [
    [0xff00, 0x100, 0x555500000000 + 0xff00],
    [0x0, 0x100, 0x555600000000],
  ]);
  assert.equal(chain.in.bufs[0], regions[0].bytes);
  assert.equal(chain.in.bufs[1], regions[1].bytes);
  assert.equal(chain.in.length, 0x200);
  chain.in.fill(0, 0x5a, 0x200);
  assert.equal(regions[0].bytes[0xffff], 0x5a);
  assert.equal(regions[1].bytes[0xff], 0x5a);
  assert.equal(regions[1].bytes[0x100], 0);
});

test('indirect tables (also unaligned ones) are followed', () => {
  const { g, drv, vq } = setup();
  const table = 0x40803; // no alignment is promised for indirect tables
  drv.descAt(table, 0, 0x4000, 8, NEXT, 2);
  drv.descAt(table, 2, 0x10010, 0x20, NEXT, 1);
  drv.descAt(table, 1, 0x4100, 1, WRITE);
  drv.desc(6, table, 48, INDIRECT);
  drv.offer(6);
  g.write(0x4000, [9, 8, 7, 6, 5, 4, 3, 2]);
  const chain = new DescriptorChain(4);
  assert.equal(vq.pop(chain), true);
  assert.equal(chain.head, 6);
  assert.deepEqual(segs(chain.out), [
    [0x4000, 8, 0x555500000000 + 0x4000],
    [0x10, 0x20, 0x555600000000 + 0x10],
  ]);
  assert.deepEqual(segs(chain.in), [[0x4100, 1, 0x555500000000 + 0x4100]]);
  const b = new Uint8Array(8);
  chain.out.copyOut(0, b, 0, 8);
  assert.deepEqual([...b], [9, 8, 7, 6, 5, 4, 3, 2]);
});

test('direct descriptors may precede the indirect one that ends the chain', () => {
  const { drv, vq } = setup();
  drv.desc(0, 0x4000, 16, NEXT, 1);
  drv.desc(1, 0x40000, 32, INDIRECT);
  drv.descAt(0x40000, 0, 0x4100, 4, WRITE);
  drv.offer(0);
  const chain = new DescriptorChain(4);
  assert.equal(vq.pop(chain), true);
  assert.deepEqual(segs(chain.out), [[0x4000, 16, 0x555500000000 + 0x4000]]);
  assert.deepEqual(segs(chain.in), [[0x4100, 4, 0x555500000000 + 0x4100]]);
});

test('used elements land in the used ring and used.idx is published by flushUsed', () => {
  const { drv, vq } = setup();
  for (let h = 0; h < 3; h++) drv.desc(h, 0x4000 + h * 0x100, 4, WRITE);
  drv.offer(2);
  drv.offer(0);
  drv.offer(1);
  const chain = new DescriptorChain(2);
  const heads: number[] = [];
  while (vq.pop(chain)) heads.push(chain.head);
  assert.deepEqual(heads, [2, 0, 1]);
  vq.pushUsed(0, 4);
  vq.pushUsed(2, 1);
  assert.equal(vq.usedIdx, 2);
  assert.equal(drv.usedIdx(), 0, 'not published before flushUsed');
  assert.equal(vq.flushUsed(), true);
  assert.equal(drv.usedIdx(), 2);
  assert.deepEqual(drv.usedElem(0), [0, 4]);
  assert.deepEqual(drv.usedElem(1), [2, 1]);
  assert.equal(vq.flushUsed(), false, 'nothing new to publish');
  assert.throws(() => vq.pushUsed(8, 0), RangeError);
});

test('free-running u16 indices wrap around', () => {
  const ring = RING8;
  const regions = makeRegions();
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  const drv = new TestDriver(g, ring);
  drv.setAvailIdx(0xfffe);
  drv.setUsedIdx(0xfffd); // the constructor takes used.idx from the ring
  const vq = new SplitVirtqueue(memory, { ...ring, lastAvailIdx: 0xfffe, eventIdx: false, indirect: false });
  assert.equal(vq.usedIdx, 0xfffd);
  for (let h = 0; h < 4; h++) {
    drv.desc(h, 0x4000 + h * 16, 16, 0);
    drv.offer(h);
  }
  assert.equal(drv.availIdx, 2);
  assert.equal(vq.available(), 4);
  const chain = new DescriptorChain(2);
  const heads: number[] = [];
  while (vq.pop(chain)) {
    heads.push(chain.head);
    vq.pushUsed(chain.head, 0x100 + chain.head);
  }
  assert.deepEqual(heads, [0, 1, 2, 3]);
  assert.equal(vq.lastAvailIdx, 2);
  assert.equal(vq.usedIdx, 1);
  assert.equal(vq.flushUsed(), true);
  assert.equal(drv.usedIdx(), 1);
  // 0xfffd lands in slot 5, then 6, 7, 0.
  assert.deepEqual(drv.usedElem(0xfffd), [0, 0x100]);
  assert.deepEqual(drv.usedElem(0xffff), [2, 0x102]);
  assert.deepEqual(drv.usedElem(0x10000), [3, 0x103]);
  // A full ring's worth (8 ahead) is legal across the wrap.
  for (let k = 0; k < 8; k++) drv.offer(k % 4);
  assert.equal(vq.available(), 8);
  assert.equal(vq.error, null);
});

test('constructor refuses bad sizes, misaligned and unmapped rings', () => {
  const memory = makeMemory(makeRegions());
  const base = { ...RING8, lastAvailIdx: 0, eventIdx: true, indirect: true };
  const code = (o: Partial<SplitVirtqueueOptions>, c: string) =>
    assert.throws(() => new SplitVirtqueue(memory, { ...base, ...o }), (e: unknown) => e instanceof VirtqueueError && e.code === c);
  for (const size of [0, 3, 48, 65536, 1.5, -8]) code({ size }, 'BAD_QUEUE_SIZE');
  code({ descGpa: 0x1008 }, 'RING_MISALIGNED');
  code({ availGpa: 0x2001 }, 'RING_MISALIGNED');
  code({ usedGpa: 0x3002 }, 'RING_MISALIGNED');
  code({ descGpa: 0x20000 }, 'RING_NOT_MAPPED'); // gap
  code({ descGpa: 0xfff0 }, 'RING_NOT_MAPPED'); // spans R0/R1: a ring must be in one region
  code({ usedGpa: 0xffc8 }, 'RING_NOT_MAPPED'); // 4 + 64 + 2 bytes do not fit before 0x10000
  code({ availGpa: -2 }, 'RING_NOT_MAPPED');
  code({ lastAvailIdx: -1 }, 'BAD_LAST_AVAIL_IDX');
  // Without EVENT_IDX the trailing avail_event is not part of the used ring.
  new SplitVirtqueue(memory, { ...base, eventIdx: false, usedGpa: 0xffbc });
  code({ usedGpa: 0xffbc }, 'RING_NOT_MAPPED');
  const big = new SplitVirtqueue(memory, { ...base, size: 1024, descGpa: 0x40000, availGpa: 0x44000, usedGpa: 0x45000 });
  assert.equal(big.size, 1024);
});

test('rebind re-creates ring views; rings that no longer map break the queue without touching memory', () => {
  const { regions, drv, vq } = setup();
  drv.desc(0, 0x4000, 4, 0);
  drv.offer(0);
  // Same memory, new table object (e.g. a region added elsewhere).
  const more = [...regions, { guestPhysAddr: 0x80000, size: 0x1000, userAddr: 1, hostAddr: 0n, bytes: new Uint8Array(0x1000) }];
  vq.rebind(makeMemory(more));
  const chain = new DescriptorChain(2);
  assert.equal(vq.pop(chain), true);
  assert.equal(chain.out.addrs[0], 0x555500004000);
  vq.pushUsed(0, 0);
  // R0 (holding the rings) removed.
  assert.throws(() => vq.rebind(makeMemory(regions.slice(1))), (e: unknown) => e instanceof VirtqueueError && e.code === 'RING_NOT_MAPPED');
  assert.equal(vq.error?.code, 'RING_NOT_MAPPED');
  drv.offer(0);
  assert.equal(vq.available(), 0);
  assert.equal(vq.pop(chain), false);
  vq.pushUsed(0, 0);
  assert.equal(vq.flushUsed(), false);
  assert.equal(drv.usedIdx(), 0, 'nothing published after the rings went away');
  vq.disableNotifications();
  assert.equal(drv.usedFlags(), 0);
  assert.equal(vq.enableNotifications(), false);
});
