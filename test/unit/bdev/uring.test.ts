// The uring bdev (bdev_uring / bdev_aio) on temp files: creation rules, every I/O type with data
// checked on disk, through SgLists over memfd-mapped memory (like guest memory), on io_uring and
// on the forced thread-pool fallback, buffered and O_DIRECT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { AIO_MODULE, UringBdev, type UringBdevOptions } from '../../../src/bdev/modules/uring.ts';
import { SUBMIT_BATCH, UringChannel, type UringChannelOptions } from '../../../src/bdev/modules/uring-channel.ts';
import { openBdevChannel } from '../../../src/bdev/channel-open.ts';
import { BdevError } from '../../../src/bdev/bdev-error.ts';
import { BDEV_EINVAL, BDEV_EIO, BDEV_ENOMEM, BDEV_ENOTSUP, BDEV_EROFS, BDEV_OK } from '../../../src/bdev/bdev.ts';
import { SgList } from '../../../src/iovec/sg-list.ts';
import { SysError } from '../../../src/sys/errno.ts';
import { ioUringSupport } from '../../../src/sys/io-uring-setup.ts';
import { BOUNCE_CHUNK } from '../../../src/sys/io-vectors.ts';
import { blockFileInfo } from '../../../src/sys/block-file.ts';
import { MappedMemory, fillPattern, findPatternMismatch } from '../sys/mapped-memory.ts';
import { exchangeWithPeer, run, Waiter } from './uring-test-io.ts';


const dirs: string[] = [];
function tmpFile(bytes: number, fill = 0, base = tmpdir()): string {
  const dir = mkdtempSync(join(base, 'vhostd-uring-'));
  dirs.push(dir);
  const path = join(dir, 'disk.img');
  writeFileSync(path, Buffer.alloc(bytes, fill));
  return path;
}
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function bdev(opts: Partial<UringBdevOptions> & { filename: string }): UringBdev {
  return new UringBdev({ name: 'u0', ...opts });
}

const uringOk = ioUringSupport().available;

function onMemoryFs(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    return blockFileInfo(fd).memoryFs;
  } finally {
    closeSync(fd);
  }
}
// Files on tmpfs are mapped unless the bdev says mmap: false (uring-file-map.test.ts covers mapping).
const VARIANTS: { label: string; opts: UringChannelOptions; direct: boolean; skip: string | false; dir?: string; inline?: boolean }[] = [
  { label: 'io_uring, O_DIRECT', opts: { forceFallback: false, inline: false }, direct: true, skip: uringOk ? false : 'io_uring unavailable' },
  { label: 'io_uring, buffered', opts: { forceFallback: false, inline: false }, direct: false, skip: uringOk ? false : 'io_uring unavailable' },
  { label: 'thread-pool fallback, O_DIRECT', opts: { forceFallback: true, threads: 2, inline: false }, direct: true, skip: false },
  { label: 'thread-pool fallback, buffered', opts: { forceFallback: true, threads: 2, inline: false }, direct: false, skip: false },
  // Reads and writes done inside the call (RWF_NOWAIT) first: page-cache hits, and tmpfs even with O_DIRECT.
  { label: 'inline first, buffered', opts: { forceFallback: false }, direct: false, skip: uringOk ? false : 'io_uring unavailable', inline: true },
  { label: 'inline first, tmpfs', opts: { forceFallback: false }, direct: true, skip: uringOk ? false : 'io_uring unavailable', dir: '/dev/shm', inline: true },
];

test('a uring bdev reports what SPDK reports, and a cloneable channel spec', () => {
  const path = tmpFile(1 << 20);
  const b = bdev({ filename: path, uuid: '0B2A3C4D-5E6F-4A1B-8C2D-3E4F5A6B7C8D' });
  assert.equal(b.productName, 'URING bdev');
  assert.equal(b.moduleName, 'uring');
  assert.equal(b.blockSize, 512);
  assert.equal(b.numBlocks, 2048);
  assert.equal(b.uuid, '0b2a3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d');
  assert.equal(b.writeCache, true);
  assert.equal(b.isBlockDevice, false);
  assert.deepEqual(b.driverSpecific(), { uring: { filename: path } });
  assert.deepEqual(b.ioTypes, { read: true, write: true, flush: true, unmap: b.unmapReadsZero, write_zeroes: true, reset: true });
  const spec = b.channelSpec();
  assert.deepEqual(structuredClone(spec), spec);
  assert.equal(spec.module, 'uring');
  assert.equal(spec.filename, path);
  assert.deepEqual([spec.blockSize, spec.numBlocks, spec.readonly, spec.fallocate], [512, 2048, false, true]);
  const b4k = bdev({ filename: path, blockSize: 4096 });
  assert.deepEqual([b4k.blockSize, b4k.numBlocks, b4k.blockSizeOverride], [4096, 256, true]);
  b.destroy();
  assert.throws(() => b.channelSpec(), (e: unknown) => e instanceof BdevError && e.code === 'BDEV_NOT_FOUND');
});

test('the aio flavour: SPDK names, readonly and fallocate flags', () => {
  const path = tmpFile(64 * 1024);
  const a = bdev({ filename: path, flavor: AIO_MODULE, readonly: true });
  assert.equal(a.productName, 'AIO disk');
  assert.equal(a.moduleName, 'aio');
  assert.deepEqual(a.driverSpecific(), { aio: { filename: path, block_size_override: false, readonly: true, fallocate: false } });
  assert.deepEqual(a.ioTypes, { read: true, write: false, flush: true, unmap: false, write_zeroes: false, reset: true });
  const f = bdev({ filename: path, flavor: AIO_MODULE, fallocate: true, blockSize: 4096 });
  assert.deepEqual(f.driverSpecific(), { aio: { filename: path, block_size_override: true, readonly: false, fallocate: true } });
  assert.equal(f.ioTypes.write_zeroes, true);
});

test('creation refuses bad files and block sizes with typed errors', () => {
  const isParam = (re: RegExp) => (e: unknown) => e instanceof BdevError && e.code === 'BDEV_INVALID_PARAM' && re.test(e.message);
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-uring-'));
  dirs.push(dir);
  assert.throws(() => bdev({ filename: join(dir, 'missing.img') }), (e: unknown) => e instanceof SysError && e.code === 'ENOENT' && /missing\.img/.test(e.message));
  mkdirSync(join(dir, 'sub'));
  assert.throws(() => bdev({ filename: join(dir, 'sub') }), (e: unknown) => e instanceof SysError && e.code === 'EISDIR');
  assert.throws(() => bdev({ filename: tmpFile(0) }), isParam(/is empty/));
  assert.throws(() => bdev({ filename: tmpFile(1000) }), isParam(/1000 bytes\) is not a multiple of block size 512/));
  assert.throws(() => bdev({ filename: tmpFile(65536), blockSize: 1536 }), isParam(/not a power of two/));
  assert.throws(() => bdev({ filename: tmpFile(65536), blockSize: 520 }), isParam(/multiple of 512/));
  assert.throws(() => bdev({ filename: tmpFile(65536), name: '' }), isParam(/empty/));
  assert.throws(() => bdev({ filename: '' }), isParam(/filename/));
  assert.throws(() => bdev({ filename: '/dev/null' }), isParam(/neither a regular file nor a block device/));
});

for (const v of VARIANTS) {
  test(`${v.label}: write, read, flush, unmap and write-zeroes, data checked on disk`, { skip: v.skip }, (t) => {
    const path = tmpFile(256 * 1024, 0, v.dir);
    const b = bdev({ filename: path, direct: v.direct, mmap: false });
    const ch = new UringChannel(b.channelSpec(), v.opts);
    const mem = new MappedMemory(1 << 20);
    try {
      assert.equal(ch.direct, b.direct);
      t.diagnostic(`O_DIRECT in effect: ${ch.direct}`);
      assert.equal(ch.engineKind, v.opts.forceFallback ? 'thread-pool' : 'io_uring');
      if (!v.direct) assert.equal(ch.direct, false);
      // 16 KiB written from three 512-aligned guest segments.
      const src = mem.sg([[4096, 4096], [65536, 8192], [131072, 4096]]);
      const data = new Uint8Array(16384);
      fillPattern(data, 3);
      src.copyIn(0, data, 0, data.length);
      assert.deepEqual(run(ch, (w) => ch.write(10, 32, src, 0, w)), [BDEV_OK]);
      const disk = readFileSync(path);
      assert.equal(findPatternMismatch(disk.subarray(10 * 512, 10 * 512 + 16384), 3), -1, 'on disk');
      assert.ok(disk.subarray(0, 10 * 512).every((x) => x === 0) && disk[10 * 512 + 16384] === 0, 'neighbours untouched');

      // Read blocks 12..27 back with a 1024-byte sgOffset into a differently split list.
      const dst = mem.sg([[512 * 1024, 1024], [600 * 1024, 3072], [700 * 1024, 8192]]);
      mem.bytes.fill(0xcc, 512 * 1024, 512 * 1024 + 1024);
      assert.deepEqual(run(ch, (w) => ch.read(12, 6, dst, 1024, w)), [BDEV_OK]);
      const back = new Uint8Array(3072);
      dst.copyOut(1024, back, 0, 3072);
      assert.deepEqual(back, data.subarray(1024, 1024 + 3072));
      assert.ok(mem.bytes.subarray(512 * 1024, 512 * 1024 + 1024).every((x) => x === 0xcc), 'bytes before sgOffset untouched');

      assert.deepEqual(run(ch, (w) => ch.flush(0, 0, w)), [BDEV_OK]);

      // Unmap blocks 12..13 and write-zeroes 20..21 of the written range.
      const st = run(ch, (w) => {
        ch.unmap(12, 2, w);
        ch.writeZeroes(20, 2, w);
      });
      assert.deepEqual(st, [b.ioTypes.unmap ? BDEV_OK : BDEV_ENOTSUP, BDEV_OK]);
      const after = readFileSync(path);
      const expect = Buffer.alloc(256 * 1024);
      expect.set(data, 10 * 512);
      if (b.ioTypes.unmap) expect.fill(0, 12 * 512, 14 * 512);
      expect.fill(0, 20 * 512, 22 * 512);
      assert.ok(after.equals(expect), 'file holds exactly the writes minus the zeroed blocks');
      assert.equal(statSync(path).size, 256 * 1024, 'size kept');
      assert.equal(ch.inflight(), 0);
      // The write and the read were done inside their calls, or by the engine, as the variant says.
      // (On a disk file system buffered writes have no RWF_NOWAIT: only the read, there.)
      if (v.inline) assert.equal(ch.inlineCompletions, onMemoryFs(path) ? 2 : 1);
      else assert.equal(ch.inlineCompletions, 0);
    } finally {
      ch.close();
      mem.close();
    }
  });

  test(`${v.label}: misaligned, unaddressed and oversized buffers go through the bounce buffer`, { skip: v.skip }, () => {
    const size = 2 * 1024 * 1024;
    const path = tmpFile(size);
    const b = bdev({ filename: path, direct: v.direct, mmap: false });
    const ch = new UringChannel(b.channelSpec(), v.opts);
    const mem = new MappedMemory(1 << 20);
    try {
      // Guest segment at an odd address: O_DIRECT cannot take it as is.
      const odd = mem.sg([[3, 2048]]);
      fillPattern(mem.bytes.subarray(3, 3 + 2048), 5);
      assert.deepEqual(run(ch, (w) => ch.write(1, 4, odd, 0, w)), [BDEV_OK]);
      assert.equal(findPatternMismatch(readFileSync(path).subarray(512, 512 + 2048), 5), -1);
      mem.bytes.fill(0, 0, 4096);
      assert.deepEqual(run(ch, (w) => ch.read(1, 4, odd, 0, w)), [BDEV_OK]);
      assert.equal(findPatternMismatch(mem.bytes.subarray(3, 3 + 2048), 5), -1);

      // Heap memory (no host address), larger than one bounce chunk: chunked through the bounce buffer.
      const len = BOUNCE_CHUNK * 4 + 4096;
      const heap = new Uint8Array(len + 16);
      const sg = new SgList(2);
      sg.push(heap, 7, len);
      fillPattern(heap.subarray(7, 7 + len), 9);
      assert.deepEqual(run(ch, (w) => ch.write(100, len / 512, sg, 0, w)), [BDEV_OK]);
      assert.equal(findPatternMismatch(readFileSync(path).subarray(100 * 512, 100 * 512 + len), 9), -1);
      heap.fill(0);
      assert.deepEqual(run(ch, (w) => ch.read(100, len / 512, sg, 0, w)), [BDEV_OK]);
      assert.equal(findPatternMismatch(heap.subarray(7, 7 + len), 9), -1);
      assert.ok(heap[6] === 0 && heap[7 + len] === 0, 'guard bytes untouched');

      // A write-zeroes longer than a chunk through plain writes (aio without fallocate).
      const a = bdev({ filename: path, flavor: AIO_MODULE, direct: v.direct });
      const ach = new UringChannel(a.channelSpec(), v.opts);
      try {
        assert.deepEqual(run(ach, (w) => ach.unmap(0, 8, w)), [BDEV_ENOTSUP]);
        assert.deepEqual(run(ach, (w) => ach.writeZeroes(100, len / 512 - 8, w)), [BDEV_OK]);
      } finally {
        ach.close();
      }
      const disk = readFileSync(path);
      assert.ok(disk.subarray(100 * 512, 100 * 512 + len - 4096).every((x) => x === 0), 'zeroed');
      assert.deepEqual(new Uint8Array(disk.subarray(100 * 512 + len - 4096, 100 * 512 + len)), readPattern(len, 9).subarray(len - 4096), 'last 8 blocks kept');
    } finally {
      ch.close();
      mem.close();
    }
  });

  if (!v.inline) {
    test(`${v.label}: requests reach the kernel before poll() while it holds few, then SUBMIT_BATCH at a time`, { skip: v.skip }, () => {
      const B = SUBMIT_BATCH;
      const n = 2 * B + 3;
      const path = tmpFile(n * 4096);
      const ch = new UringChannel(bdev({ filename: path, direct: v.direct }).channelSpec(), v.opts);
      const mem = new MappedMemory(1 << 20);
      const onDisk = (i: number): boolean => findPatternMismatch(readFileSync(path).subarray(i * 4096, (i + 1) * 4096), 40 + i) === -1;
      try {
        const w = new Waiter();
        for (let i = 0; i < n; i++) {
          fillPattern(mem.bytes.subarray(i * 4096, (i + 1) * 4096), 40 + i);
          ch.write(i * 8, 8, mem.sg([[i * 4096, 4096]]), 0, w);
        }
        // No poll() yet. Writes 0..B-1 were submitted one by one (fewer than B in the kernel),
        // B..2B-1 together once B waited; the last 3 wait for poll(). Completions are only reaped by poll().
        const early = Array.from({ length: 2 * B }, (_, i) => i);
        const deadline = Date.now() + 5000;
        while (!early.every(onDisk) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        for (const i of early) assert.ok(onDisk(i), `write ${i} reached the file before any poll()`);
        for (let i = 2 * B; i < n; i++) assert.ok(!onDisk(i), `write ${i} waits for poll()`);
        assert.deepEqual(w.statuses, []);
        assert.equal(ch.drain(10_000), true);
        assert.deepEqual(w.statuses, Array(n).fill(BDEV_OK));
        for (let i = 0; i < n; i++) assert.ok(onDisk(i), `write ${i}`);
        assert.equal(ch.submitErrors, 0);
      } finally {
        ch.close();
        mem.close();
      }
    });
  }
}

function readPattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  fillPattern(b, seed);
  return b;
}

test('invalid requests fail synchronously with EINVAL, readonly with EROFS, closed with EIO', () => {
  const path = tmpFile(16 * 512, 0x5a);
  const ch = new UringChannel(bdev({ filename: path }).channelSpec());
  const mem = new MappedMemory(1 << 16);
  const w = new Waiter();
  try {
    const sg = mem.sg([[0, 1024]]);
    ch.write(15, 2, sg, 0, w);
    ch.read(16, 1, sg, 0, w);
    ch.read(-1, 1, sg, 0, w);
    ch.read(0, 1.5, sg, 0, w);
    ch.read(2 ** 53, 1, sg, 0, w);
    ch.read(0, 3, sg, 0, w); // the list holds 2 blocks
    ch.read(0, 2, sg, 1, w); // sgOffset pushes it past the list's end
    ch.read(0, 1, sg, -512, w);
    ch.unmap(10, 7, w);
    ch.writeZeroes(17, 0, w);
    ch.flush(0, 17, w);
    assert.deepEqual(w.statuses, Array(11).fill(BDEV_EINVAL));
    assert.equal(ch.inflight(), 0);
    ch.read(16, 0, sg, 0, w); // empty I/O at the end is valid
    assert.equal(w.statuses.at(-1), BDEV_OK);
    assert.ok(readFileSync(path).every((x) => x === 0x5a), 'nothing written');
  } finally {
    ch.close();
  }
  ch.read(0, 1, mem.sg([[0, 512]]), 0, w);
  ch.flush(0, 1, w);
  assert.deepEqual(w.statuses.slice(-2), [BDEV_EIO, BDEV_EIO]);

  const ro = new UringChannel(bdev({ filename: path, readonly: true }).channelSpec());
  try {
    const r = new Waiter();
    const sg = mem.sg([[0, 512]]);
    ro.write(0, 1, sg, 0, r);
    ro.unmap(0, 1, r);
    ro.writeZeroes(0, 1, r);
    assert.deepEqual(r.statuses, [BDEV_EROFS, BDEV_EROFS, BDEV_EROFS]);
    assert.deepEqual(run(ro, (x) => ro.read(0, 1, sg, 0, x)), [BDEV_OK]);
    assert.ok(mem.bytes.subarray(0, 512).every((x) => x === 0x5a));
  } finally {
    ro.close();
    mem.close();
  }
});

test('requests beyond the queue depth wait in the backlog; beyond the backlog: ENOMEM', () => {
  const path = tmpFile(64 * 512);
  const ch = new UringChannel(bdev({ filename: path }).channelSpec(), { queueDepth: 4 });
  const mem = new MappedMemory(1 << 16);
  try {
    const w = new Waiter();
    const sgs: SgList[] = [];
    for (let i = 0; i < 21; i++) {
      fillPattern(mem.bytes.subarray(i * 512, (i + 1) * 512), 100 + i);
      sgs.push(mem.sg([[i * 512, 512]]));
    }
    // Depth 4 + backlog 16 = 20 accepted; the 21st is refused at once.
    for (let i = 0; i < 21; i++) ch.write(i, 1, sgs[i], 0, w);
    assert.deepEqual(w.statuses, [BDEV_ENOMEM]);
    assert.equal(ch.inflight(), 20);
    assert.equal(ch.drain(10_000), true);
    assert.deepEqual(w.statuses, [BDEV_ENOMEM, ...Array(20).fill(BDEV_OK)]);
    const disk = readFileSync(path);
    for (let i = 0; i < 20; i++) assert.equal(findPatternMismatch(disk.subarray(i * 512, (i + 1) * 512), 100 + i), -1, `block ${i}`);
    assert.ok(disk.subarray(20 * 512, 21 * 512).every((x) => x === 0), 'refused write not done');
  } finally {
    ch.close();
    mem.close();
  }
});

test('write-zeroes on tmpfs (no FALLOC_FL_ZERO_RANGE) falls back to punching holes', { skip: !statSafe('/dev/shm') }, () => {
  const path = tmpFile(64 * 1024, 0xff, '/dev/shm');
  const ch = new UringChannel(bdev({ filename: path, mmap: false }).channelSpec());
  try {
    assert.deepEqual(run(ch, (w) => ch.writeZeroes(8, 8, w)), [BDEV_OK]);
    assert.deepEqual(run(ch, (w) => ch.writeZeroes(32, 8, w)), [BDEV_OK]);
    const disk = readFileSync(path);
    const expect = Buffer.alloc(64 * 1024, 0xff);
    expect.fill(0, 8 * 512, 16 * 512);
    expect.fill(0, 32 * 512, 40 * 512);
    assert.ok(disk.equals(expect));
  } finally {
    ch.close();
  }
});

test('a reactor that only polls gets its device completions (io_uring task work is flushed by poll)', { skip: !uringOk }, (t) => {
  const path = tmpFile(64 * 1024, 0x6b);
  const ch = new UringChannel(bdev({ filename: path }).channelSpec());
  const mem = new MappedMemory(1 << 16);
  try {
    if (!ch.direct) return t.skip('no O_DIRECT on this file system: the read would not reach a device');
    assert.equal(ch.engineKind, 'io_uring');
    // A busy loop of poll() only, as a reactor spins: no wait(), no syscall of the test's own.
    // A completion left in task work (IORING_SETUP_COOP_TASKRUN) is never posted unless poll enters.
    const lat: number[] = [];
    for (let round = 0; round < 20; round++) {
      const w = new Waiter();
      mem.bytes.fill(0, 0, 4096);
      ch.read(round * 4, 8, mem.sg([[0, 4096]]), 0, w);
      const t0 = performance.now();
      const deadline = Date.now() + 5000;
      while (w.statuses.length === 0 && Date.now() < deadline) ch.poll();
      lat.push(performance.now() - t0);
      assert.deepEqual(w.statuses, [BDEV_OK], `read ${round} completed by polling`);
      assert.ok(mem.bytes.subarray(0, 4096).every((x) => x === 0x6b), `read ${round} data`);
    }
    lat.sort((a, b) => a - b);
    t.diagnostic(`median ${lat[10].toFixed(3)} ms max ${lat[19].toFixed(3)} ms`);
  } finally {
    ch.close();
    mem.close();
  }
});

test('reading through the bdev leaves the file\'s access time alone (O_NOATIME)', { skip: !statSafe('/dev/shm') }, () => {
  // relatime would update an access time older than the modification time on this read.
  const path = tmpFile(16 * 512, 0x33, '/dev/shm');
  const old = new Date('2001-01-01T00:00:00Z');
  utimesSync(path, old, new Date());
  const ch = new UringChannel(bdev({ filename: path, mmap: false }).channelSpec());
  const mem = new MappedMemory(1 << 16);
  try {
    assert.deepEqual(run(ch, (w) => ch.read(0, 8, mem.sg([[0, 4096]]), 0, w)), [BDEV_OK]);
    assert.equal(mem.bytes[0], 0x33, 'the read happened');
    assert.equal(statSync(path).atimeMs, old.getTime());
  } finally {
    ch.close();
    mem.close();
  }
});

function statSafe(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

test('a channel is refused when the path no longer names the same file, or the spec is malformed', () => {
  const path = tmpFile(8192);
  const b = bdev({ filename: path });
  const spec = b.channelSpec();
  const isSpec = (re: RegExp) => (e: unknown) => e instanceof BdevError && e.code === 'BDEV_INVALID_SPEC' && re.test(e.message);
  assert.throws(() => new UringChannel({ ...spec, memAlign: 3 }), isSpec(/memAlign 3/));
  assert.throws(() => new UringChannel({ ...spec, numBlocks: 17 }), isSpec(/holds 8192 bytes, the bdev needs 8704/));
  assert.throws(() => new UringChannel({ ...spec, readonly: 'no' as unknown as boolean }), isSpec(/readonly must be a boolean/));
  // Replaced by rename (a new inode while the old one still exists)...
  writeFileSync(`${path}.new`, Buffer.alloc(8192));
  renameSync(`${path}.new`, path);
  assert.throws(() => new UringChannel(spec), isSpec(/no longer the file/));
  // ...or deleted and recreated (the inode number may be reused; the birth time differs).
  const spec2 = bdev({ filename: path }).channelSpec();
  unlinkSync(path);
  writeFileSync(path, Buffer.alloc(8192));
  assert.throws(() => new UringChannel(spec2), isSpec(/no longer the file/));
});

test('openBdevChannel opens uring specs; VHOSTD_FORCE_URING_FALLBACK=1 forces the thread pool', () => {
  const path = tmpFile(8192);
  const spec = bdev({ filename: path }).channelSpec();
  const before = process.env.VHOSTD_FORCE_URING_FALLBACK;
  process.env.VHOSTD_FORCE_URING_FALLBACK = '1';
  let ch: UringChannel | undefined;
  try {
    ch = openBdevChannel(spec) as UringChannel;
    assert.ok(ch instanceof UringChannel);
    assert.equal(ch.engineKind, 'thread-pool');
  } finally {
    ch?.close();
    if (before === undefined) delete process.env.VHOSTD_FORCE_URING_FALLBACK;
    else process.env.VHOSTD_FORCE_URING_FALLBACK = before;
  }
});

test('a channel opened from the spec in a worker thread sees and makes the same data', async () => {
  const path = tmpFile(32 * 512);
  const b = bdev({ filename: path });
  const ch = new UringChannel(b.channelSpec());
  const mem = new MappedMemory(1 << 16);
  try {
    const reply = await exchangeWithPeer(ch, b.channelSpec(), mem);
    assert.equal(reply.drained, true);
    assert.equal(reply.engine, uringOk ? 'io_uring' : 'thread-pool');
  } finally {
    ch.close();
    mem.close();
  }
});

/** A loop device over a temp file, or null when this host cannot make one (not root, no losetup). */
function loopDevice(bytes: number): { dev: string; backing: string; detach(): void } | null {
  if (process.getuid?.() !== 0) return null;
  const backing = tmpFile(bytes);
  try {
    const dev = execFileSync('losetup', ['-f', '--show', backing], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return { dev, backing, detach: () => execFileSync('losetup', ['-d', dev]) };
  } catch {
    return null;
  }
}

test('a block device (loop): size and block size from ioctls, I/O through it reaches the backing file', (t) => {
  const loop = loopDevice(4 * 1024 * 1024);
  if (!loop) return t.skip('cannot create a loop device here');
  const mem = new MappedMemory(1 << 16);
  try {
    const b = new UringBdev({ name: 'blk0', filename: loop.dev });
    assert.equal(b.isBlockDevice, true);
    assert.equal(b.blockSize, 512);
    assert.equal(b.numBlocks, 8192);
    assert.equal(b.blockSizeOverride, false);
    assert.match(b.channelSpec().identity, /^b \d+:\d+$/);
    assert.equal(new UringBdev({ name: 'blk1', filename: loop.dev, blockSize: 4096 }).numBlocks, 1024);
    const ch = new UringChannel(b.channelSpec());
    try {
      fillPattern(mem.bytes.subarray(0, 8192), 21);
      const sg = mem.sg([[0, 8192]]);
      assert.deepEqual(run(ch, (w) => ch.write(2048, 16, sg, 0, w)), [BDEV_OK]);
      assert.deepEqual(run(ch, (w) => ch.writeZeroes(2050, 2, w)), [BDEV_OK]);
      assert.deepEqual(run(ch, (w) => ch.unmap(2060, 2, w)), [b.ioTypes.unmap ? BDEV_OK : BDEV_ENOTSUP]);
      assert.deepEqual(run(ch, (w) => ch.flush(0, 0, w)), [BDEV_OK]);
      mem.bytes.fill(0xee, 0, 8192);
      assert.deepEqual(run(ch, (w) => ch.read(2048, 16, sg, 0, w)), [BDEV_OK]);
      const expect = readPattern(8192, 21);
      expect.fill(0, 2 * 512, 4 * 512);
      if (b.ioTypes.unmap) expect.fill(0, 12 * 512, 14 * 512);
      assert.deepEqual(mem.bytes.subarray(0, 8192), expect);
      assert.deepEqual(new Uint8Array(readFileSync(loop.backing).subarray(2048 * 512, 2048 * 512 + 8192)), expect);
    } finally {
      ch.close();
    }
  } finally {
    mem.close();
    loop.detach();
  }
});
