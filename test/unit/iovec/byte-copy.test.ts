import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyBytes } from '../../../src/iovec/byte-copy.ts';
import { SgList } from '../../../src/iovec/sg-list.ts';
import { GcWindow } from '../../../src/reactor/gc-window.ts';
import { mmapAnonymous, munmap, viewOf } from '../../../src/sys/memory.ts';

test('copyBytes copies the range between plain Uint8Arrays and views at an offset', () => {
  const src = new Uint8Array(64).map((_, i) => i);
  const backing = new Uint8Array(80);
  const dst = new Uint8Array(backing.buffer, 8, 64);
  copyBytes(src, 10, dst, 3, 20);
  assert.deepEqual([...dst.subarray(3, 23)], [...src.subarray(10, 30)]);
  assert.equal(dst[2], 0);
  assert.equal(dst[23], 0);
  assert.equal(backing[8 + 3], 10);
});

test('copyBytes refuses ranges outside either array instead of copying less', () => {
  const a = new Uint8Array(16);
  const b = new Uint8Array(16);
  assert.throws(() => copyBytes(a, 8, b, 0, 9), RangeError);
  assert.throws(() => copyBytes(a, 0, b, 8, 9), RangeError);
  assert.throws(() => copyBytes(a, -1, b, 0, 4), RangeError);
  assert.throws(() => copyBytes(a, 0, b, Number.NaN, 4), RangeError);
  copyBytes(a, 0, b, 0, 16);
});

test('SgList copies of 4 KiB allocate nothing (no view per copy)', () => {
  const guest = new Uint8Array(1 << 20);
  const disk = new Uint8Array(1 << 20).fill(7);
  const sg = new SgList(4);
  sg.push(guest, 4096, 2048);
  sg.push(guest, 65536, 2048);
  const rounds = 50_000;
  for (let i = 0; i < 50_000; i++) sg.copyIn(0, disk, (i & 63) * 4096, 4096); // warm up: optimized code allocates no heap numbers
  const w = new GcWindow();
  w.start();
  for (let i = 0; i < rounds; i++) {
    sg.copyIn(0, disk, (i & 63) * 4096, 4096);
    sg.copyOut(0, disk, (i & 63) * 4096, 4096);
  }
  const r = w.stop()!;
  assert.equal(guest[65536 + 2047], 7);
  // A view per segment copy would be ~100 bytes x 4 copies = ~400 bytes per round; the test's own
  // loop may leave a few bytes per round (measured 0-5, depending on when it gets optimized).
  assert.ok(r.allocatedBytes < 40 * rounds, `${r.allocatedBytes} bytes over ${rounds} rounds`);
});

test('copies from and to past 4 GiB of a 5 GiB mapping land at the right offsets (Buffer.copy wraps offsets at 2^32)', () => {
  const GiB = 2 ** 30;
  const len = 5 * GiB;
  // Untouched anonymous pages cost no memory; only the pages written below are faulted in.
  const addr = mmapAnonymous(len);
  try {
    const big = new Uint8Array(viewOf(addr, len));
    const src = new Uint8Array(8192);
    const dst = new Uint8Array(8192);
    // Repeated, so that V8 optimizes the copy into its fast call (which wrapped the target offset too).
    for (let rep = 0; rep < 2000; rep++) for (const off of [4 * GiB, 4 * GiB + 65536, 4 * GiB - 4096, 2 * GiB - 100, 5 * GiB - 8192]) {
      for (let i = 0; i < src.length; i++) src[i] = (off / 4096 + i * 7 + rep) & 0xff;
      copyBytes(src, 0, big, off, 8192);
      assert.equal(big[off], src[0], `write at ${off}`);
      assert.equal(big[off + 8191], src[8191], `write end at ${off}`);
      dst.fill(0);
      copyBytes(big, off, dst, 0, 8192);
      assert.deepEqual(dst, src, `read back at ${off}`);
    }
    assert.equal(big[65536], 0, 'nothing landed 4 GiB lower');
    assert.equal(big[4 * GiB + 65536], (2 ** 20 + 16 + 1999) & 0xff);
    assert.equal(big[65536], 0, 'nothing landed 4 GiB lower');
    // A copy inside the high part of the source, into the high part of the destination.
    copyBytes(big, 4 * GiB + 65536, big, 4 * GiB + 1024 * 1024, 8192);
    assert.equal(big[4 * GiB + 1024 * 1024], big[4 * GiB + 65536]);
  } finally {
    munmap(addr, len);
  }
});
