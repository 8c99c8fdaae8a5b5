// A hostile guest on a packed ring: every broken chain must give the right error code, leave the
// queue broken, never throw out of pop(), and never hand out a segment outside guest memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PackedVirtqueue, type PackedVirtqueueOptions } from '../../../src/virtio/packed-virtqueue.ts';
import { DescriptorChain } from '../../../src/virtio/descriptor-chain.ts';
import { VIRTQ_DESC_F_INDIRECT as INDIRECT, VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE } from '../../../src/virtio/virtio-constants.ts';
import { VIRTQ_DESC_F_AVAIL as AVAIL, VIRTQ_DESC_F_USED as USED } from '../../../src/virtio/packed-ring-constants.ts';
import { GuestAccess, makeMemory, makeRegions, type TestRegion } from './virtq-driver.ts';
import { availBits, PackedTestDriver, PRING8 } from './packed-driver.ts';

function setup(opts: Partial<PackedVirtqueueOptions> = {}, layout?: TestRegion[]) {
  const regions = makeRegions(layout);
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  const drv = new PackedTestDriver(g, PRING8);
  const vq = new PackedVirtqueue(memory, { ...PRING8, lastAvailIdx: 0x8000, eventIdx: false, indirect: true, ...opts });
  return { regions, g, drv, vq };
}

const A1 = availBits(1); // available in the first lap

/** Pops once (must not throw, must fail with `code`), then checks the queue stays broken. */
function expectBroken(vq: PackedVirtqueue, drv: PackedTestDriver, code: string, pattern?: RegExp, capacity = 4): void {
  const chain = new DescriptorChain(capacity);
  let ok = true;
  assert.doesNotThrow(() => {
    ok = vq.pop(chain);
  });
  assert.equal(ok, false);
  assert.equal(vq.error?.code, code, vq.error?.message);
  if (pattern) assert.match(vq.error.message, pattern);
  assert.deepEqual([chain.head, chain.id, chain.descCount], [-1, -1, 0]);
  assert.equal(chain.out.count + chain.in.count, 0, 'a failed pop leaves no segments');
  assert.equal(vq.lastAvailIdx, 0x8000, 'the position does not move');
  const first = vq.error;
  // Even a perfectly good chain offered afterwards is not popped.
  drv.nextAvail = 0;
  drv.availWrap = 1;
  drv.add([{ addr: 0x4000, len: 4 }], 1);
  assert.equal(vq.pop(chain), false);
  assert.equal(vq.available(), 0);
  assert.equal(vq.enableNotifications(), false);
  assert.equal(vq.error, first, 'the first error is kept');
}

test('descriptors that are not available are not popped and break nothing', () => {
  const { drv, vq } = setup();
  const chain = new DescriptorChain(2);
  // Zeroed ring; then every AVAIL/USED combination but the available one (AVAIL 1, USED 0 in lap 1).
  for (const bits of [0, AVAIL | USED, USED]) {
    drv.put(0, 0x4000, 4, 1, bits);
    assert.equal(vq.available(), 0);
    assert.equal(vq.pop(chain), false);
    assert.equal(vq.enableNotifications(), false);
  }
  assert.equal(vq.error, null);
  drv.put(0, 0x4000, 4, 1, AVAIL);
  assert.equal(vq.pop(chain), true);
  // Lap 2 at slot 0 needs AVAIL 0, USED 1; the lap-1 flags left behind do not count.
  const late = setup({ lastAvailIdx: 0x0000, usedIdx: 0x0000 });
  late.drv.put(0, 0x4000, 4, 1, AVAIL);
  assert.equal(late.vq.pop(chain), false);
  late.drv.put(0, 0x4000, 4, 1, AVAIL | USED);
  assert.equal(late.vq.pop(chain), false);
  late.drv.put(0, 0x4000, 4, 1, USED);
  assert.equal(late.vq.pop(chain), true);
  assert.equal(late.vq.error, null);
});

test('a NEXT into a descriptor that is not available', () => {
  for (const bits of [0, AVAIL | USED, USED]) {
    const { drv, vq } = setup();
    drv.put(1, 0x4100, 4, 1, bits);
    drv.put(0, 0x4000, 4, 1, NEXT | A1);
    expectBroken(vq, drv, 'NEXT_OUT_OF_RANGE', /descriptor 1 \(slot 1\) follows a NEXT but is not available/);
  }
});

test('a chain across the ring end must flip its wrap bits at slot 0', () => {
  const { drv, vq } = setup({ lastAvailIdx: 0x8007, usedIdx: 0x8007 });
  drv.put(0, 0x4100, 4, 1, A1); // should be availBits(0): the driver forgot to flip
  drv.put(7, 0x4000, 4, 1, NEXT | A1);
  const chain = new DescriptorChain(2);
  assert.equal(vq.pop(chain), false);
  assert.equal(vq.error?.code, 'NEXT_OUT_OF_RANGE');
  assert.match(vq.error!.message, /slot 0\) follows a NEXT but is not available: flags 0x80 \(AVAIL 1, USED 0; available needs AVAIL 0, USED 1\)/);
});

test('a chain longer than the ring', () => {
  const { drv, vq } = setup();
  for (let i = 7; i >= 0; i--) drv.put(i, 0x4000, 0, 1, NEXT | A1);
  expectBroken(vq, drv, 'DESC_LOOP', /more than queue size 8 descriptors \(slot 7 still has NEXT\)/, 16);
});

test('a chain using the whole ring is fine', () => {
  const { drv, vq } = setup();
  drv.add(Array.from({ length: 8 }, (_, i) => ({ addr: 0x4000 + 8 * i, len: 8 })), 99);
  const chain = new DescriptorChain(8);
  assert.equal(vq.pop(chain), true, vq.error?.message);
  assert.deepEqual([chain.id, chain.descCount, chain.out.count], [99, 8, 8]);
  assert.equal(vq.lastAvailIdx, 0x0000, 'slot 0 of the next lap');
  vq.pushUsed(chain, 0);
  assert.equal(vq.usedIdx, 0x0000);
  assert.deepEqual(drv.getUsed(), { id: 99, len: 0, flags: AVAIL | USED, slot: 0 });
});

test('indirect table: bad lengths', () => {
  for (const len of [0, 20, 32768 * 16 + 16]) {
    const { drv, vq } = setup({}, [{ gpa: 0, size: 0x100000, user: 0, host: 0x1000n }]);
    drv.put(0, 0x10000, len, 1, INDIRECT | A1);
    expectBroken(vq, drv, 'INDIRECT_BAD_LENGTH', new RegExp(`indirect table of ${len} bytes`));
  }
});

test('indirect table: nested, with NEXT, inside a NEXT chain, not negotiated', () => {
  {
    const { drv, vq } = setup();
    drv.putAt(0x40000, 0, 0x4000, 4, 0, 0);
    drv.putAt(0x40000, 1, 0x40100, 16, 0, INDIRECT);
    drv.put(0, 0x40000, 32, 1, INDIRECT | A1);
    expectBroken(vq, drv, 'INDIRECT_NESTED', /entry 1 of the indirect table at 0x40000 is itself indirect/);
  }
  {
    const { drv, vq } = setup();
    drv.putAt(0x40000, 0, 0x4000, 4, 0, 0);
    drv.put(1, 0x4000, 4, 1, A1);
    drv.put(0, 0x40000, 16, 1, INDIRECT | NEXT | A1);
    expectBroken(vq, drv, 'INDIRECT_WITH_NEXT', /slot 0 is indirect inside a NEXT chain/);
  }
  {
    const { drv, vq } = setup();
    drv.putAt(0x40000, 0, 0x4000, 4, 0, 0);
    drv.put(1, 0x40000, 16, 1, INDIRECT | A1);
    drv.put(0, 0x4000, 4, 1, NEXT | A1);
    expectBroken(vq, drv, 'INDIRECT_WITH_NEXT', /slot 1 is indirect inside a NEXT chain/);
  }
  {
    const { drv, vq } = setup({ indirect: false });
    drv.putAt(0x40000, 0, 0x4000, 4, 0, 0);
    drv.put(0, 0x40000, 16, 1, INDIRECT | A1);
    expectBroken(vq, drv, 'INDIRECT_NOT_NEGOTIATED');
  }
});

test('indirect entries: NEXT, ids and wrap bits are ignored (reserved), entries run in table order', () => {
  const { drv, vq } = setup();
  drv.putAt(0x40000, 0, 0x4000, 4, 0x5555, NEXT | AVAIL | USED);
  drv.putAt(0x40000, 1, 0x4100, 6, 0x6666, WRITE | NEXT);
  drv.putAt(0x40000, 2, 0x4200, 8, 0, WRITE);
  drv.put(0, 0x40000, 48, 77, INDIRECT | WRITE | A1); // WRITE on the indirect descriptor itself is reserved
  const chain = new DescriptorChain(4);
  assert.equal(vq.pop(chain), true, vq.error?.message);
  assert.deepEqual([chain.id, chain.descCount, chain.out.length, chain.in.length], [77, 1, 4, 14]);
});

test('indirect table outside memory, spanning two regions, or past the end of RAM', () => {
  for (const [addr, len, pattern] of [
    [0x30000, 16, /indirect table \[0x30000, \+16\)/],
    [0xfff0, 32, /indirect table \[0xfff0, \+32\)/],
    [0x4fff0, 32, /indirect table \[0x4fff0, \+32\)/],
    [2 ** 53, 16, /indirect table \[0x20000000000000, \+16\)/],
  ] as const) {
    const { drv, vq } = setup();
    drv.put(0, addr, len, 1, INDIRECT | A1);
    expectBroken(vq, drv, 'ADDRESS_NOT_MAPPED', pattern);
  }
});

test('buffer addresses outside memory: gap, end of RAM, beyond 2^53, u64 max (ring and indirect)', () => {
  const cases: [bigint, number, RegExp][] = [
    [0x20000n, 16, /\[0x20000, \+16\)/],
    [0x1ff00n, 0x200, /\[0x1ff00, \+512\)/],
    [0x4fff0n, 0x11, /\[0x4fff0, \+17\)/],
    [0x100000000n + 0x4000n, 4, /\[0x100004000, \+4\)/],
    [1n << 53n, 4, /\[0x20000000000000, \+4\)/],
    [0xffffffffffffff00n, 0x10, /\[0xffffffffffffff00, \+16\)/],
  ];
  for (const [addr, len, pattern] of cases) {
    {
      const { drv, vq } = setup();
      drv.put(1, addr, len, 1, WRITE | A1);
      drv.put(0, 0x4000, 4, 1, NEXT | A1);
      expectBroken(vq, drv, 'ADDRESS_NOT_MAPPED', pattern);
      assert.match(vq.error!.message, /descriptor 1 \(slot 1\)/);
    }
    {
      const { drv, vq } = setup();
      drv.putAt(0x40000, 0, 0x4000, 4, 0, 0);
      drv.putAt(0x40000, 1, addr, len, 0, WRITE);
      drv.put(0, 0x40000, 32, 1, INDIRECT | A1);
      expectBroken(vq, drv, 'ADDRESS_NOT_MAPPED', pattern);
      assert.match(vq.error!.message, /indirect entry 1/);
    }
  }
});

test('a readable descriptor after a writable one (ring and indirect)', () => {
  {
    const { drv, vq } = setup();
    drv.put(1, 0x4100, 4, 1, A1);
    drv.put(0, 0x4000, 4, 1, WRITE | NEXT | A1);
    expectBroken(vq, drv, 'READABLE_AFTER_WRITABLE', /descriptor 1 \(slot 1\) is device-readable/);
  }
  {
    const { drv, vq } = setup();
    drv.putAt(0x40000, 0, 0x4000, 4, 0, WRITE);
    drv.putAt(0x40000, 1, 0x4100, 4, 0, 0);
    drv.put(0, 0x40000, 32, 1, INDIRECT | A1);
    expectBroken(vq, drv, 'READABLE_AFTER_WRITABLE', /indirect entry 1 is device-readable/);
  }
});

test('more segments than the chain holds (ring and indirect)', () => {
  {
    const { drv, vq } = setup();
    for (let i = 4; i >= 0; i--) drv.put(i, 0x4000 + 16 * i, 16, 1, (i < 4 ? NEXT : 0) | A1);
    expectBroken(vq, drv, 'TOO_MANY_SEGMENTS', /descriptor 4 \(slot 4\): more than 4 readable segments/);
  }
  {
    const { drv, vq } = setup();
    for (let i = 0; i < 5; i++) drv.putAt(0x40000, i, 0x4000 + 16 * i, 16, 0, WRITE);
    drv.put(0, 0x40000, 80, 1, INDIRECT | A1);
    expectBroken(vq, drv, 'TOO_MANY_SEGMENTS', /indirect entry 4: more than 4 writable segments/);
  }
});

test('total chain length beyond u32 (ring and indirect)', () => {
  const layout = [
    { gpa: 0, size: 0x10000, user: 0, host: 0x1000n },
    { gpa: 0x40000, size: 0x1000, user: 0x40000, host: 0x3000000n },
    { gpa: 0x100000000, size: 0x80000000, user: 0x100000000, host: 0x2000000n },
  ];
  {
    const { drv, vq } = setup({}, layout);
    drv.add([{ addr: 0x100000000, len: 0x80000000 }, { addr: 0x100000000, len: 0x7fffffff }], 1);
    const chain = new DescriptorChain(4);
    assert.equal(vq.pop(chain), true, vq.error?.message);
    assert.equal(chain.out.length, 0xffffffff);
  }
  {
    const { drv, vq } = setup({}, layout);
    drv.put(1, 0x100000000, 0x80000000, 1, A1);
    drv.put(0, 0x100000000, 0x80000000, 1, NEXT | A1);
    expectBroken(vq, drv, 'CHAIN_TOO_LONG', /total length 4294967296 at descriptor 1/);
  }
  {
    const { drv, vq } = setup({}, layout);
    drv.putAt(0x40000, 0, 0x100000000, 0x80000000, 0, 0);
    drv.putAt(0x40000, 1, 0x100000000, 0x80000000, 0, 0);
    drv.put(0, 0x40000, 32, 1, INDIRECT | A1);
    expectBroken(vq, drv, 'CHAIN_TOO_LONG', /total length 4294967296 at indirect entry 1/);
  }
});

test('in-flight requests of a guest-broken queue can still complete', () => {
  const { drv, vq } = setup();
  drv.add([{ addr: 0x4000, len: 4, write: true }], 5);
  drv.put(1, 0x20000, 4, 6, A1);
  const chain = new DescriptorChain(2);
  assert.equal(vq.pop(chain), true);
  const bad = new DescriptorChain(2);
  assert.equal(vq.pop(bad), false);
  assert.equal(vq.error?.code, 'ADDRESS_NOT_MAPPED');
  vq.pushUsed(chain, 4);
  assert.equal(vq.flushUsed(), true);
  assert.deepEqual(drv.getUsed(), { id: 5, len: 4, flags: AVAIL | USED | WRITE, slot: 0 });
});

/** xorshift32: deterministic garbage. */
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

test('fuzz: random rings never throw and every segment lies inside its region', () => {
  const next = rng(0x9acced);
  const regions = makeRegions();
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  const chains = [new DescriptorChain(2), new DescriptorChain(16)];
  const pick = (choices: number[]) => choices[next() % choices.length];
  let popped = 0;
  const codes = new Set<string>();
  for (let iter = 0; iter < 3000; iter++) {
    const drv = new PackedTestDriver(g, PRING8);
    const chain = chains[next() % 2];
    const allNext = next() % 16 === 0; // one endless chain now and then
    // Flags: mostly available in lap 1 (sometimes lap 2 or garbage), random NEXT/WRITE/INDIRECT.
    for (let i = 0; i < 8; i++) {
      const base = pick([0x4000, 0xff00, 0x1ff00, 0x20000, 0x40000, 0x4ff00, 0x10000, 0]);
      const addr = next() % 8 === 0 ? (BigInt(next()) << 32n) | BigInt(next()) : BigInt(base + (next() % 0x200));
      const len = next() % 8 === 0 ? next() : next() % 0x300;
      const bits = pick([A1, A1, A1, A1, availBits(0), AVAIL | USED, 0, next() & 0xffff]);
      const kind = (next() % 2 === 0 ? NEXT : 0) | (next() % 4 === 0 ? WRITE : 0) | (next() % 16 === 0 ? INDIRECT : 0);
      if (allNext) drv.put(i, 0x4000 + 4 * i, 4, i, NEXT | A1);
      else drv.put(i, addr, len, next() & 0xffff, kind | bits);
    }
    for (let i = 0; i < 4; i++) drv.putAt(0x40800, i, BigInt(0x4000 + (next() % 0x400)), next() % 0x40, next() & 0xffff, next() % 8);
    if (next() % 2 === 0) drv.put(next() % 8, 0x40800, pick([64, 48, 20, 0, 4096]), 1, INDIRECT | A1);
    const start = next() % 8;
    const vq = new PackedVirtqueue(memory, { ...PRING8, lastAvailIdx: 0x8000 | start, eventIdx: next() % 2 === 0, indirect: next() % 4 !== 0 });
    for (let k = 0; k < 12; k++) {
      let ok = false;
      assert.doesNotThrow(() => {
        ok = vq.pop(chain);
      });
      if (!ok) break;
      popped++;
      assert.ok(chain.descCount >= 1 && chain.descCount <= 8);
      assert.ok(chain.id >= 0 && chain.id <= 0xffff);
      for (const list of [chain.out, chain.in]) {
        let sum = 0;
        for (let s = 0; s < list.count; s++) {
          assert.ok(list.lengths[s] > 0);
          assert.ok(list.offsets[s] + list.lengths[s] <= list.bufs[s].length, 'segment inside its region');
          sum += list.lengths[s];
        }
        assert.equal(sum, list.length);
      }
      assert.doesNotThrow(() => vq.pushUsed(chain, chain.in.length));
    }
    if (vq.error) codes.add(vq.error.code);
  }
  assert.ok(popped > 250, `popped ${popped}`);
  assert.ok(codes.size >= 9, [...codes].join(','));
});
