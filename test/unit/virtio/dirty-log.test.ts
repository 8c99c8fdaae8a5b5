// The dirty-page log's bitmap: page math at page and byte edges, ranges across many bytes, the end
// of the log, and two threads ORing bits of the same bytes at once without losing any.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { DirtyLog, LOG_PAGE_SIZE } from '../../../src/virtio/dirty-log.ts';

const P = LOG_PAGE_SIZE;

test('a range marks exactly the pages it touches', () => {
  const cases: [number, number, number[]][] = [
    [0, 1, [0]],
    [0, P, [0]],
    [P - 1, 1, [0]],
    [P - 1, 2, [0, 1]],
    [P, P, [1]],
    [7 * P + 100, 2 * P, [7, 8, 9]],
    [3 * P, 0, []],
    [5 * P + 1, 10 * P, [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]],
    [16 * P, 8 * P, [16, 17, 18, 19, 20, 21, 22, 23]],
  ];
  for (const [gpa, len, pages] of cases) {
    const log = new DirtyLog(new Uint8Array(8));
    log.mark(gpa, len);
    assert.deepEqual(log.dirtyPages(), pages, `mark(${gpa}, ${len})`);
  }
});

test('long ranges fill whole bytes; marks accumulate; other bits are untouched', () => {
  const log = new DirtyLog(new Uint8Array(64));
  log.mark(3 * P, 300 * P);
  const pages = log.dirtyPages();
  assert.equal(pages.length, 300);
  assert.equal(pages[0], 3);
  assert.equal(pages[299], 302);
  assert.equal(log.bytes[0], 0b11111000);
  assert.equal(log.bytes[20], 0xff);
  assert.equal(log.bytes[37], 0b01111111);
  log.mark(400 * P, 1);
  assert.equal(log.isDirty(400), true);
  assert.equal(log.isDirty(399), false);
  assert.equal(log.dirtyPages().length, 301);
});

test('addresses above 4 GiB, and ranges past the end of the log', () => {
  // A log for 16 GiB of guest memory.
  const log = new DirtyLog(new Uint8Array((16 * 2 ** 30) / P / 8));
  const gpa = 5 * 2 ** 30 + 3 * P + 17;
  log.mark(gpa, 100);
  assert.deepEqual(log.dirtyPages(), [Math.floor(gpa / P)]);
  log.mark(16 * 2 ** 30 - P, 2 * P);
  assert.equal(log.isDirty(log.pages - 1), true);
  assert.equal(log.outOfRange, 1);
  log.mark(17 * 2 ** 30, P);
  assert.equal(log.outOfRange, 2);
  assert.equal(log.dirtyPages().length, 2);
  // Nonsense is ignored, not thrown.
  log.mark(-5, 10);
  log.mark(0, -1);
  log.mark(Number.NaN, 4);
  assert.equal(log.dirtyPages().length, 2);
});

test('two threads marking interleaved pages of the same bytes at once lose no bit', async () => {
  // Rounds over a 64-byte log: thread 0 marks the even pages, thread 1 the odd ones, each page
  // once per round, both walking the same bytes in step between barriers; then thread 0 counts
  // the bytes that lost a bit and clears the log. A plain read-modify-write loses bits here.
  const log = new SharedArrayBuffer(64);
  const bar = new SharedArrayBuffer(8);
  const url = new URL('../../../src/virtio/dirty-log.ts', import.meta.url).href;
  const code = `
    import { workerData, parentPort } from 'node:worker_threads';
    const { DirtyLog } = await import(workerData.url);
    const log = new DirtyLog(new Uint8Array(workerData.log));
    const bar = new Int32Array(workerData.bar);
    const barrier = () => {
      const g = Atomics.load(bar, 1);
      if (Atomics.add(bar, 0, 1) === 1) { Atomics.store(bar, 0, 0); Atomics.add(bar, 1, 1); Atomics.notify(bar, 1); return; }
      // Spin (both threads leave the barrier together), then sleep if the other one is descheduled.
      for (let k = 0; Atomics.load(bar, 1) === g; k++) if (k > 20000) Atomics.wait(bar, 1, g, 1);
    };
    let lost = 0;
    for (let r = 0; r < workerData.rounds; r++) {
      barrier();
      for (let n = workerData.parity; n < log.pages; n += 2) log.mark(n * 4096, 1);
      barrier();
      if (workerData.parity === 0) {
        for (let i = 0; i < log.bytes.length; i++) if (log.bytes[i] !== 0xff) lost++;
        log.bytes.fill(0);
      }
    }
    parentPort.postMessage(lost);
  `;
  const run = (parity: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: { log, bar, parity, url, rounds: 2000 } });
      w.once('message', (m: number) => resolve(m));
      w.once('error', reject);
    });
  const [lost] = await Promise.all([run(0), run(1)]);
  assert.equal(lost, 0, `${lost} byte-rounds lost a bit`);
});
