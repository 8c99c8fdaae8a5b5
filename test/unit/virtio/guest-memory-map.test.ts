import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { memfdCreate } from '../../../src/sys/memory.ts';
import { closeFd } from '../../../src/sys/fd.ts';
import { mapGuestMemory } from '../../../src/virtio/guest-memory-map.ts';
import { GuestMemoryError } from '../../../src/virtio/guest-memory-error.ts';
import { SplitVirtqueue } from '../../../src/virtio/split-virtqueue.ts';
import { DescriptorChain } from '../../../src/virtio/descriptor-chain.ts';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../../src/virtio/virtio-constants.ts';
import { GuestAccess, TestDriver } from './virtq-driver.ts';

/** How many mappings of memfd `name` this process has (from /proc/self/maps). */
function mappingsOf(name: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`/memfd:${name} `)).length;
}

test('regions map at mmapOffset of their fd and share memory with other mappings', () => {
  const fd = memfdCreate('vq-map-a', 3 * 4096);
  try {
    const a = mapGuestMemory([
      { guestPhysAddr: 0, size: 4096, userAddr: 0x7f0000000000, mmapOffset: 0, fd },
      { guestPhysAddr: 0x100000, size: 8192, userAddr: 0x7f0000100000, mmapOffset: 4096, fd },
    ]);
    const whole = mapGuestMemory([{ guestPhysAddr: 0, size: 3 * 4096, userAddr: 0, mmapOffset: 0, fd }]);
    assert.equal(mappingsOf('vq-map-a'), 3);
    const m = a.memory;
    assert.equal(m.count, 2);
    assert.equal(m.regions[1].bytes.length, 8192);
    assert.ok(m.regions[1].hostAddr > 0n);
    assert.equal(m.hostBases[1], Number(m.regions[1].hostAddr));
    m.regions[1].bytes[5] = 0xab;
    m.regions[0].bytes[4095] = 0xcd;
    assert.equal(whole.memory.regions[0].bytes[4096 + 5], 0xab);
    assert.equal(whole.memory.regions[0].bytes[4095], 0xcd);
    // Default (koffi) ring views start at the ring and alias the region.
    const v = m.ringView(0x100010, 8);
    assert.ok(v);
    assert.equal(v.byteOffset, 0);
    v[0] = 0x11;
    assert.equal(whole.memory.regions[0].bytes[4096 + 0x10], 0x11);
    assert.equal(m.userToGuestPhys(0x7f0000100000 + 0x40, 16), 0x100040);
    a.unmap();
    a.unmap(); // idempotent
    whole.unmap();
    assert.equal(mappingsOf('vq-map-a'), 0);
  } finally {
    closeFd(fd);
  }
});

test('a split virtqueue over mapped memory yields host addresses of the real mapping', () => {
  const fd = memfdCreate('vq-map-b', 0x20000);
  const mapped = mapGuestMemory([{ guestPhysAddr: 0x40000000, size: 0x20000, userAddr: 0x7f1000000000, mmapOffset: 0, fd }]);
  try {
    const m = mapped.memory;
    const ring = { size: 16, descGpa: 0x40000000, availGpa: 0x40001000, usedGpa: 0x40002000 };
    const drv = new TestDriver(new GuestAccess([...m.regions]), ring);
    drv.desc(4, 0x40010000, 32, VIRTQ_DESC_F_NEXT, 5);
    drv.desc(5, 0x40010100, 1, VIRTQ_DESC_F_WRITE);
    drv.offer(4);
    const vq = new SplitVirtqueue(m, { ...ring, lastAvailIdx: 0, eventIdx: true, indirect: true });
    const chain = new DescriptorChain(4);
    assert.equal(vq.pop(chain), true);
    assert.equal(chain.out.addrs[0], Number(m.regions[0].hostAddr) + 0x10000);
    assert.equal(chain.in.addrs[0], Number(m.regions[0].hostAddr) + 0x10100);
    vq.pushUsed(chain.head, 1);
    assert.equal(vq.flushUsed(), true);
    assert.equal(drv.usedIdx(), 1);
    assert.deepEqual(drv.usedElem(0), [4, 1]);
  } finally {
    mapped.unmap();
    closeFd(fd);
  }
});

test('refuses a region beyond the end of its file and unmaps what it had mapped', () => {
  const fd = memfdCreate('vq-map-c', 8192);
  try {
    assert.throws(
      () =>
        mapGuestMemory([
          { guestPhysAddr: 0, size: 4096, userAddr: 0, mmapOffset: 0, fd },
          { guestPhysAddr: 0x10000, size: 8192, userAddr: 0x10000, mmapOffset: 4096, fd }, // 4096 + 8192 > 8192
        ]),
      (e: unknown) => e instanceof GuestMemoryError && e.code === 'REGION_BEYOND_FILE' && /exceeds the file size 0x2000/.test(e.message),
    );
    assert.equal(mappingsOf('vq-map-c'), 0);
    // Overlapping regions are only found once both are mapped: those mappings go too.
    assert.throws(
      () =>
        mapGuestMemory([
          { guestPhysAddr: 0, size: 4096, userAddr: 0, mmapOffset: 0, fd },
          { guestPhysAddr: 0x800, size: 4096, userAddr: 0x10000, mmapOffset: 4096, fd },
        ]),
      (e: unknown) => e instanceof GuestMemoryError && e.code === 'REGION_OVERLAP',
    );
    assert.equal(mappingsOf('vq-map-c'), 0);
    assert.throws(
      () => mapGuestMemory([{ guestPhysAddr: 0, size: 4096, userAddr: 0, mmapOffset: 0, fd: 100000 }]),
      (e: unknown) => e instanceof GuestMemoryError && e.code === 'MAP_FAILED',
    );
    assert.throws(
      () => mapGuestMemory([{ guestPhysAddr: 0, size: 0, userAddr: 0, mmapOffset: 0, fd }]),
      (e: unknown) => e instanceof GuestMemoryError && e.code === 'REGION_BAD_FIELD',
    );
  } finally {
    closeFd(fd);
  }
});
