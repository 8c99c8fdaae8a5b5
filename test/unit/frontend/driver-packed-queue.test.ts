import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import { BufferList, DriverQueueError } from '../../../src/frontend/driver-queue.ts';
import { DriverPackedQueue } from '../../../src/frontend/driver-packed-queue.ts';
import { packedVringBase } from '../../../src/frontend/packed-ring-memory.ts';
import { eventfdDrain } from '../../../src/sys/eventfd.ts';
import { FakePackedDevice } from './fake-packed-device.ts';

const HI = 0x1_0000_0000;
// Flag values spelled out: NEXT 1, WRITE 2, INDIRECT 4, AVAIL 0x80, USED 0x8000.

function setup(size: number, indirectMax = 0): { arena: GuestMemoryArena; q: DriverPackedQueue; dev: FakePackedDevice } {
  const arena = new GuestMemoryArena([{ size: 1 << 20, guestPhysAddr: 0 }, { size: 1 << 20, guestPhysAddr: HI }]);
  const q = new DriverPackedQueue(arena, { size, indirectMax });
  return { arena, q, dev: new FakePackedDevice(arena, q) };
}

function lists(outs: [number, number][], ins: [number, number][]): [BufferList, BufferList] {
  const o = new BufferList(8);
  const i = new BufferList(8);
  for (const [g, l] of outs) o.push(g, l);
  for (const [g, l] of ins) i.push(g, l);
  return [o, i];
}

test('layout: 16-aligned descriptor ring, separate 4-aligned event areas, any size up to 32768', () => {
  const { arena, q } = setup(5);
  try {
    assert.equal(q.kind, 'packed');
    assert.equal(q.descGpa % 16, 0);
    assert.equal(q.driverAreaGpa % 4, 0);
    assert.equal(q.deviceAreaGpa % 4, 0);
    assert.notEqual(q.driverAreaGpa, q.descGpa + 16 * 5);
    assert.equal(q.initialVringBase, 0x80008000);
    assert.equal(packedVringBase(3, 0, 2, 1), 0x80020003);
    assert.deepEqual([q.numFree, q.nextAvailSlot, q.availWrapCounter, q.lastUsedSlot, q.usedWrapCounter], [5, 0, 1, 0, 1]);
    for (const size of [0, 32769, 1.5]) {
      assert.throws(() => new DriverPackedQueue(arena, { size }), (e: unknown) => e instanceof DriverQueueError && e.code === 'BAD_QUEUE_SIZE');
    }
  } finally {
    q.close();
    arena.close();
  }
});

test('a chain: every descriptor carries the id and its flags; the head becomes available only at publish', () => {
  const { arena, q } = setup(8);
  try {
    const [o, i] = lists([[0x1000, 16]], [[HI + 0x2000, 512], [0x3000, 1]]);
    assert.equal(q.add(o, i, 41), 0);
    const [o2, i2] = lists([[0x4000, 16]], [[0x5000, 1]]);
    assert.equal(q.add(o2, i2, 42), 1);
    const d = [0, 1, 2, 3, 4].map((k) => q.raw.readDescriptor(k));
    // Heads (slots 0 and 3) still show the zeroed ring; the tails are written.
    assert.deepEqual(d.map((x) => [x.flags, x.id]), [[0, 0], [0x83, 0], [0x82, 0], [0, 1], [0x82, 1]]);
    assert.deepEqual([d[0].addr, d[0].len, d[1].addr, d[1].len], [0x1000n, 16, BigInt(HI + 0x2000), 512]);
    q.publish();
    assert.equal(q.raw.readFlags(0), 0x81);
    assert.equal(q.raw.readFlags(3), 0x81);
    assert.deepEqual([q.numFree, q.inFlight, q.nextAvailSlot], [3, 2, 5]);
  } finally {
    q.close();
    arena.close();
  }
});

test('wrap: a chain crossing the end flips AVAIL/USED in its later slots; used slots skip by chain length', () => {
  const { arena, q, dev } = setup(4);
  try {
    const [o, i] = lists([[0x1000, 16], [0x1100, 8]], [[0x2000, 4]]);
    assert.equal(q.add(o, i, 1), 0);
    q.kick();
    assert.equal(dev.service(() => 4, false), 1);
    assert.equal(q.pollUsed(), 1);
    assert.deepEqual([q.completedTokens[0], q.completedLens[0], q.lastUsedSlot, q.usedWrapCounter], [1, 4, 3, 1]);
    // Slot 0 now holds the used descriptor (AVAIL = USED = 1, WRITE since data was written).
    assert.deepEqual(q.raw.readDescriptor(0), { addr: 0x1000n, len: 4, id: 0, flags: 0x8082 });
    // Slots 3 (lap 1) and 0 (lap 2): the second carries USED = 1, AVAIL = 0.
    const [o2, i2] = lists([[0x3000, 16]], [[0x3100, 1]]);
    assert.equal(q.add(o2, i2, 2), 0); // id 0 is free again
    q.publish();
    assert.deepEqual([q.raw.readFlags(3), q.raw.readFlags(0)], [0x81, 0x8002]);
    assert.deepEqual([q.nextAvailSlot, q.availWrapCounter], [1, 0]);
    assert.equal(dev.service(() => 1, false), 1);
    assert.equal(q.pollUsed(), 1);
    assert.deepEqual([q.completedTokens[0], q.lastUsedSlot, q.usedWrapCounter], [2, 1, 0]);
    // The device wrote its used descriptor at slot 3 with its wrap counter still 1.
    assert.equal(q.raw.readDescriptor(3).flags & 0x8080, 0x8080);
  } finally {
    q.close();
    arena.close();
  }
});

test('many laps with chains of 1-3 descriptors completed out of order: every token comes back once', () => {
  const { arena, q, dev } = setup(5, 4);
  try {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pending: number[] = [];
    const seen = new Set<number>();
    let next = 0;
    for (let round = 0; round < 400; round++) {
      for (;;) {
        const len = 1 + rnd(3);
        const ins: [number, number][] = [[0x8000 + 64 * (next % 100), 8]];
        const outs: [number, number][] = len > 1 ? Array.from({ length: len - 1 }, (_, k) => [0x1000 + 16 * k, 16] as [number, number]) : [];
        const [o, i] = lists(outs, ins);
        if (q.add(o, i, next, rnd(4) === 0) < 0) break;
        next++;
      }
      q.kick();
      dev.service((c) => {
        pending.push(c.head);
        return null;
      }, false);
      // Complete a random subset in random order.
      const k = 1 + rnd(pending.length);
      for (let j = 0; j < k; j++) dev.complete(pending.splice(rnd(pending.length), 1)[0], 8);
      const n = q.pollUsed();
      assert.equal(n, k);
      for (let j = 0; j < n; j++) {
        const t = q.completedTokens[j];
        assert.equal(seen.has(t), false, `token ${t} completed twice`);
        seen.add(t);
      }
    }
    assert.equal(seen.size + q.inFlight, next);
    assert.ok(next > 400);
    eventfdDrain(q.callFd);
  } finally {
    q.close();
    arena.close();
  }
});

test('indirect: one ring slot pointing at the id\'s table; table entries carry only WRITE', () => {
  const { arena, q, dev } = setup(4, 8);
  try {
    const [o, i] = lists([[0x1000, 16], [HI, 4096]], [[0x2000, 1]]);
    const id = q.add(o, i, 9, true);
    q.kick();
    const d = q.raw.readDescriptor(0);
    assert.deepEqual([d.len, d.id, d.flags], [48, id, 0x84]);
    assert.deepEqual(q.raw.readTable(Number(d.addr), 3).map((e) => [e.addr, e.len, e.id, e.flags]),
      [[0x1000n, 16, 0, 0], [BigInt(HI), 4096, 0, 0], [0x2000n, 1, 0, 2]]);
    assert.equal(q.numFree, 3);
    dev.service((c) => {
      assert.equal(c.indirect, true);
      assert.deepEqual(c.writable, [{ gpa: 0x2000, len: 1 }]);
      return 1;
    }, false);
    assert.equal(q.pollUsed(), 1);
    assert.equal(q.lastUsedSlot, 1);
    assert.throws(() => q.add(...lists(Array(9).fill([0x1000, 1]).slice(0, 8), [[0x2000, 1]]), 1, true),
      (e: unknown) => e instanceof DriverQueueError && e.code === 'CHAIN_TOO_LONG');
  } finally {
    q.close();
    arena.close();
  }
});

test('a full ring refuses with -1 until the device hands slots back', () => {
  const { arena, q, dev } = setup(4, 4);
  try {
    assert.equal(q.add(...lists([[0x1000, 16], [0x1100, 16]], [[0x2000, 1]]), 1), 0);
    assert.equal(q.add(...lists([[0x1000, 16]], [[0x2000, 1]]), 2), -1);
    assert.equal(q.add(...lists([[0x1000, 16]], [[0x2000, 1]]), 3, true), 1); // indirect needs one slot
    assert.equal(q.numFree, 0);
    q.kick();
    dev.service(() => 1, false);
    assert.equal(q.pollUsed(), 2);
    assert.equal(q.numFree, 4);
  } finally {
    q.close();
    arena.close();
  }
});

test('kick honours the device event suppression: ENABLE, DISABLE, and DESC with offset and wrap', () => {
  const { arena, q, dev } = setup(4);
  try {
    // One-descriptor buffers: one ring slot each.
    const one = (): number => q.add(...lists([], [[0x2000, 1]]), 0);
    one();
    assert.equal(q.kick(), true); // ENABLE (zeroed area)
    assert.equal(eventfdDrain(q.kickFd), 1);
    assert.equal(q.kick(), false); // nothing new
    q.raw.setDeviceEvent(0, 1); // DISABLE
    one();
    assert.equal(q.kick(), false);
    assert.equal(q.kicksSuppressed, 1);
    // Slots 0 and 1 used (lap 1). Ask for a kick when slot 3 of lap 1 is filled.
    q.raw.setDeviceEvent(3 | 0x8000, 2);
    one();
    assert.equal(q.kick(), false); // filled slot 2
    one();
    assert.equal(q.kick(), true); // filled slot 3
    dev.service(() => 1, false);
    assert.equal(q.pollUsed(), 4);
    // Next lap (wrap 0): slot 0 wrap 0 is what the device waits for.
    q.raw.setDeviceEvent(1, 2); // slot 1, wrap 0
    one();
    assert.equal(q.kick(), false); // slot 0
    one();
    assert.equal(q.kick(), true); // slot 1
    // An event naming a slot of the previous lap that is behind us: no kick.
    q.raw.setDeviceEvent(0 | 0x8000, 2);
    one();
    assert.equal(q.kick(), false);
    assert.equal(eventfdDrain(q.kickFd), 2);
    assert.deepEqual([q.kicks, q.kicksSuppressed], [3, 4]);
  } finally {
    q.close();
    arena.close();
  }
});

test('calls: DISABLE, ENABLE, and with EVENT_IDX DESC at the next used slot; enableCalls reports pending work', () => {
  const { arena, q, dev } = setup(4);
  try {
    q.disableCalls();
    assert.deepEqual(q.raw.driverEvent, { offWrap: 0, flags: 1 });
    assert.equal(q.enableCalls(), false);
    assert.deepEqual(q.raw.driverEvent, { offWrap: 0, flags: 0 });
    q.eventIdx = true;
    for (let k = 0; k < 3; k++) q.add(...lists([], [[0x2000, 1]]), k);
    q.kick();
    dev.service(() => 1, false);
    assert.equal(q.enableCalls(), true); // three used descriptors wait
    assert.deepEqual(q.raw.driverEvent, { offWrap: 0x8000, flags: 2 });
    assert.equal(q.pollUsed(), 3);
    assert.deepEqual(q.raw.driverEvent, { offWrap: 0x8003, flags: 2 });
    q.add(...lists([], [[0x2000, 1]]), 3);
    q.add(...lists([], [[0x2000, 1]]), 4);
    q.kick();
    dev.service(() => 1, false);
    assert.equal(q.pollUsed(), 2);
    assert.deepEqual(q.raw.driverEvent, { offWrap: 0x0001, flags: 2 }); // slot 1, wrap 0
  } finally {
    q.close();
    arena.close();
  }
});

test('a lying device breaks the queue: unknown id, too long a length, a used descriptor out of nowhere', () => {
  for (const [make, code] of [
    [(q: DriverPackedQueue) => q.raw.markUsed(0, 3, 1, 1), 'BAD_USED_ID'],
    [(q: DriverPackedQueue) => q.raw.markUsed(0, 0, 2, 1), 'USED_LEN_TOO_LARGE'],
    [(q: DriverPackedQueue) => q.raw.markUsed(0, 0xffff, 0, 1), 'BAD_USED_ID'],
  ] as const) {
    const { arena, q } = setup(4);
    try {
      q.add(...lists([[0x1000, 16]], [[0x2000, 1]]), 0);
      q.kick();
      make(q);
      assert.throws(() => q.pollUsed(), (e: unknown) => e instanceof DriverQueueError && e.code === code);
      assert.equal(q.error?.code, code);
      assert.throws(() => q.add(...lists([[0x1000, 16]], [[0x2000, 1]]), 1), (e: unknown) => e instanceof DriverQueueError && e.code === code);
    } finally {
      q.close();
      arena.close();
    }
  }
  const { arena, q } = setup(4);
  try {
    q.raw.markUsed(0, 0, 0, 1); // nothing in flight
    assert.throws(() => q.pollUsed(), (e: unknown) => e instanceof DriverQueueError && e.code === 'BAD_USED_ID');
  } finally {
    q.close();
    arena.close();
  }
});
