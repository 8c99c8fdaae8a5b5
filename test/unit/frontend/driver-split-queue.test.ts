import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import { BufferList, DriverQueueError, DriverSplitQueue } from '../../../src/frontend/driver-split-queue.ts';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_USED_F_NO_NOTIFY } from '../../../src/frontend/split-ring-memory.ts';
import { eventfdDrain, eventfdSignal } from '../../../src/sys/eventfd.ts';

const HI = 0x1_0000_0000; // region 1's GPA: descriptor addresses need the high word

function setup(size = 8, indirectMax = 0): { arena: GuestMemoryArena; q: DriverSplitQueue } {
  const arena = new GuestMemoryArena([{ size: 1 << 20, guestPhysAddr: 0 }, { size: 1 << 20, guestPhysAddr: HI }]);
  const q = new DriverSplitQueue(arena, { size, indirectMax });
  return { arena, q };
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

test('ring parts are separately allocated and aligned as the spec requires', () => {
  const { arena, q } = setup(8);
  try {
    assert.equal(q.descGpa % 16, 0);
    assert.equal(q.availGpa % 2, 0);
    assert.equal(q.usedGpa % 4, 0);
    // Not the legacy contiguous layout: avail does not start right after the table.
    assert.notEqual(q.availGpa, q.descGpa + 16 * 8);
    assert.equal(q.numFree, 8);
  } finally {
    q.close();
    arena.close();
  }
});

test('add() writes the chain, the avail entry, and publishes only on kick', () => {
  const { arena, q } = setup(8);
  try {
    const out = new BufferList(4).push(0x1000, 51);
    const inb = new BufferList(4).push(0x2000, 108).push(HI + 0x3000, 4096);
    const head = q.add(out, inb, 77);
    assert.equal(head, 0);
    assert.equal(q.numFree, 5);
    // Descriptor 0: addr 0x1000, len 51, NEXT, next 1.
    assert.equal(hex(arena.bytesAt(q.descGpa, 16)), '0010000000000000' + '33000000' + '0100' + '0100');
    // Descriptor 1: addr 0x2000, len 108, NEXT|WRITE, next 2.
    assert.equal(hex(arena.bytesAt(q.descGpa + 16, 16)), '0020000000000000' + '6c000000' + '0300' + '0200');
    // Descriptor 2: addr 0x1_0000_3000, len 4096, WRITE, next 0.
    assert.equal(hex(arena.bytesAt(q.descGpa + 32, 16)), '0030000001000000' + '00100000' + '0200' + '0000');
    // avail: flags 0, idx still 0, ring[0] = head 0.
    assert.equal(hex(arena.bytesAt(q.availGpa, 6)), '0000' + '0000' + '0000');
    assert.equal(q.raw.availIdx, 0);
    assert.equal(q.kick(), true);
    assert.equal(q.raw.availIdx, 1);
    assert.equal(eventfdDrain(q.kickFd), 1);
    // The next chain takes the next free descriptors.
    const h2 = q.add(new BufferList(1).push(0x5000, 10), new BufferList(1), 78);
    assert.equal(h2, 3);
    assert.equal(q.raw.readAvailEntry(1), 3);
    assert.deepEqual(q.raw.readDescriptor(3), { addr: 0x5000n, len: 10, flags: 0, next: 0 });
  } finally {
    q.close();
    arena.close();
  }
});

test('pollUsed returns tokens and lengths and recycles descriptors', () => {
  const { arena, q } = setup(4);
  try {
    const a = new BufferList(2).push(0x1000, 16);
    const b = new BufferList(2).push(0x2000, 100);
    assert.equal(q.add(a, b, 10), 0);
    assert.equal(q.add(a, b, 11), 2);
    assert.equal(q.add(a, b, 12), -1); // no room: 4 descriptors in use
    q.kick();
    assert.equal(q.pollUsed(), 0);
    // Device completes head 2 first with 60 bytes, then head 0 with 100.
    q.raw.writeUsedEntry(0, 2, 60);
    q.raw.writeUsedEntry(1, 0, 100);
    q.raw.usedIdx = 2;
    assert.equal(q.pollUsed(), 2);
    assert.deepEqual([q.completedTokens[0], q.completedLens[0], q.completedTokens[1], q.completedLens[1]], [11, 60, 10, 100]);
    assert.equal(q.numFree, 4);
    assert.equal(q.inFlight, 0);
    // The most recently freed chain (head 0) is reused first.
    assert.equal(q.add(a, b, 13), 0);
  } finally {
    q.close();
    arena.close();
  }
});

test('used ring written by a buggy device is caught with typed errors', () => {
  const cases: [string, (q: DriverSplitQueue) => void][] = [
    ['BAD_USED_ID', (q) => { q.raw.writeUsedEntry(0, 5, 0); q.raw.usedIdx = 1; }],
    ['BAD_USED_ID', (q) => { q.raw.writeUsedEntry(0, 1, 0); q.raw.usedIdx = 1; }], // descriptor 1 is not a head
    ['USED_LEN_TOO_LARGE', (q) => { q.raw.writeUsedEntry(0, 0, 101); q.raw.usedIdx = 1; }],
    ['USED_IDX_JUMP', (q) => { q.raw.usedIdx = 2; }],
  ];
  for (const [code, corrupt] of cases) {
    const { arena, q } = setup(4);
    try {
      q.add(new BufferList(1).push(0x1000, 16), new BufferList(1).push(0x2000, 100), 1);
      q.kick();
      corrupt(q);
      assert.throws(() => q.pollUsed(), (e: unknown) => e instanceof DriverQueueError && e.code === code, code);
      // The queue stays broken.
      assert.throws(() => q.pollUsed(), (e: unknown) => e instanceof DriverQueueError && e.code === code);
    } finally {
      q.close();
      arena.close();
    }
  }
});

test('indirect chains: one ring descriptor pointing at a table laid out per the spec', () => {
  const { arena, q } = setup(8, 4);
  try {
    const out = new BufferList(2).push(0x1000, 19).push(0x1100, 32);
    const inb = new BufferList(2).push(HI + 0x40, 108);
    const head = q.add(out, inb, 5, true);
    assert.equal(head, 0);
    assert.equal(q.numFree, 7);
    const d = q.raw.readDescriptor(0);
    assert.equal(d.flags, VIRTQ_DESC_F_INDIRECT);
    assert.equal(d.len, 48);
    assert.equal(d.next, 0);
    const table = arena.bytesAt(Number(d.addr), 48);
    assert.equal(hex(table),
      '0010000000000000' + '13000000' + '0100' + '0100' +
      '0011000000000000' + '20000000' + '0100' + '0200' +
      '4000000001000000' + '6c000000' + '0200' + '0000');
    assert.deepEqual(q.raw.readTable(Number(d.addr), 3).map((x) => x.flags), [VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE]);
    assert.throws(() => q.add(new BufferList(5).push(1, 1).push(1, 1).push(1, 1).push(1, 1).push(1, 1), new BufferList(1), 6, true),
      (e: unknown) => e instanceof DriverQueueError && e.code === 'CHAIN_TOO_LONG');
  } finally {
    q.close();
    arena.close();
  }
});

test('kick honours NO_NOTIFY without EVENT_IDX', () => {
  const { arena, q } = setup(8);
  try {
    const b = new BufferList(1).push(0x1000, 8);
    q.raw.usedFlags = VIRTQ_USED_F_NO_NOTIFY;
    q.add(b, new BufferList(1), 1);
    assert.equal(q.kick(), false);
    assert.equal(q.raw.availIdx, 1); // published all the same
    assert.equal(eventfdDrain(q.kickFd), 0);
    q.raw.usedFlags = 0;
    q.add(b, new BufferList(1), 2);
    assert.equal(q.kick(), true);
    assert.equal(eventfdDrain(q.kickFd), 1);
    assert.equal(q.kick(), false); // nothing new
  } finally {
    q.close();
    arena.close();
  }
});

test('kick with EVENT_IDX notifies only when avail idx passes avail_event', () => {
  const { arena, q } = setup(8);
  try {
    q.eventIdx = true;
    const b = new BufferList(1).push(0x1000, 8);
    const e = new BufferList(1);
    q.raw.availEvent = 0; // device wants a kick once entry 0 is published
    q.add(b, e, 1);
    assert.equal(q.kick(), true); // 0 -> 1 passes 0
    q.raw.availEvent = 3; // device will look again after entry 3
    q.add(b, e, 2);
    assert.equal(q.kick(), false); // 1 -> 2
    q.add(b, e, 3);
    assert.equal(q.kick(), false); // 2 -> 3
    q.add(b, e, 4);
    q.add(b, e, 5);
    assert.equal(q.kick(), true); // 3 -> 5 passes 3
    assert.equal(eventfdDrain(q.kickFd), 2);
    assert.equal(q.kicksSuppressed, 2);
  } finally {
    q.close();
    arena.close();
  }
});

test('call suppression fields and used_event with EVENT_IDX', () => {
  const { arena, q } = setup(8);
  try {
    q.disableCalls();
    assert.equal(q.raw.availFlags, 1);
    assert.equal(q.enableCalls(), false);
    assert.equal(q.raw.availFlags, 0);
    q.eventIdx = true;
    q.add(new BufferList(1).push(0x1000, 8), new BufferList(1), 1);
    q.kick();
    q.raw.writeUsedEntry(0, 0, 0);
    q.raw.usedIdx = 1;
    assert.equal(q.pollUsed(), 1);
    assert.equal(q.raw.usedEvent, 1); // interrupt me after the next completion
    q.disableCalls();
    assert.equal(q.raw.usedEvent, 0); // lastUsed - 1: already passed
    assert.equal(q.raw.availFlags, 0);
  } finally {
    q.close();
    arena.close();
  }
});

test('waitForCall resolves on the call eventfd and times out otherwise', async () => {
  const { arena, q } = setup(8);
  try {
    assert.equal(await q.waitForCall(20), false);
    setTimeout(() => eventfdSignal(q.callFd), 5);
    assert.equal(await q.waitForCall(2000), true);
    eventfdSignal(q.callFd);
    assert.equal(await q.waitForCall(0), true); // already pending
  } finally {
    q.close();
    arena.close();
  }
});

test('raw access writes hostile values the driver would never produce', () => {
  const { arena, q } = setup(4);
  try {
    q.raw.writeDescriptor(3, 0xffff_ffff_ffff_f000n, 0xffffffff, 0xffff, 9);
    assert.equal(hex(arena.bytesAt(q.descGpa + 48, 16)), '00f0ffffffffffff' + 'ffffffff' + 'ffff' + '0900');
    q.raw.writeAvailEntry(0, 7);
    q.raw.availIdx = 0x1234;
    assert.equal(hex(arena.bytesAt(q.availGpa, 6)), '0000' + '3412' + '0700');
    assert.throws(() => q.raw.writeDescriptor(4, 0, 0, 0, 0), (e: unknown) => (e as { code?: string }).code === 'BAD_SLOT');
  } finally {
    q.close();
    arena.close();
  }
});
