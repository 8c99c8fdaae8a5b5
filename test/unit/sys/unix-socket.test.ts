import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listenUnix, acceptUnix, connectUnix, recvWithFds, sendWithFds, socketPair } from '../../../src/sys/unix-socket.ts';
import { closeFd, fdSize } from '../../../src/sys/fd.ts';
import { memfdCreate, mmapFd, munmap, viewOf } from '../../../src/sys/memory.ts';
import { eventfdCreate, eventfdDrain, eventfdSignal } from '../../../src/sys/eventfd.ts';
import { Epoll } from '../../../src/sys/epoll.ts';
import { SysError } from '../../../src/sys/errno.ts';

test('fds travel with SCM_RIGHTS and refer to the same memory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-sys-'));
  try {
    const path = join(dir, 's.sock');
    const l = listenUnix(path);
    assert.equal(acceptUnix(l), -1);
    const client = connectUnix(path);
    const server = acceptUnix(l);
    assert.ok(server >= 0);
    const mfd = memfdCreate('t', 8192);
    assert.equal(fdSize(mfd), 8192);
    sendWithFds(client, new Uint8Array([1, 2, 3, 4]), [mfd]);
    const dst = new Uint8Array(16);
    const r = recvWithFds(server, dst, 2, 16);
    assert.ok(r);
    assert.equal(r.bytes, 4);
    assert.deepEqual([...dst.subarray(2, 6)], [1, 2, 3, 4]);
    assert.equal(r.fds.length, 1);
    const a = mmapFd(mfd, 8192);
    const b = mmapFd(r.fds[0], 8192);
    new Uint8Array(viewOf(a, 8192))[100] = 42;
    assert.equal(new Uint8Array(viewOf(b, 8192))[100], 42);
    munmap(a, 8192);
    munmap(b, 8192);
    assert.equal(recvWithFds(server, dst, 0, 16), null);
    closeFd(client);
    const eof = recvWithFds(server, dst, 0, 16);
    assert.equal(eof?.bytes, 0);
    for (const fd of [server, l, mfd, r.fds[0]]) closeFd(fd);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('connect to a missing socket is a typed error', () => {
  assert.throws(() => connectUnix('/nonexistent/x.sock'), (e: unknown) => e instanceof SysError && e.code === 'ENOENT');
});

test('eventfd + epoll wake with the registered token', () => {
  const ep = new Epoll(8);
  const e1 = eventfdCreate();
  const e2 = eventfdCreate();
  ep.add(e1, 7);
  ep.add(e2, 9);
  assert.equal(ep.wait(0), 0);
  eventfdSignal(e2);
  eventfdSignal(e2);
  assert.equal(ep.wait(100), 1);
  assert.equal(ep.tokens[0], 9);
  assert.equal(eventfdDrain(e2), 2);
  assert.equal(eventfdDrain(e2), 0);
  ep.remove(e1);
  ep.close();
  closeFd(e1);
  closeFd(e2);
});

test('socketpair carries many fds and truncation is reported', () => {
  const [a, b] = socketPair();
  const fds = Array.from({ length: 8 }, () => eventfdCreate());
  sendWithFds(a, new Uint8Array([9]), fds);
  const r = recvWithFds(b, new Uint8Array(4), 0, 4);
  assert.equal(r?.fds.length, 8);
  assert.equal(r?.fdsTruncated, false);
  for (const fd of [...fds, ...(r?.fds ?? []), a, b]) closeFd(fd);
});

test('a listening socket file appears only once it accepts: a client that sees it never gets ECONNREFUSED', async () => {
  // bind() creates the file before listen(): without the staging name a client polling for the
  // file got in between in some of these rounds.
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-sys-'));
  const rounds = 2000;
  const path = join(dir, 'appear.sock');
  const shared = new SharedArrayBuffer(16);
  const w = new Int32Array(shared);
  const worker = new Worker(new URL('./socket-appearance-probe.ts', import.meta.url), { workerData: { path, shared, rounds } });
  const exited = new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', resolve);
  });
  try {
    for (let r = 0; r < rounds; r++) {
      Atomics.store(w, 0, r);
      Atomics.notify(w, 0);
      const fd = listenUnix(path);
      // The probe connects (or is refused), then the next round starts from no file.
      while (Atomics.load(w, 1) <= r) Atomics.wait(w, 1, r, 100);
      const client = acceptUnix(fd);
      if (client >= 0) closeFd(client);
      closeFd(fd);
      unlinkSync(path);
    }
    assert.equal(await exited, 0);
    assert.deepEqual({ refused: w[2], connected: w[3] }, { refused: 0, connected: rounds });
    assert.deepEqual(readdirSync(dir), [], 'no staging file left behind');
  } finally {
    await worker.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listenUnix on a path that exists fails like bind (EADDRINUSE) and leaves the file alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-sys-'));
  try {
    const path = join(dir, 'taken.sock');
    const first = listenUnix(path);
    assert.throws(() => listenUnix(path), (e: SysError) => e.code === 'EADDRINUSE' && e.message.includes(path));
    // The first listener still owns the name.
    const c1 = connectUnix(path, false);
    const s1 = acceptUnix(first);
    assert.ok(s1 >= 0, 'the first listener accepts');
    closeFd(s1);
    closeFd(c1);
    closeFd(first);
    assert.ok(existsSync(path));
    assert.deepEqual(readdirSync(dir), ['taken.sock']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
