import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
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
