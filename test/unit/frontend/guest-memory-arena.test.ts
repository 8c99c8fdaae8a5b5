import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArenaError, DEFAULT_USER_ADDR_OFFSET, GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import { mmapFd, munmap, viewOf } from '../../../src/sys/memory.ts';
import { fdSize } from '../../../src/sys/fd.ts';

const MiB = 1 << 20;

test('default arena: two regions with a GPA gap and user addresses distinct from GPAs', () => {
  const a = new GuestMemoryArena();
  try {
    assert.equal(a.regions.length, 2);
    const [r0, r1] = a.regions;
    assert.equal(r0.guestPhysAddr, 0);
    assert.equal(r1.guestPhysAddr, 0x1_0000_0000);
    assert.equal(r0.userAddr, DEFAULT_USER_ADDR_OFFSET);
    assert.equal(r1.userAddr, 0x1_0000_0000 + DEFAULT_USER_ADDR_OFFSET + 2 ** 40);
    assert.equal(a.gpaToUser(0x1234), DEFAULT_USER_ADDR_OFFSET + 0x1234);
    assert.equal(a.userToGpa(r1.userAddr + 0x10), 0x1_0000_0010);
    assert.throws(() => a.gpaToUser(16 * MiB + 1), (e: unknown) => e instanceof ArenaError && e.code === 'OUT_OF_RANGE');
    assert.throws(() => a.userToGpa(0x1234), (e: unknown) => e instanceof ArenaError && e.code === 'OUT_OF_RANGE');
  } finally {
    a.close();
  }
});

test('bytesAt reads and writes the memfd the back-end maps, honouring mmapOffset', () => {
  const a = new GuestMemoryArena([{ size: MiB, guestPhysAddr: 0x10_0000, mmapOffset: 8192, userAddr: 0x5000_0000 }]);
  try {
    const r = a.regions[0];
    assert.equal(fdSize(r.fd), MiB + 8192);
    a.bytesAt(0x10_0000 + 5, 3).set([0xaa, 0xbb, 0xcc]);
    // What a back-end sees: mmap(fd, size + mmap_offset) and use from mmap_offset.
    const addr = mmapFd(r.fd, MiB + 8192);
    const seen = new Uint8Array(viewOf(addr, MiB + 8192));
    assert.deepEqual([...seen.subarray(8192 + 5, 8192 + 8)], [0xaa, 0xbb, 0xcc]);
    assert.equal(seen[5], 0);
    munmap(addr, MiB + 8192);
    assert.throws(() => a.bytesAt(0x10_0000 + MiB - 2, 4), (e: unknown) => e instanceof ArenaError && e.code === 'OUT_OF_RANGE');
    assert.throws(() => a.bytesAt(0x0, 1), (e: unknown) => e instanceof ArenaError && e.code === 'OUT_OF_RANGE');
  } finally {
    a.close();
  }
});

test('allocator aligns, stays in its region and reports exhaustion', () => {
  const a = new GuestMemoryArena([{ size: 8192, guestPhysAddr: 0x2000 }, { size: 4096, guestPhysAddr: 0x20_0000 }]);
  try {
    assert.equal(a.alloc(3, 1), 0x2000);
    assert.equal(a.alloc(10, 16), 0x2010);
    assert.equal(a.alloc(1, 4096), 0x3000);
    assert.equal(a.alloc(100, 8, 1), 0x20_0000);
    assert.equal(a.alloc(8, 8, 1), 0x20_0068);
    const g = a.allocFilled(4, 0xee, 4, 1);
    assert.equal(g, 0x20_0070);
    assert.deepEqual([...a.bytesAt(g, 4)], [0xee, 0xee, 0xee, 0xee]);
    assert.throws(() => a.alloc(4096, 16, 1), (e: unknown) => e instanceof ArenaError && e.code === 'OUT_OF_SPACE');
    assert.throws(() => a.alloc(1, 3), (e: unknown) => e instanceof ArenaError && e.code === 'BAD_ALIGNMENT');
    assert.throws(() => a.alloc(1, 1, 5), (e: unknown) => e instanceof ArenaError && e.code === 'OUT_OF_RANGE');
  } finally {
    a.close();
  }
});

test('overlapping or misaligned region specs are refused', () => {
  assert.throws(() => new GuestMemoryArena([{ size: 8192, guestPhysAddr: 0 }, { size: 4096, guestPhysAddr: 4096 }]),
    (e: unknown) => e instanceof ArenaError && e.code === 'REGIONS_OVERLAP');
  assert.throws(() => new GuestMemoryArena([{ size: 4096, guestPhysAddr: 0, userAddr: 0x1000 }, { size: 4096, guestPhysAddr: 0x10000, userAddr: 0x1000 }]),
    (e: unknown) => e instanceof ArenaError && e.code === 'REGIONS_OVERLAP');
  assert.throws(() => new GuestMemoryArena([{ size: 1000, guestPhysAddr: 0 }]), (e: unknown) => e instanceof ArenaError && e.code === 'BAD_REGION_SPEC');
  assert.throws(() => new GuestMemoryArena([{ size: 4096, guestPhysAddr: 100 }]), (e: unknown) => e instanceof ArenaError && e.code === 'BAD_REGION_SPEC');
});

test('regions can be added and removed (ADD_MEM_REG / REM_MEM_REG)', () => {
  const a = new GuestMemoryArena([{ size: 4096, guestPhysAddr: 0 }]);
  try {
    const r = a.addRegion({ size: 4096, guestPhysAddr: 0x8000_0000 });
    assert.equal(a.regions.length, 2);
    a.bytesAt(0x8000_0000, 1)[0] = 7;
    a.removeRegion(r);
    assert.equal(a.regions.length, 1);
    assert.throws(() => a.bytesAt(0x8000_0000, 1), (e: unknown) => e instanceof ArenaError && e.code === 'OUT_OF_RANGE');
  } finally {
    a.close();
  }
});
