import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { MallocBdev } from '../../../src/bdev/modules/malloc.ts';
import { openBdevChannel } from '../../../src/bdev/channel-open.ts';
import { BdevError } from '../../../src/bdev/bdev-error.ts';
import { SgList } from '../../../src/iovec/sg-list.ts';
import { BDEV_EINVAL, BDEV_EIO, BDEV_OK, type BdevIoWaiter } from '../../../src/bdev/bdev.ts';
import { closeFd } from '../../../src/sys/fd.ts';
import { memfdCreate } from '../../../src/sys/memory.ts';
import { readFileSync } from 'node:fs';

function freeHugepages(): number {
  return Number(/HugePages_Free:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
}
// .ci/run reserves some: in CI their absence is a failure, elsewhere a skip.
const hugeSkip = freeHugepages() >= 4 || process.env.CI ? false : 'fewer than 4 free 2 MiB huge pages (HugePages_Free)';

class Waiter implements BdevIoWaiter {
  statuses: number[] = [];
  bdevIoDone(status: number): void {
    this.statuses.push(status);
  }
  last(): number {
    return this.statuses[this.statuses.length - 1];
  }
}

/** An SgList over several separate buffers of the given lengths. */
function sgOver(lengths: number[]): { sg: SgList; bufs: Uint8Array[] } {
  const sg = new SgList(lengths.length);
  const bufs = lengths.map((l) => new Uint8Array(l + 8));
  // Entries start at offset 3 inside each buffer, so offsets matter.
  lengths.forEach((l, i) => sg.push(bufs[i], 3, l));
  return { sg, bufs };
}

test('malloc bdev properties as SPDK reports them', () => {
  const m = new MallocBdev({ name: 'm0', numBlocks: 64, blockSize: 512, optimalIoBoundary: 16 });
  try {
    assert.equal(m.productName, 'Malloc disk');
    assert.equal(m.moduleName, 'malloc');
    assert.deepEqual(m.ioTypes, { read: true, write: true, flush: true, unmap: true, write_zeroes: true, reset: true });
    assert.equal(m.writeCache, false);
    assert.equal(m.unmapReadsZero, true);
    assert.equal(m.optimalIoBoundary, 16);
    assert.equal(m.physicalBlockSize, 512);
    assert.match(m.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const spec = m.channelSpec();
    assert.deepEqual(structuredClone(spec), { module: 'malloc', name: 'm0', blockSize: 512, numBlocks: 64, fd: m.fd, uuid: m.uuid });
  } finally {
    m.destroy();
  }
});

test('write then read round trip through SgLists spanning several segments', () => {
  const m = new MallocBdev({ name: 'm0', numBlocks: 32, blockSize: 512 });
  const ch = openBdevChannel(m.channelSpec());
  const w = new Waiter();
  try {
    // 3 blocks = 1536 bytes over segments of 100, 700, 736 bytes.
    const src = sgOver([100, 700, 736]);
    let k = 0;
    for (let i = 0; i < src.sg.count; i++) {
      for (let j = 0; j < src.sg.lengths[i]; j++) src.bufs[i][3 + j] = (k++ * 7 + 1) & 0xff;
    }
    ch.write(5, 3, src.sg, 0, w);
    assert.equal(w.last(), BDEV_OK);

    // Read back into a differently split list, with a 512-byte sgOffset in front.
    const dst = sgOver([1000, 48, 1000]);
    ch.read(5, 3, dst.sg, 512, w);
    assert.equal(w.last(), BDEV_OK);
    const flat = new Uint8Array(2048);
    dst.sg.copyOut(0, flat, 0, 2048);
    assert.ok(flat.subarray(0, 512).every((b) => b === 0), 'bytes before sgOffset untouched');
    for (let i = 0; i < 1536; i++) assert.equal(flat[512 + i], (i * 7 + 1) & 0xff, `byte ${i}`);
    // Guard bytes around every segment untouched.
    for (const b of dst.bufs) assert.deepEqual([b[0], b[1], b[2]], [0, 0, 0]);

    // Neighbouring blocks still zero (a sparse memfd reads zeroes).
    const one = sgOver([512]);
    one.bufs[0].fill(9);
    ch.read(4, 1, one.sg, 0, w);
    assert.ok(one.bufs[0].subarray(3, 515).every((b) => b === 0));
    ch.read(8, 1, one.sg, 0, w);
    assert.ok(one.bufs[0].subarray(3, 515).every((b) => b === 0));
    assert.deepEqual(w.statuses, [BDEV_OK, BDEV_OK, BDEV_OK, BDEV_OK]);
  } finally {
    ch.close();
    m.destroy();
  }
});

test('out-of-range or malformed I/O completes with EINVAL and touches nothing', () => {
  const m = new MallocBdev({ name: 'm0', numBlocks: 16, blockSize: 512 });
  const ch = openBdevChannel(m.channelSpec());
  const w = new Waiter();
  try {
    const { sg, bufs } = sgOver([1024]);
    bufs[0].fill(0x5a);
    ch.write(15, 2, sg, 0, w); // last block + 1 past the end
    ch.read(16, 1, sg, 0, w);
    ch.read(-1, 1, sg, 0, w);
    ch.read(0, 1.5, sg, 0, w);
    ch.read(2 ** 53, 1, sg, 0, w);
    ch.read(0, 3, sg, 0, w); // SgList holds only 2 blocks
    ch.read(0, 2, sg, 1, w); // sgOffset pushes it past the list's end
    ch.unmap(10, 7, w);
    ch.writeZeroes(17, 0, w);
    ch.flush(0, 17, w);
    assert.deepEqual(w.statuses, Array(10).fill(BDEV_EINVAL));
    // Nothing was written: block 15 still zero.
    const r = sgOver([512]);
    r.bufs[0].fill(1);
    ch.read(15, 1, r.sg, 0, w);
    assert.equal(w.last(), BDEV_OK);
    assert.ok(r.bufs[0].subarray(3, 515).every((b) => b === 0));
    assert.ok(bufs[0].subarray(3, 1027).every((b) => b === 0x5a), 'failed read left the buffer alone');
    // Zero-length I/O at the end is valid.
    ch.read(16, 0, sg, 0, w);
    ch.flush(0, 16, w);
    assert.deepEqual(w.statuses.slice(-2), [BDEV_OK, BDEV_OK]);
  } finally {
    ch.close();
    m.destroy();
  }
});

test('unmap and write-zeroes zero exactly their blocks', () => {
  const m = new MallocBdev({ name: 'm0', numBlocks: 8, blockSize: 4096 });
  const ch = openBdevChannel(m.channelSpec());
  const w = new Waiter();
  try {
    const all = sgOver([8 * 4096]);
    all.bufs[0].fill(0xff);
    ch.write(0, 8, all.sg, 0, w);
    ch.unmap(1, 2, w);
    ch.writeZeroes(6, 1, w);
    all.bufs[0].fill(0x11);
    ch.read(0, 8, all.sg, 0, w);
    assert.deepEqual(w.statuses, [BDEV_OK, BDEV_OK, BDEV_OK, BDEV_OK]);
    const perBlock = [];
    for (let b = 0; b < 8; b++) {
      const blk = all.bufs[0].subarray(3 + b * 4096, 3 + (b + 1) * 4096);
      perBlock.push(blk.every((x) => x === 0) ? 0 : blk.every((x) => x === 0xff) ? 0xff : -1);
    }
    assert.deepEqual(perBlock, [0xff, 0, 0, 0xff, 0xff, 0xff, 0, 0xff]);
  } finally {
    ch.close();
    m.destroy();
  }
});

test('two channels share the data; a closed channel fails with EIO; resize only shrinks', () => {
  const m = new MallocBdev({ name: 'm0', numBlocks: 4, blockSize: 512 });
  const a = openBdevChannel(m.channelSpec());
  const b = openBdevChannel(m.channelSpec());
  const w = new Waiter();
  const { sg, bufs } = sgOver([512]);
  bufs[0].fill(0x42);
  a.write(2, 1, sg, 0, w);
  bufs[0].fill(0);
  b.read(2, 1, sg, 0, w);
  assert.equal(bufs[0][3], 0x42);
  assert.equal(bufs[0][514], 0x42);
  a.close();
  a.read(0, 1, sg, 0, w);
  assert.equal(w.last(), BDEV_EIO);
  b.resize(100);
  assert.equal(b.numBlocks, 4);
  b.resize(2);
  b.read(2, 1, sg, 0, w);
  assert.equal(w.last(), BDEV_EINVAL);
  assert.equal(b.poll(), 0);
  b.close();
  m.destroy();
});

test('a channel opened from the spec in a worker_thread sees the same memory', async () => {
  const m = new MallocBdev({ name: 'shared', numBlocks: 16, blockSize: 512 });
  const ch = openBdevChannel(m.channelSpec());
  const w = new Waiter();
  try {
    const { sg, bufs } = sgOver([1024]);
    for (let i = 0; i < 1024; i++) bufs[0][3 + i] = (i + 100) & 0xff;
    ch.write(3, 2, sg, 0, w);
    const worker = new Worker(new URL('./malloc-peer.worker.ts', import.meta.url), { workerData: { spec: m.channelSpec() } });
    const reply = await new Promise<{ seen: number[]; statuses: number[] }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    assert.deepEqual(reply.statuses, [BDEV_OK, BDEV_OK]);
    assert.deepEqual(reply.seen, [100, 101, 102, 103, 104, 105, 106, 107]);
    // What the worker wrote at blocks 10..11 is visible here.
    bufs[0].fill(0);
    ch.read(10, 2, sg, 0, w);
    assert.ok(bufs[0].subarray(3, 1027).every((b) => b === 0xa5));
  } finally {
    ch.close();
    m.destroy();
  }
});

test('openBdevChannel rejects bad specs and stale fds', () => {
  const m = new MallocBdev({ name: 'm0', numBlocks: 4, blockSize: 512 });
  const spec = m.channelSpec();
  const isSpec = (c: string) => (e: unknown) => e instanceof BdevError && e.code === c;
  assert.throws(() => openBdevChannel({ ...spec, module: 'iscsi' }), isSpec('BDEV_UNKNOWN_MODULE'));
  assert.throws(() => openBdevChannel({ ...spec, fd: undefined }), isSpec('BDEV_INVALID_SPEC'));
  assert.throws(() => openBdevChannel({ ...spec, numBlocks: 0 }), isSpec('BDEV_INVALID_SPEC'));
  // Claiming more blocks than the memfd holds would SIGBUS on access: refused.
  assert.throws(() => openBdevChannel({ ...spec, numBlocks: 5 }), isSpec('BDEV_INVALID_SPEC'));
  // An fd number that now refers to some other file is refused.
  m.destroy();
  const other = memfdCreate('unrelated', 4096);
  try {
    assert.throws(() => openBdevChannel({ ...spec, fd: other }), isSpec('BDEV_INVALID_SPEC'));
  } finally {
    closeFd(other);
  }
  assert.throws(() => m.channelSpec(), isSpec('BDEV_NOT_FOUND'));
});

test('malloc creation validates like SPDK', () => {
  const bad = (c: string) => (e: unknown) => e instanceof BdevError && e.code === c;
  assert.throws(() => new MallocBdev({ name: 'x', numBlocks: 0, blockSize: 512 }), bad('BDEV_INVALID_PARAM'));
  assert.throws(() => new MallocBdev({ name: 'x', numBlocks: 8, blockSize: 1000 }), bad('BDEV_INVALID_PARAM'));
  assert.throws(() => new MallocBdev({ name: 'x', numBlocks: 8, blockSize: 512, optimalIoBoundary: -1 }), bad('BDEV_INVALID_PARAM'));
  assert.throws(() => new MallocBdev({ name: 'x', numBlocks: 8, blockSize: 4096, physicalBlockSize: 512 }), bad('BDEV_INVALID_PARAM'));
  assert.throws(() => new MallocBdev({ name: 'x', numBlocks: 2 ** 30, blockSize: 65536 }), bad('BDEV_NO_MEMORY'));
  const m = new MallocBdev({ name: 'x', numBlocks: 8, blockSize: 512, physicalBlockSize: 4096 });
  assert.equal(m.physicalBlockSize, 4096);
  m.destroy();
});

test('malloc on huge pages: allocated up front, data round trip at the last block, pages given back', { skip: hugeSkip }, () => {
  const free0 = freeHugepages();
  // 3 MiB: not a multiple of 2 MiB, so the memfd is rounded up to 2 pages and mapped whole.
  const m = new MallocBdev({ name: 'h0', numBlocks: (3 * 1024 * 1024) / 512, blockSize: 512, hugepages: 'on' });
  try {
    assert.equal(m.hugepages, true);
    assert.equal(freeHugepages(), free0 - 2, 'both pages taken at create, not at first write');
    const ch = openBdevChannel(m.channelSpec());
    const w = new Waiter();
    const data = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
    const out = new SgList(1);
    out.push(data, 0, data.length);
    ch.write(m.numBlocks - 8, 8, out, 0, w);
    const back = new Uint8Array(4096);
    const into = new SgList(1);
    into.push(back, 0, back.length);
    ch.read(m.numBlocks - 8, 8, into, 0, w);
    assert.deepEqual(w.statuses, [BDEV_OK, BDEV_OK]);
    assert.deepEqual(back, data);
    ch.close();
  } finally {
    m.destroy();
  }
  assert.equal(freeHugepages(), free0, 'pages returned once the fd and the mapping are gone');
});

test('malloc huge pages: "on" fails with BDEV_NO_MEMORY when too few are free, "auto" falls back to 4 KiB pages', () => {
  const tooMany = (freeHugepages() + 1) * 2 * 1024 * 1024;
  assert.throws(
    () => new MallocBdev({ name: 'h1', numBlocks: tooMany / 512, blockSize: 512, hugepages: 'on' }),
    (e: unknown) => e instanceof BdevError && e.code === 'BDEV_NO_MEMORY' && /huge pages .*HugePages_Free/.test(e.message),
  );
  const m = new MallocBdev({ name: 'h2', numBlocks: tooMany / 512, blockSize: 512, hugepages: 'auto' });
  try {
    assert.equal(m.hugepages, false);
    const ch = openBdevChannel(m.channelSpec());
    const w = new Waiter();
    const buf = new Uint8Array(512).fill(9);
    const sg = new SgList(1);
    sg.push(buf, 0, 512);
    ch.write(m.numBlocks - 1, 1, sg, 0, w);
    assert.deepEqual(w.statuses, [BDEV_OK]);
    ch.close();
  } finally {
    m.destroy();
  }
  const off = new MallocBdev({ name: 'h3', numBlocks: 64, blockSize: 512 });
  assert.equal(off.hugepages, false, 'off unless asked');
  off.destroy();
});
