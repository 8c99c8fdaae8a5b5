// Packed virtqueue, normal operation: chains, indirect tables, used descriptors as the driver reads
// them back, out-of-order completion, ring wrap-around, restart from the vhost-user ring base.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePackedVringBase, PackedVirtqueue, type PackedVirtqueueOptions } from '../../../src/virtio/packed-virtqueue.ts';
import { DescriptorChain } from '../../../src/virtio/descriptor-chain.ts';
import { VirtqueueError } from '../../../src/virtio/virtqueue-error.ts';
import type { Virtqueue } from '../../../src/virtio/virtqueue.ts';
import { VIRTQ_DESC_F_WRITE as WRITE } from '../../../src/virtio/virtio-constants.ts';
import { VIRTQ_DESC_F_AVAIL as AVAIL, VIRTQ_DESC_F_USED as USED } from '../../../src/virtio/packed-ring-constants.ts';
import { GuestAccess, makeMemory, makeRegions } from './virtq-driver.ts';
import { PackedTestDriver, PRING8, usedBits, type PackedRingAddrs } from './packed-driver.ts';

function setup(opts: Partial<PackedVirtqueueOptions> = {}, ring: PackedRingAddrs = PRING8) {
  const regions = makeRegions();
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  const drv = new PackedTestDriver(g, ring);
  const vq = new PackedVirtqueue(memory, { ...ring, lastAvailIdx: 0x8000, eventIdx: false, indirect: true, ...opts });
  return { regions, memory, g, drv, vq };
}

function segs(list: DescriptorChain['out']): [number, number, number][] {
  const r: [number, number, number][] = [];
  for (let i = 0; i < list.count; i++) r.push([list.offsets[i], list.lengths[i], list.addrs[i]]);
  return r;
}

test('a readable-then-writable chain: segments, id from the last descriptor, used descriptor read back', () => {
  const { regions, g, drv, vq } = setup();
  g.write(0x5000, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  g.write(0x6000, [0xde, 0xad]);
  assert.equal(vq.available(), 0, 'a zeroed ring has nothing available (wrap counter 1)');
  const head = drv.add(
    [
      { addr: 0x5000, len: 16 },
      { addr: 0x6000, len: 512 },
      { addr: 0x40100, len: 3, write: true },
    ],
    0x1234,
  );
  assert.equal(head, 0);
  assert.equal(vq.available(), 1);
  const chain = new DescriptorChain(8);
  assert.equal(vq.pop(chain), true, vq.error?.message);
  assert.equal(chain.head, 0);
  assert.equal(chain.id, 0x1234);
  assert.equal(chain.descCount, 3);
  assert.deepEqual(segs(chain.out), [
    [0x5000, 16, 0x555500000000 + 0x5000],
    [0x6000, 512, 0x555500000000 + 0x6000],
  ]);
  assert.equal(chain.out.bufs[0], regions[0].bytes);
  assert.deepEqual(segs(chain.in), [[0x100, 3, 0x555700000000 + 0x100]]);
  const hdr = new Uint8Array(18);
  assert.equal(chain.out.copyOut(0, hdr, 0, 18), 18);
  assert.deepEqual([...hdr], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0xde, 0xad]);
  chain.in.copyIn(0, new Uint8Array([0x77, 0x78, 0x79]), 0, 3);
  assert.deepEqual(g.read(0x40100, 3), [0x77, 0x78, 0x79]);
  assert.equal(vq.lastAvailIdx, 0x8003);
  assert.equal(vq.available(), 0);
  assert.equal(vq.pop(chain), false);
  assert.equal(chain.id, -1);
  assert.equal(vq.error, null);
  // Complete it: one used descriptor at slot 0 (the chain's first), id and len, AVAIL = USED = 1, WRITE.
  assert.equal(vq.pop(chain), false);
  const done = new DescriptorChain(1);
  done.id = 0x1234;
  done.descCount = 3;
  vq.pushUsed(done, 3);
  assert.equal(g.u16(0x1000 + 12), 0x1234);
  assert.equal(g.u32(0x1000 + 8), 3);
  assert.equal(drv.flagsAt(0), AVAIL | USED | WRITE);
  assert.equal(drv.flagsAt(1) & (AVAIL | USED), AVAIL, 'slots 1-2 untouched');
  assert.equal(vq.usedIdx, 0x8003);
  assert.equal(vq.vringBase, 0x80038003);
  assert.deepEqual(drv.getUsed(), { id: 0x1234, len: 3, flags: AVAIL | USED | WRITE, slot: 0 });
  assert.equal(drv.nextUsed, 3);
  assert.equal(drv.getUsed(), null);
});

test('a used descriptor without written data has no WRITE flag and len 0', () => {
  const { drv, vq } = setup();
  drv.add([{ addr: 0x5000, len: 8 }], 7);
  const chain = new DescriptorChain(2);
  assert.equal(vq.pop(chain), true);
  vq.pushUsed(chain, 0);
  assert.deepEqual(drv.getUsed(), { id: 7, len: 0, flags: AVAIL | USED, slot: 0 });
});

test('a header split over descriptors, a zero-length one skipped, a buffer across adjacent regions', () => {
  const { regions, g, drv, vq } = setup();
  g.write(0x8000, [0, 1, 2, 3, 4, 5, 6]);
  g.write(0x9000, [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
  drv.add(
    [
      { addr: 0x8000, len: 7 },
      { addr: 0xdead0000, len: 0 }, // never looked at
      { addr: 0x9000, len: 12 },
      { addr: 0xff00, len: 0x200, write: true },
    ],
    3,
  );
  const chain = new DescriptorChain(4);
  assert.equal(vq.pop(chain), true, vq.error?.message);
  assert.equal(chain.descCount, 4);
  const hdr = new Uint8Array(19);
  chain.out.copyOut(0, hdr, 0, 19);
  assert.deepEqual([...hdr], Array.from({ length: 19 }, (_, i) => i));
  assert.deepEqual(segs(chain.in), [
    [0xff00, 0x100, 0x555500000000 + 0xff00],
    [0x0, 0x100, 0x555600000000],
  ]);
  assert.equal(chain.in.bufs[1], regions[1].bytes);
  assert.equal(vq.lastAvailIdx, 0x8004);
});

test('indirect tables (also unaligned ones) count as one ring descriptor', () => {
  const { g, drv, vq } = setup();
  const table = 0x40803;
  g.write(0x4000, [9, 8, 7, 6, 5, 4, 3, 2]);
  drv.add([{ addr: 0x4400, len: 4 }], 1);
  drv.addIndirect(
    table,
    [
      { addr: 0x4000, len: 8 },
      { addr: 0x10010, len: 0x20 },
      { addr: 0x4100, len: 1, write: true },
    ],
    2,
  );
  drv.add([{ addr: 0x4500, len: 4, write: true }], 3);
  const chain = new DescriptorChain(4);
  assert.equal(vq.pop(chain), true);
  assert.deepEqual([chain.head, chain.id, chain.descCount], [0, 1, 1]);
  assert.equal(vq.pop(chain), true, vq.error?.message);
  assert.deepEqual([chain.head, chain.id, chain.descCount], [1, 2, 1]);
  assert.deepEqual(segs(chain.out), [
    [0x4000, 8, 0x555500000000 + 0x4000],
    [0x10, 0x20, 0x555600000000 + 0x10],
  ]);
  assert.deepEqual(segs(chain.in), [[0x4100, 1, 0x555500000000 + 0x4100]]);
  const b = new Uint8Array(8);
  chain.out.copyOut(0, b, 0, 8);
  assert.deepEqual([...b], [9, 8, 7, 6, 5, 4, 3, 2]);
  assert.equal(vq.pop(chain), true);
  assert.deepEqual([chain.head, chain.id, chain.descCount], [2, 3, 1]);
  assert.equal(vq.lastAvailIdx, 0x8003);
});

/** Pops everything available into fresh chains. */
function popAll(vq: Virtqueue, capacity = 8): DescriptorChain[] {
  const out: DescriptorChain[] = [];
  for (;;) {
    const c = new DescriptorChain(capacity);
    if (!vq.pop(c)) return out;
    out.push(c);
  }
}

test('out-of-order completion: used descriptors go in completion order at the used position, advancing by descriptor count', () => {
  const { drv, vq } = setup();
  drv.add([{ addr: 0x4000, len: 4 }, { addr: 0x4100, len: 4, write: true }], 10); // A: slots 0-1
  drv.add([{ addr: 0x4200, len: 4, write: true }], 11); // B: slot 2
  drv.add([{ addr: 0x4300, len: 4 }, { addr: 0x4400, len: 4 }, { addr: 0x4500, len: 4, write: true }], 12); // C: slots 3-5
  const [a, b, c] = popAll(vq);
  assert.deepEqual([a.id, b.id, c.id], [10, 11, 12]);
  assert.deepEqual([a.descCount, b.descCount, c.descCount], [2, 1, 3]);
  vq.pushUsed(b, 1);
  vq.pushUsed(c, 2);
  vq.pushUsed(a, 3);
  // B's used descriptor overwrote slot 0 (A's first), C's slot 1, A's slot 4.
  assert.equal(vq.usedIdx, 0x8006);
  assert.deepEqual([drv.g.u16(0x1000 + 12), drv.g.u16(0x1010 + 12), drv.g.u16(0x1040 + 12)], [11, 12, 10]);
  assert.deepEqual(drv.getUsed(), { id: 11, len: 1, flags: AVAIL | USED | WRITE, slot: 0 });
  assert.deepEqual(drv.getUsed(), { id: 12, len: 2, flags: AVAIL | USED | WRITE, slot: 1 });
  assert.deepEqual(drv.getUsed(), { id: 10, len: 3, flags: AVAIL | USED | WRITE, slot: 4 });
  assert.equal(drv.getUsed(), null);
  assert.equal(drv.nextUsed, 6);
});

test('a chain crossing the end of the ring flips the wrap counter in the middle', () => {
  const { drv, vq } = setup();
  drv.add([{ addr: 0x4000, len: 4 }], 1);
  drv.add([{ addr: 0x4000, len: 4 }], 2);
  drv.add([{ addr: 0x4000, len: 4 }], 3);
  drv.add([{ addr: 0x4000, len: 4 }], 4);
  drv.add([{ addr: 0x4000, len: 4 }], 5);
  drv.add([{ addr: 0x4000, len: 4 }], 6);
  for (const ch of popAll(vq)) vq.pushUsed(ch, 0);
  while (drv.getUsed()) {
    // drain
  }
  // Slots 6, 7, then 0 and 1 of the next lap (driver wrap 0 there: AVAIL 0, USED 1).
  drv.add(
    [
      { addr: 0x5000, len: 1 },
      { addr: 0x5001, len: 1 },
      { addr: 0x5002, len: 1 },
      { addr: 0x5003, len: 1, write: true },
    ],
    9,
  );
  assert.equal(drv.flagsAt(0) & (AVAIL | USED), USED);
  const chain = new DescriptorChain(4);
  assert.equal(vq.pop(chain), true, vq.error?.message);
  assert.deepEqual([chain.head, chain.id, chain.descCount, chain.out.length, chain.in.length], [6, 9, 4, 3, 1]);
  assert.equal(vq.lastAvailIdx, 2, 'slot 2, wrap 0');
  vq.pushUsed(chain, 1);
  assert.equal(vq.usedIdx, 2);
  assert.deepEqual(drv.getUsed(), { id: 9, len: 1, flags: AVAIL | USED | WRITE, slot: 6 });
  assert.equal(drv.nextUsed, 2);
  assert.equal(drv.usedWrap, 0);
});

/** xorshift32. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

test('many laps of a ring of odd size: random chain lengths, random completion order, restart midway', () => {
  const next = rng(42);
  const ring = { size: 5, descGpa: 0x1000, driverEventGpa: 0x2000, deviceEventGpa: 0x2004 };
  const regions = makeRegions();
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  const drv = new PackedTestDriver(g, ring);
  let vq = new PackedVirtqueue(memory, { ...ring, lastAvailIdx: 0x8000, eventIdx: false, indirect: true });
  const inflight: DescriptorChain[] = [];
  const expectLen = new Map<number, number>();
  let nextId = 0;
  let completed = 0;
  let laps = 0;
  let restarts = 0;
  for (let round = 0; round < 3000; round++) {
    // Offer while there is room: chains of 1-3 descriptors, sometimes an indirect one.
    while (drv.free > 0 && next() % 3 !== 0) {
      const id = nextId++ & 0xffff;
      const want = 1 + (next() % 3);
      const n = Math.min(want, drv.free);
      const elems = Array.from({ length: n }, (_, k) => ({ addr: 0x4000 + 64 * k, len: 8 + k, write: k === n - 1 && n > 1 }));
      if (n === 1 && next() % 4 === 0) drv.addIndirect(0x40000 + 64 * (id % 8), [{ addr: 0x4800, len: 4 }, { addr: 0x4900, len: 5, write: true }], id);
      else drv.add(elems, id);
    }
    for (const ch of popAll(vq, 4)) inflight.push(ch);
    // Complete a random subset in random order.
    let k = next() % (inflight.length + 1);
    while (k-- > 0) {
      const [ch] = inflight.splice(next() % inflight.length, 1);
      const len = ch.in.length;
      expectLen.set(ch.id, len);
      vq.pushUsed(ch, len);
    }
    for (;;) {
      const wrap = drv.usedWrap;
      const u = drv.getUsed();
      if (u === null) break;
      assert.equal(u.len, expectLen.get(u.id), `id ${u.id}`);
      assert.equal(u.flags, usedBits(wrap) | (u.len > 0 ? WRITE : 0));
      expectLen.delete(u.id);
      completed++;
    }
    if (drv.nextAvail === 0) laps++;
    // Now and then stop (nothing in flight) and restart from the ring base, as vhost-user does.
    if (inflight.length === 0 && next() % 50 === 0) {
      const base = vq.vringBase;
      assert.equal(base >>> 16, base & 0xffff, 'used = avail when nothing is in flight');
      vq = new PackedVirtqueue(memory, { ...ring, ...decodePackedVringBase(base), eventIdx: false, indirect: true });
      restarts++;
    }
    assert.equal(vq.error, null, vq.error?.message);
  }
  assert.ok(completed > 2000, `completed ${completed}`);
  assert.ok(laps > 100, `laps ${laps}`);
  assert.ok(restarts > 5, `restarts ${restarts}`);
  assert.equal(expectLen.size, 0);
});

test('used descriptors carry the device wrap counter: 0 on odd laps', () => {
  const { drv, vq } = setup({ lastAvailIdx: 0x0006, usedIdx: 0x0006 }); // lap with wrap 0 at slot 6
  drv.nextAvail = drv.nextUsed = 6;
  drv.availWrap = drv.usedWrap = 0;
  drv.add([{ addr: 0x4000, len: 4, write: true }], 5);
  assert.equal(drv.flagsAt(6), USED | WRITE);
  const chain = new DescriptorChain(2);
  assert.equal(vq.pop(chain), true);
  vq.pushUsed(chain, 4);
  assert.equal(drv.flagsAt(6), WRITE, 'AVAIL = USED = 0');
  assert.deepEqual(drv.getUsed(), { id: 5, len: 4, flags: WRITE, slot: 6 });
});

test('vhost-user ring base: decode, defaults, and what GET_VRING_BASE returns', () => {
  assert.deepEqual(decodePackedVringBase(0x80038005), { lastAvailIdx: 0x8005, usedIdx: 0x8003 });
  assert.deepEqual(decodePackedVringBase(0x8005), { lastAvailIdx: 0x8005, usedIdx: 0x8005 });
  assert.deepEqual(decodePackedVringBase(0x00070002), { lastAvailIdx: 0x0002, usedIdx: 0x0007 });
  const { vq } = setup({ lastAvailIdx: 0x0002, usedIdx: 0x8007 });
  assert.equal(vq.lastAvailIdx, 0x0002);
  assert.equal(vq.usedIdx, 0x8007);
  assert.equal(vq.vringBase, 0x80070002);
  const d = setup({ lastAvailIdx: 0x0004 }).vq;
  assert.equal(d.usedIdx, 0x0004, 'used defaults to avail');
});

test('constructor refuses unusable setups', () => {
  const regions = makeRegions();
  const memory = makeMemory(regions);
  const base = { ...PRING8, lastAvailIdx: 0x8000, eventIdx: false, indirect: false };
  const bad: [Partial<PackedVirtqueueOptions>, string, RegExp][] = [
    [{ size: 0 }, 'BAD_QUEUE_SIZE', /size 0/],
    [{ size: 32769 }, 'BAD_QUEUE_SIZE', /32769/],
    [{ size: 2.5 }, 'BAD_QUEUE_SIZE', /2\.5/],
    [{ descGpa: 0x1008 }, 'RING_MISALIGNED', /descriptor ring at 0x1008/],
    [{ driverEventGpa: 0x2002 }, 'RING_MISALIGNED', /driver event suppression at 0x2002/],
    [{ deviceEventGpa: 0x3001 }, 'RING_MISALIGNED', /device event suppression/],
    [{ descGpa: -16 }, 'RING_NOT_MAPPED', /-16/],
    [{ descGpa: 0x20000 }, 'RING_NOT_MAPPED', /descriptor ring \[0x20000, \+128\)/],
    [{ descGpa: 0xffc0 }, 'RING_NOT_MAPPED', /descriptor ring \[0xffc0/], // spans R0 and R1: not one view
    [{ driverEventGpa: 0x50000 }, 'RING_NOT_MAPPED', /driver event suppression/],
    [{ deviceEventGpa: 0x4fffc + 4 }, 'RING_NOT_MAPPED', /device event suppression/],
    [{ lastAvailIdx: 8 }, 'BAD_LAST_AVAIL_IDX', /last avail index 8 /],
    [{ lastAvailIdx: 0x8008 }, 'BAD_LAST_AVAIL_IDX', /32776/],
    [{ lastAvailIdx: 0x18000 }, 'BAD_LAST_AVAIL_IDX', /98304/],
    [{ lastAvailIdx: -1 }, 'BAD_LAST_AVAIL_IDX', /-1/],
    [{ usedIdx: 9 }, 'BAD_LAST_AVAIL_IDX', /used index 9 /],
    // Avail at slot 2 of lap 0, used at slot 0 of lap 1: used ahead of avail, or 10 of 8 in flight.
    [{ lastAvailIdx: 0x8002, usedIdx: 0x0000 }, 'BAD_LAST_AVAIL_IDX', /more than the queue size 8 behind/],
    [{ lastAvailIdx: 0x8002, usedIdx: 0x8003 }, 'BAD_LAST_AVAIL_IDX', /more than the queue size 8 behind/],
  ];
  for (const [over, code, pattern] of bad) {
    assert.throws(
      () => new PackedVirtqueue(memory, { ...base, ...over }),
      (e: unknown) => e instanceof VirtqueueError && e.code === code && pattern.test(e.message),
      `${JSON.stringify(over)} -> ${code}`,
    );
  }
  // Odd sizes are fine for packed rings, as is a whole ring in flight.
  assert.equal(new PackedVirtqueue(memory, { ...base, size: 3 }).size, 3);
  const big = makeMemory(makeRegions([{ gpa: 0, size: 0x100000, user: 0, host: 0x1000n }]));
  assert.equal(new PackedVirtqueue(big, { ...base, size: 32768, descGpa: 0x80000 }).size, 32768);
  assert.equal(new PackedVirtqueue(big, { ...base, size: 32768, descGpa: 0x80000, lastAvailIdx: 0x7fff }).lastAvailIdx, 0x7fff);
  assert.equal(new PackedVirtqueue(memory, { ...base, lastAvailIdx: 0x0002, usedIdx: 0x8002 }).vringBase, 0x80020002);
});

test('rebind keeps the ring going on a new table; a table without the ring breaks it', () => {
  const { regions, drv, vq } = setup();
  drv.add([{ addr: 0x4000, len: 4 }], 1);
  const chain = new DescriptorChain(2);
  assert.equal(vq.pop(chain), true);
  // Same bytes, new GuestMemory object (a SET_MEM_TABLE with the same regions).
  vq.rebind(makeMemory(regions));
  drv.add([{ addr: 0x4000, len: 4 }], 2);
  const c2 = new DescriptorChain(2);
  assert.equal(vq.pop(c2), true);
  assert.equal(c2.id, 2);
  vq.pushUsed(chain, 0);
  assert.equal(drv.getUsed()?.id, 1);
  assert.throws(() => vq.rebind(makeMemory(regions.slice(1))), (e: unknown) => e instanceof VirtqueueError && e.code === 'RING_NOT_MAPPED');
  assert.equal(vq.error?.code, 'RING_NOT_MAPPED');
  assert.equal(vq.pop(chain), false);
  assert.equal(vq.available(), 0);
  assert.equal(vq.flushUsed(), false);
  assert.doesNotThrow(() => vq.pushUsed(c2, 0)); // nothing touches memory any more
  assert.equal(drv.getUsed(), null);
});

test('pushUsed refuses a chain that was never popped (a device bug, not guest input)', () => {
  const { vq } = setup();
  assert.throws(() => vq.pushUsed(new DescriptorChain(1), 0), RangeError);
  const c = new DescriptorChain(1);
  c.id = 3;
  c.descCount = 9;
  assert.throws(() => vq.pushUsed(c, 0), /9 descriptors/);
});
