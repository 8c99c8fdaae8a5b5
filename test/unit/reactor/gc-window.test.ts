// GcWindow counts collections and allocation of a thread that never returns to its event loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GcWindow } from '../../../src/reactor/gc-window.ts';

test('a synchronous loop allocating 64 MiB: collections counted, allocation measured, no event-loop turn needed', () => {
  const w = new GcWindow();
  assert.equal(w.stop(), null, 'no window started');
  w.start();
  assert.equal(w.running, true);
  let keep = 0;
  for (let i = 0; i < 65536; i++) keep += new Uint8Array(new ArrayBuffer(1024)).length + [i, i + 1, i + 2].length;
  const r = w.stop()!;
  assert.equal(w.running, false);
  assert.ok(keep > 0);
  assert.ok(r.scavenges >= 1, `scavenges ${r.scavenges}`);
  assert.equal(r.collections, r.scavenges + r.markCompacts);
  assert.ok(r.pauseMs > 0);
  // 65536 small objects (array, typed-array wrapper) at least; the 1 KiB backing stores are
  // off-heap, so only a lower bound of the on-heap part is certain.
  assert.ok(r.allocatedBytes >= 65536 * 32, `allocated ${r.allocatedBytes}`);
  assert.equal(r.heapGrowthBytes, r.heapUsedEnd - r.heapUsedStart);
  assert.ok(r.seconds > 0);
});

// Small integers only: the interpreter boxes doubles (that would allocate until optimized).
const ring = new Int32Array(1024);
function spin(n: number): void {
  for (let i = 0; i < n; i++) ring[i & 1023] = (ring[i & 1023] + i) & 0xffff;
}

test('a window over a loop that allocates nothing shows no collection and about nothing allocated', () => {
  const w = new GcWindow();
  // the first rounds warm up (compilation allocates on the heap); the last is measured
  let r = null;
  for (let round = 0; round < 4; round++) {
    w.start();
    spin(2_000_000);
    r = w.stop()!;
  }
  assert.equal(r!.collections, 0);
  // the window's own bookkeeping (profiler object, heap statistics) is under 2 KiB
  assert.ok(r!.allocatedBytes < 4096, `allocated ${r!.allocatedBytes}`);
});
