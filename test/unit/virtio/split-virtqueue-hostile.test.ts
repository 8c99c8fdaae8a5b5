// A hostile guest: every broken ring must give the right error code, leave the queue broken, and
// never throw out of pop() or hand out a segment outside guest memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SplitVirtqueue, type SplitVirtqueueOptions } from '../../../src/virtio/split-virtqueue.ts';
import { DescriptorChain } from '../../../src/virtio/descriptor-chain.ts';
import { VIRTQ_DESC_F_INDIRECT as INDIRECT, VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE } from '../../../src/virtio/virtio-constants.ts';
import { GuestAccess, makeMemory, makeRegions, RING8, TestDriver, type TestRegion } from './virtq-driver.ts';

function setup(opts: Partial<SplitVirtqueueOptions> = {}, layout?: TestRegion[]) {
  const regions = makeRegions(layout);
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  const drv = new TestDriver(g, RING8);
  const vq = new SplitVirtqueue(memory, { ...RING8, lastAvailIdx: 0, eventIdx: false, indirect: true, ...opts });
  return { regions, g, drv, vq };
}

/** Pops once (must not throw, must fail with `code`), then checks the queue stays broken. */
function expectBroken(vq: SplitVirtqueue, drv: TestDriver, code: string, pattern?: RegExp, capacity = 4): void {
  const chain = new DescriptorChain(capacity);
  let ok = true;
  assert.doesNotThrow(() => {
    ok = vq.pop(chain);
  });
  assert.equal(ok, false);
  assert.equal(vq.error?.code, code, vq.error?.message);
  if (pattern) assert.match(vq.error.message, pattern);
  assert.equal(chain.head, -1);
  assert.equal(chain.out.count + chain.in.count, 0, 'a failed pop leaves no segments');
  const first = vq.error;
  // Even a perfectly good chain offered afterwards is not popped.
  drv.desc(7, 0x4000, 4, 0);
  drv.offer(7);
  assert.equal(vq.pop(chain), false);
  assert.equal(vq.available(), 0);
  assert.equal(vq.enableNotifications(), false);
  assert.equal(vq.error, first, 'the first error is kept');
}

test('avail idx moving by more than the queue size', () => {
  const { drv, vq } = setup();
  drv.setAvailIdx(9);
  assert.equal(vq.available(), 0);
  assert.equal(vq.error?.code, 'AVAIL_IDX_JUMP');
  assert.match(vq.error!.message, /avail idx 9 is 9 ahead of last avail idx 0/);
  expectBroken(vq, drv, 'AVAIL_IDX_JUMP');
});

test('avail idx moving backwards is a jump too', () => {
  const { drv, vq } = setup({ lastAvailIdx: 5 });
  drv.setAvailIdx(4);
  expectBroken(vq, drv, 'AVAIL_IDX_JUMP', /avail idx 4 is 65535 ahead/);
});

test('head index out of range', () => {
  const { drv, vq } = setup();
  drv.offer(8);
  expectBroken(vq, drv, 'HEAD_OUT_OF_RANGE', /head 8 >= queue size 8/);
});

test('next index out of range', () => {
  const { drv, vq } = setup();
  drv.desc(0, 0x4000, 4, NEXT, 8);
  drv.offer(0);
  expectBroken(vq, drv, 'NEXT_OUT_OF_RANGE', /next 8 >= queue size 8/);
});

test('descriptor loops: self loop and a longer cycle', () => {
  {
    const { drv, vq } = setup();
    drv.desc(2, 0x4000, 4, NEXT, 2);
    drv.offer(2);
    expectBroken(vq, drv, 'DESC_LOOP', /more than 8 descriptors in the descriptor table \(a loop at 2 -> 2\)/, 64);
  }
  {
    const { drv, vq } = setup();
    drv.desc(0, 0x4000, 0, NEXT, 1); // zero-length descriptors still count
    drv.desc(1, 0x4000, 0, NEXT, 2);
    drv.desc(2, 0x4000, 0, NEXT, 0);
    drv.offer(0);
    expectBroken(vq, drv, 'DESC_LOOP');
  }
});

test('a chain using every descriptor once is not a loop', () => {
  const { drv, vq } = setup();
  for (let i = 0; i < 8; i++) drv.desc(i, 0x4000 + i * 8, 8, i < 7 ? NEXT : 0, i + 1);
  drv.offer(0);
  const chain = new DescriptorChain(8);
  assert.equal(vq.pop(chain), true);
  assert.equal(chain.out.count, 8);
  assert.equal(vq.error, null);
});

test('indirect table: bad lengths', () => {
  for (const len of [0, 20, 32768 * 16 + 16]) {
    const { drv, vq } = setup({}, [{ gpa: 0, size: 0x100000, user: 0, host: 0x1000n }]);
    drv.desc(0, 0x10000, len, INDIRECT);
    drv.offer(0);
    expectBroken(vq, drv, 'INDIRECT_BAD_LENGTH', new RegExp(`table of ${len} bytes`));
  }
});

test('indirect table: nested, with NEXT, not negotiated', () => {
  {
    const { drv, vq } = setup();
    drv.desc(0, 0x40000, 32, INDIRECT);
    drv.descAt(0x40000, 0, 0x4000, 4, NEXT, 1);
    drv.descAt(0x40000, 1, 0x40100, 16, INDIRECT);
    drv.offer(0);
    expectBroken(vq, drv, 'INDIRECT_NESTED');
  }
  {
    const { drv, vq } = setup();
    drv.desc(0, 0x40000, 16, INDIRECT | NEXT, 1);
    drv.desc(1, 0x4000, 4, 0);
    drv.descAt(0x40000, 0, 0x4000, 4, 0);
    drv.offer(0);
    expectBroken(vq, drv, 'INDIRECT_WITH_NEXT');
  }
  {
    const { drv, vq } = setup({ indirect: false });
    drv.desc(0, 0x40000, 16, INDIRECT);
    drv.descAt(0x40000, 0, 0x4000, 4, 0);
    drv.offer(0);
    expectBroken(vq, drv, 'INDIRECT_NOT_NEGOTIATED');
  }
});

test('indirect table: next beyond the table, and a loop inside it', () => {
  {
    const { drv, vq } = setup();
    drv.desc(0, 0x40000, 32, INDIRECT);
    drv.descAt(0x40000, 0, 0x4000, 4, NEXT, 2); // table has 2 entries
    drv.offer(0);
    expectBroken(vq, drv, 'NEXT_OUT_OF_RANGE', /next 2 >= indirect table length 2/);
  }
  {
    const { drv, vq } = setup();
    drv.desc(0, 0x40000, 48, INDIRECT);
    drv.descAt(0x40000, 0, 0x4000, 4, NEXT, 1);
    drv.descAt(0x40000, 1, 0x4000, 4, NEXT, 2);
    drv.descAt(0x40000, 2, 0x4000, 4, NEXT, 1);
    drv.offer(0);
    expectBroken(vq, drv, 'DESC_LOOP', /indirect table/);
  }
});

test('indirect table outside memory, or spanning two regions', () => {
  {
    const { drv, vq } = setup();
    drv.desc(0, 0x30000, 16, INDIRECT);
    drv.offer(0);
    expectBroken(vq, drv, 'ADDRESS_NOT_MAPPED', /indirect table \[0x30000, \+16\)/);
  }
  {
    const { drv, vq } = setup();
    drv.desc(0, 0xfff0, 32, INDIRECT);
    drv.offer(0);
    expectBroken(vq, drv, 'ADDRESS_NOT_MAPPED');
  }
  {
    const { drv, vq } = setup();
    drv.desc(0, 0x4ffff, 16, INDIRECT); // straddles the end of guest RAM
    drv.offer(0);
    expectBroken(vq, drv, 'ADDRESS_NOT_MAPPED');
  }
});

test('buffer addresses outside memory: gap, end of RAM, beyond 2^53, u64 max', () => {
  const cases: [bigint, number, RegExp][] = [
    [0x20000n, 16, /\[0x20000, \+16\)/],
    [0x1ff00n, 0x200, /\[0x1ff00, \+512\)/], // starts in R1, runs into the gap
    [0x4fff0n, 0x11, /\[0x4fff0, \+17\)/],
    [0x100000000n + 0x4000n, 4, /\[0x100004000, \+4\)/], // high half set: 4 GiB up, not the low 0x4000
    [1n << 53n, 4, /\[0x20000000000000, \+4\)/],
    [0xffffffffffffff00n, 0x10, /\[0xffffffffffffff00, \+16\)/],
  ];
  for (const [addr, len, pattern] of cases) {
    const { drv, vq } = setup();
    drv.desc(0, 0x4000, 4, NEXT, 1);
    drv.desc(1, addr, len, WRITE);
    drv.offer(0);
    expectBroken(vq, drv, 'ADDRESS_NOT_MAPPED', pattern);
  }
});

test('a readable descriptor after a writable one', () => {
  const { drv, vq } = setup();
  drv.desc(0, 0x4000, 4, WRITE | NEXT, 1);
  drv.desc(1, 0x4100, 4, 0);
  drv.offer(0);
  expectBroken(vq, drv, 'READABLE_AFTER_WRITABLE', /descriptor 1 is device-readable/);
});

test('more segments than the chain holds', () => {
  const { drv, vq } = setup();
  for (let i = 0; i < 5; i++) drv.desc(i, 0x4000 + i * 16, 16, i < 4 ? NEXT : 0, i + 1);
  drv.offer(0);
  expectBroken(vq, drv, 'TOO_MANY_SEGMENTS', /more than 4 readable segments/);
});

test('total chain length beyond u32', () => {
  // One 2 GiB region (lazily committed by the allocator; nothing here touches it).
  const layout = [{ gpa: 0, size: 0x10000, user: 0, host: 0x1000n }, { gpa: 0x100000000, size: 0x80000000, user: 0x100000000, host: 0x2000000n }];
  {
    const { drv, vq } = setup({}, layout);
    drv.desc(0, 0x100000000, 0x80000000, NEXT, 1);
    drv.desc(1, 0x100000000, 0x7fffffff, 0);
    drv.offer(0);
    const chain = new DescriptorChain(4);
    assert.equal(vq.pop(chain), true, vq.error?.message);
    assert.equal(chain.out.length, 0xffffffff);
  }
  {
    const { drv, vq } = setup({}, layout);
    drv.desc(0, 0x100000000, 0x80000000, NEXT, 1);
    drv.desc(1, 0x100000000, 0x80000000, 0);
    drv.offer(0);
    expectBroken(vq, drv, 'CHAIN_TOO_LONG', /total length 4294967296/);
  }
});

test('a broken queue does not affect another queue on the same memory', () => {
  const regions = makeRegions();
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  const ringB = { size: 8, descGpa: 0x40000, availGpa: 0x41000, usedGpa: 0x42000 };
  const a = new SplitVirtqueue(memory, { ...RING8, lastAvailIdx: 0, eventIdx: false, indirect: false });
  const b = new SplitVirtqueue(memory, { ...ringB, lastAvailIdx: 0, eventIdx: false, indirect: false });
  const da = new TestDriver(g, RING8);
  const db = new TestDriver(g, ringB);
  da.offer(9);
  db.desc(1, 0x4000, 4, 0);
  db.offer(1);
  const chain = new DescriptorChain(2);
  assert.equal(a.pop(chain), false);
  assert.equal(a.error?.code, 'HEAD_OUT_OF_RANGE');
  assert.equal(b.pop(chain), true);
  assert.equal(chain.head, 1);
  assert.equal(b.error, null);
});

test('in-flight requests of a guest-broken queue can still complete', () => {
  const { drv, vq } = setup();
  drv.desc(0, 0x4000, 4, WRITE);
  drv.offer(0);
  drv.offer(8);
  const chain = new DescriptorChain(2);
  assert.equal(vq.pop(chain), true);
  assert.equal(vq.pop(chain), false);
  assert.equal(vq.error?.code, 'HEAD_OUT_OF_RANGE');
  vq.pushUsed(0, 4);
  assert.equal(vq.flushUsed(), true);
  assert.equal(drv.usedIdx(), 1);
  assert.deepEqual(drv.usedElem(0), [0, 4]);
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
  const next = rng(0x5eed);
  const regions = makeRegions();
  const memory = makeMemory(regions);
  const g = new GuestAccess(regions);
  const chain = new DescriptorChain(16);
  const pick = (choices: number[]) => choices[next() % choices.length];
  let popped = 0;
  const codes = new Set<string>();
  for (let iter = 0; iter < 3000; iter++) {
    const drv = new TestDriver(g, RING8);
    // Descriptors with addresses near region edges, gaps and absurd values; lengths mostly small.
    for (let i = 0; i < 8; i++) {
      const base = pick([0x4000, 0xff00, 0x1ff00, 0x20000, 0x40000, 0x4ff00, 0x10000, 0]);
      const addr = next() % 8 === 0 ? (BigInt(next()) << 32n) | BigInt(next()) : BigInt(base + (next() % 0x200));
      const len = next() % 8 === 0 ? next() : next() % 0x300;
      const flags = next() % 8;
      drv.desc(i, addr, len, flags, next() % 10);
    }
    // Indirect table candidates in R2.
    for (let i = 0; i < 4; i++) drv.descAt(0x40800, i, BigInt(0x4000 + (next() % 0x400)), next() % 0x40, next() % 8, next() % 6);
    if (next() % 2 === 0) drv.desc(next() % 8, 0x40800, pick([64, 48, 20, 0, 4096]), 4);
    const vq = new SplitVirtqueue(memory, { ...RING8, lastAvailIdx: 0, eventIdx: next() % 2 === 0, indirect: next() % 4 !== 0 });
    const n = next() % 10;
    for (let k = 0; k < n; k++) drv.offer(next() % 9);
    for (let k = 0; k < 12; k++) {
      let ok = false;
      assert.doesNotThrow(() => {
        ok = vq.pop(chain);
      });
      if (!ok) break;
      popped++;
      for (const list of [chain.out, chain.in]) {
        let sum = 0;
        for (let s = 0; s < list.count; s++) {
          assert.ok(list.lengths[s] > 0);
          assert.ok(list.offsets[s] + list.lengths[s] <= list.bufs[s].length, 'segment inside its region');
          sum += list.lengths[s];
        }
        assert.equal(sum, list.length);
      }
    }
    if (vq.error) codes.add(vq.error.code);
  }
  // The generator must reach both good chains and a variety of failures, or it tests nothing.
  assert.ok(popped > 100, `popped ${popped}`);
  assert.ok(codes.size >= 8, [...codes].join(','));
});
