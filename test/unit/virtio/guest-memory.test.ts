import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory, type MappedRegion } from '../../../src/virtio/guest-memory.ts';
import { GuestMemoryError } from '../../../src/virtio/guest-memory-error.ts';
import { makeMemory, makeRegions } from './virtq-driver.ts';

function region(gpa: number, size: number, user = 0x100000 + gpa, host = 0x1000n): MappedRegion {
  return { guestPhysAddr: gpa, size, userAddr: user, hostAddr: host, bytes: new Uint8Array(size) };
}

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof GuestMemoryError && e.code === code);
}

test('constructor refuses overlapping, empty, mis-sized and overflowing regions', () => {
  throwsCode(() => new GuestMemory([region(0x1000, 0x1000), region(0x1fff, 0x10)]), 'REGION_OVERLAP');
  // Overlap is found whatever the input order.
  throwsCode(() => new GuestMemory([region(0x8000, 0x1000), region(0x0, 0x1000), region(0x7000, 0x1001)]), 'REGION_OVERLAP');
  throwsCode(() => new GuestMemory([{ ...region(0, 16), size: 0, bytes: new Uint8Array(0) }]), 'REGION_EMPTY');
  throwsCode(() => new GuestMemory([{ ...region(0, 16), bytes: new Uint8Array(15) }]), 'REGION_SIZE_MISMATCH');
  throwsCode(() => new GuestMemory([{ ...region(0, 16), guestPhysAddr: Number.MAX_SAFE_INTEGER - 8 }]), 'REGION_OVERFLOW');
  throwsCode(() => new GuestMemory([{ ...region(0, 16), userAddr: Number.MAX_SAFE_INTEGER - 8 }]), 'REGION_OVERFLOW');
  throwsCode(() => new GuestMemory([{ ...region(0, 16), hostAddr: 1n << 53n }]), 'REGION_OVERFLOW');
  throwsCode(() => new GuestMemory([{ ...region(0, 16), guestPhysAddr: -4096 }]), 'REGION_BAD_FIELD');
  throwsCode(() => new GuestMemory([{ ...region(0, 16), guestPhysAddr: 0.5 }]), 'REGION_BAD_FIELD');
  throwsCode(() => new GuestMemory([{ ...region(0, 16), hostAddr: -1n }]), 'REGION_BAD_FIELD');
  // Adjacent (touching) regions are fine.
  const m = new GuestMemory([region(0x1000, 0x1000), region(0x2000, 0x1000)]);
  assert.equal(m.count, 2);
});

test('findRegion / regionAt: whole containment only, gaps and bad numbers give -1', () => {
  const m = makeMemory(makeRegions());
  assert.equal(m.findRegion(0x0, 0x10000), 0);
  assert.equal(m.findRegion(0xfff0, 0x10), 0);
  assert.equal(m.findRegion(0xfff0, 0x11), -1); // spans into the adjacent R1: not one region
  assert.equal(m.findRegion(0x10000, 1), 1);
  assert.equal(m.findRegion(0x20000, 1), -1); // gap
  assert.equal(m.findRegion(0x4ffff, 1), 2);
  assert.equal(m.findRegion(0x4ffff, 2), -1);
  assert.equal(m.findRegion(0x50000, 0), -1);
  assert.equal(m.findRegion(-1, 1), -1);
  assert.equal(m.findRegion(Number.NaN, 1), -1);
  assert.equal(m.findRegion(0x40000, -1), -1);
  assert.equal(m.findRegion(0x40000, Number.NaN), -1);
  assert.equal(m.regionAt(0x1ffff), 1);
  assert.equal(m.regionAt(0x3ffff), -1);
  // The last-hit cache must not return a stale answer.
  assert.equal(m.regionAt(0x40000), 2);
  assert.equal(m.regionAt(0x5), 0);
  assert.equal(m.regionAt(0x40005), 2);
  assert.equal(new GuestMemory([]).findRegion(0, 1), -1);
});

test('tables expose starts, ends and host bases per region', () => {
  const m = makeMemory(makeRegions());
  assert.deepEqual([...m.starts], [0x0, 0x10000, 0x40000]);
  assert.deepEqual([...m.ends], [0x10000, 0x20000, 0x50000]);
  assert.deepEqual([...m.hostBases], [0x555500000000, 0x555600000000, 0x555700000000]);
});

test('userToGuestPhys translates front-end user addresses within one region', () => {
  const m = makeMemory(makeRegions());
  assert.equal(m.userToGuestPhys(0x7f0000000000 + 0x1000, 0x100), 0x1000);
  assert.equal(m.userToGuestPhys(0x7f0010000000 + 0x20, 8), 0x10020);
  assert.equal(m.userToGuestPhys(0x7f0020000000 + 0xfff8, 8), 0x4fff8);
  assert.equal(m.userToGuestPhys(0x7f0020000000 + 0xfff8, 9), -1);
  assert.equal(m.userToGuestPhys(0x7f0030000000, 1), -1);
  assert.equal(m.userToGuestPhys(0x7f0000000000 - 1, 1), -1);
});

test('ringView returns exactly the range, sharing memory with the region', () => {
  const regions = makeRegions();
  const m = makeMemory(regions);
  const v = m.ringView(0x40100, 6);
  assert.ok(v);
  assert.equal(v.length, 6);
  v[0] = 0xaa;
  v[5] = 0xbb;
  assert.equal(regions[2].bytes[0x100], 0xaa);
  assert.equal(regions[2].bytes[0x105], 0xbb);
  assert.equal(m.ringView(0xfffc, 8), null);
  assert.equal(m.ringView(0x30000, 8), null);
});

test('ringView refuses a view maker that returns the wrong length', () => {
  const regions = makeRegions();
  const m = new GuestMemory(regions, { makeView: (r) => r.bytes.subarray(0, 4) });
  assert.throws(() => m.ringView(0x100, 8), RangeError);
});
