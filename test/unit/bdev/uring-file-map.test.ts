// A uring bdev on a fully allocated tmpfs file maps it under a file lease: reads and writes are
// copies through the mapping; another process opening or truncating the file takes the mapping
// away before its call goes on (so a truncate can never SIGBUS the daemon), and the mapping comes
// back once the file is free again. Sparse files, mmap: false and a second open in this thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { AIO_MODULE, UringBdev, type UringBdevOptions } from '../../../src/bdev/modules/uring.ts';
import { UringChannel } from '../../../src/bdev/modules/uring-channel.ts';
import { BDEV_EIO, BDEV_OK } from '../../../src/bdev/bdev.ts';
import { firstHole } from '../../../src/sys/block-file.ts';
import { MappedMemory, fillPattern, findPatternMismatch } from '../sys/mapped-memory.ts';
import { exchangeWithPeer, run } from './uring-test-io.ts';
import { until } from '../vhost-user/test-frontend.ts';

/** How long a lease break or a retry may take to show. */
const WAIT_MS = 10_000;

const SHM = '/dev/shm';
const haveShm = (() => {
  try {
    return statSync(SHM).isDirectory();
  } catch {
    return false;
  }
})();
const skip = haveShm ? false : 'no /dev/shm';


const dirs: string[] = [];
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A tmpfs file written in full (no holes), or only its first 4 KiB written (sparse). */
function shmFile(bytes: number, fill = 0, sparse = false): string {
  const dir = mkdtempSync(join(SHM, 'vhostd-map-'));
  dirs.push(dir);
  const path = join(dir, 'disk.img');
  writeFileSync(path, Buffer.alloc(sparse ? 4096 : bytes, fill));
  if (sparse) truncateSync(path, bytes);
  return path;
}

function bdev(opts: Partial<UringBdevOptions> & { filename: string }): UringBdev {
  return new UringBdev({ name: 'm0', leaseRetryMs: 100, ...opts });
}

/** Runs a command in another process (this thread stays free to answer the lease break); resolves with its exit code. */
function other(cmd: string, args: string[]): { exited: Promise<number | null> } {
  const child = spawn(cmd, args, { stdio: 'ignore' });
  return { exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

test('a fully allocated tmpfs file is mapped: reads and writes are copies, unmap writes zeroes (no hole), data checked in the file', { skip }, () => {
  const path = shmFile(256 * 1024, 0x11);
  const b = bdev({ filename: path });
  assert.equal(b.mapped, true, b.mapReason);
  const ch = new UringChannel(b.channelSpec());
  const mem = new MappedMemory(1 << 20);
  try {
    const sg = mem.sg([[4096, 4096], [65536, 8192], [131072, 4096]]);
    const data = new Uint8Array(16384);
    fillPattern(data, 9);
    sg.copyIn(0, data, 0, data.length);
    assert.deepEqual(run(ch, (w) => ch.write(10, 32, sg, 0, w)), [BDEV_OK]);
    const dst = mem.sg([[512 * 1024, 1024], [600 * 1024, 3072]]);
    assert.deepEqual(run(ch, (w) => ch.read(12, 8, dst, 0, w)), [BDEV_OK]);
    const back = new Uint8Array(4096);
    dst.copyOut(0, back, 0, 4096);
    assert.deepEqual(back, data.subarray(1024, 1024 + 4096));
    assert.equal(ch.mappedCompletions, 2, 'both through the mapping');
    assert.equal(ch.inlineCompletions, 0);
    assert.deepEqual(run(ch, (w) => ch.unmap(100, 16, w)), [BDEV_OK]);
    assert.deepEqual(run(ch, (w) => ch.writeZeroes(200, 8, w)), [BDEV_OK]);
    // Let go of the lease, then look at the file from here.
    b.destroy();
    assert.equal(b.mapped, false);
    const file = readFileSync(path);
    assert.equal(findPatternMismatch(file.subarray(10 * 512, 10 * 512 + 16384), 9), -1, 'the write is in the file');
    const expect = Buffer.alloc(256 * 1024, 0x11);
    expect.set(data, 10 * 512);
    expect.fill(0, 100 * 512, 116 * 512);
    expect.fill(0, 200 * 512, 208 * 512);
    assert.ok(file.equals(expect), 'exactly the writes and the zeroed blocks');
    const fd = openSync(path, 'r');
    try {
      assert.equal(firstHole(fd, 0), 256 * 1024, 'unmap and write-zeroes left no hole');
    } finally {
      closeSync(fd);
    }
    // With the bdev gone the channel still works, through system calls.
    assert.deepEqual(run(ch, (w) => ch.read(10, 8, dst, 0, w)), [BDEV_OK]);
    assert.equal(ch.mappedCompletions, 2);
  } finally {
    ch.close();
    mem.close();
  }
});

test('another process opening the file takes the mapping away first; same data through system calls; mapped again once it is closed', { skip }, async () => {
  const path = shmFile(128 * 1024);
  const b = bdev({ filename: path });
  const ch = new UringChannel(b.channelSpec());
  const mem = new MappedMemory(1 << 16);
  try {
    assert.equal(b.mapped, true, b.mapReason);
    const sg = mem.sg([[0, 4096]]);
    fillPattern(mem.bytes.subarray(0, 4096), 5);
    assert.deepEqual(run(ch, (w) => ch.write(16, 8, sg, 0, w)), [BDEV_OK]);
    assert.equal(ch.mappedCompletions, 1);
    // Another process holds the file open for a moment (reading it).
    const t0 = performance.now();
    const holder = other('sh', ['-c', `exec 3<"${path}"; sleep 0.4`]);
    await until(() => !b.mapped, 'the lease is broken', WAIT_MS);
    const breakMs = performance.now() - t0;
    assert.match(b.mapReason, /another process/);
    mem.bytes.fill(0, 0, 4096);
    assert.deepEqual(run(ch, (w) => ch.read(16, 8, sg, 0, w)), [BDEV_OK]);
    assert.equal(findPatternMismatch(mem.bytes.subarray(0, 4096), 5), -1, 'what went in through the mapping reads back through pread');
    assert.equal(ch.mappedCompletions, 1, 'not through the mapping while unleased');
    assert.equal(await holder.exited, 0);
    // The lease is asked for again every 100 ms here.
    await until(() => b.mapped, 'the file is mapped again', WAIT_MS);
    assert.deepEqual(run(ch, (w) => ch.read(16, 8, sg, 0, w)), [BDEV_OK]);
    assert.equal(ch.mappedCompletions, 2);
    assert.ok(breakMs < 5000, `the opener was let go after ${breakMs.toFixed(0)} ms`);
  } finally {
    ch.close();
    b.destroy();
    mem.close();
  }
});

test('a truncate by another process waits for the mapping to go: reads past the new end fail with EIO (no SIGBUS)', { skip }, async () => {
  const path = shmFile(256 * 1024, 0x22);
  const b = bdev({ filename: path });
  const ch = new UringChannel(b.channelSpec());
  const mem = new MappedMemory(1 << 16);
  try {
    assert.equal(b.mapped, true, b.mapReason);
    // dd opens the file (blocking: it waits for the lease to go) and truncates it to its seek
    // offset. (coreutils' truncate opens with O_NONBLOCK: it would fail with EAGAIN instead.)
    const t = other('dd', ['if=/dev/null', `of=${path}`, 'bs=1', 'seek=8192', 'count=0', 'status=none']);
    assert.equal(await t.exited, 0);
    assert.equal(statSync(path).size, 8192);
    // Without the lease this read would touch a mapped page past the end of the file: SIGBUS.
    assert.deepEqual(run(ch, (w) => ch.read(256, 8, mem.sg([[0, 4096]]), 0, w)), [BDEV_EIO]);
    assert.deepEqual(run(ch, (w) => ch.read(0, 8, mem.sg([[0, 4096]]), 0, w)), [BDEV_OK]);
    assert.equal(mem.bytes[0], 0x22);
    assert.equal(ch.mappedCompletions, 0);
    // Retried under the lease: too short to map now.
    await until(() => /holds 8192 bytes/.test(b.mapReason), 'the retry saw the size', WAIT_MS);
    assert.equal(b.mapped, false);
  } finally {
    ch.close();
    b.destroy();
    mem.close();
  }
});

test('a sparse file, and mmap: false, are not mapped', { skip }, () => {
  const sparse = bdev({ filename: shmFile(1 << 20, 0x33, true) });
  try {
    assert.equal(sparse.mapped, false);
    assert.match(sparse.mapReason, /had holes/);
    assert.equal(sparse.channelSpec().mapGate, null, 'its channels punch holes on UNMAP');
  } finally {
    sparse.destroy();
  }
  const off = bdev({ filename: shmFile(64 * 1024), mmap: false });
  assert.equal(off.mapped, false);
  assert.equal(off.mapReason, '');
  assert.equal(off.channelSpec().mapGate, null);
  assert.equal(off.channelSpec().sharedFd, -1);
  off.destroy();
});

test('opening the file again from this thread lets go of the lease first (no wait for the break timeout)', { skip }, () => {
  const path = shmFile(64 * 1024);
  const first = bdev({ filename: path });
  assert.equal(first.mapped, true);
  const t0 = performance.now();
  const second = bdev({ filename: path, name: 'm1' });
  const ms = performance.now() - t0;
  try {
    assert.ok(ms < 2000, `second open took ${ms.toFixed(0)} ms`);
    assert.equal(first.mapped, false);
    assert.match(second.mapReason, /open elsewhere/, 'the first bdev still has the file open');
  } finally {
    first.destroy();
    second.destroy();
  }
});

test('a read-only bdev holds a write lease too: even a reader (which could open with O_TRUNC) takes the mapping away', { skip }, async () => {
  const path = shmFile(64 * 1024, 0x44);
  const b = bdev({ filename: path, readonly: true, flavor: AIO_MODULE });
  try {
    assert.equal(b.mapped, true, b.mapReason);
    const r = other('sh', ['-c', `exec 3<"${path}"`]);
    assert.equal(await r.exited, 0);
    await until(() => !b.mapped, 'the reader broke the lease', WAIT_MS);
  } finally {
    b.destroy();
  }
});

test('unmap on a sparse tmpfs file still punches holes (the file stays thin)', { skip }, () => {
  const path = shmFile(4 << 20, 0x55, true);
  const b = bdev({ filename: path });
  const ch = new UringChannel(b.channelSpec());
  const mem = new MappedMemory(1 << 16);
  try {
    const sg = mem.sg([[0, 65536]]);
    mem.bytes.fill(0x66, 0, 65536);
    assert.deepEqual(run(ch, (w) => ch.write(2048, 128, sg, 0, w)), [BDEV_OK]);
    const before = statSync(path).blocks;
    assert.deepEqual(run(ch, (w) => ch.unmap(0, 8192, w)), [BDEV_OK]);
    const after = statSync(path).blocks;
    assert.ok(after < before, `blocks ${before} -> ${after}: memory given back`);
    assert.deepEqual(run(ch, (w) => ch.read(2048, 128, sg, 0, w)), [BDEV_OK]);
    assert.ok(mem.bytes.subarray(0, 65536).every((x) => x === 0), 'unmapped blocks read zeroes');
  } finally {
    ch.close();
    b.destroy();
    mem.close();
  }
});

test('a channel in a worker thread duplicates the fd, maps the file, and sees the main thread\'s writes', { skip }, async () => {
  const path = shmFile(32 * 512);
  const b = bdev({ filename: path });
  const ch = new UringChannel(b.channelSpec());
  const mem = new MappedMemory(1 << 16);
  try {
    const reply = await exchangeWithPeer(ch, b.channelSpec(), mem);
    assert.equal(reply.mapped, 2, 'the worker read and wrote through its mapping');
    assert.equal(b.mapped, true, 'the worker did not break the lease');
  } finally {
    ch.close();
    b.destroy();
    mem.close();
  }
});
