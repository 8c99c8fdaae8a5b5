// channel-wait: which in-flight I/O of a thread is announced by fds (the reactor may sleep on
// it), and the fds handed to the reactor's epoll, once per fd however many channels share it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BdevChannel } from '../../../src/bdev/bdev.ts';
import { inflightAnnouncedByFds, setWakeFdWatcher, trackChannel, untrackChannel } from '../../../src/bdev/channel-wait.ts';

function channel(wakeFds?: number[]): BdevChannel & { busy: number } {
  const ch = {
    name: 'c', blockSize: 512, numBlocks: 8, busy: 0,
    read() {}, write() {}, flush() {}, unmap() {}, writeZeroes() {},
    poll: () => 0,
    inflight: () => ch.busy,
    resize() {}, close() {},
    ...(wakeFds ? { wakeFds } : {}),
  };
  return ch;
}

test('sleeping with I/O in flight only when every busy channel announces completions on an fd', () => {
  const added: number[] = [];
  const removed: number[] = [];
  setWakeFdWatcher({ add: (fd) => added.push(fd), remove: (fd) => removed.push(fd) });
  const rbdA = channel([41]);
  const rbdB = channel([41]);
  const uring = channel();
  trackChannel(rbdA);
  trackChannel(rbdB);
  trackChannel(uring);
  try {
    assert.deepEqual(added, [41], 'a shared fd is watched once');
    assert.equal(inflightAnnouncedByFds(), false, 'nothing in flight: nothing announced');
    rbdA.busy = 3;
    assert.equal(inflightAnnouncedByFds(), true);
    uring.busy = 1;
    assert.equal(inflightAnnouncedByFds(), false, 'a polled channel with I/O keeps the reactor awake');
    uring.busy = 0;
    untrackChannel(rbdA);
    assert.deepEqual(removed, [], 'still watched for the other channel');
    assert.equal(inflightAnnouncedByFds(), false, 'the closed channel no longer counts');
    untrackChannel(rbdB);
    assert.deepEqual(removed, [41]);
    // A watcher installed later gets the fds of channels already open.
    const late = channel([57]);
    trackChannel(late);
    const again: number[] = [];
    setWakeFdWatcher({ add: (fd) => again.push(fd), remove: () => {} });
    assert.deepEqual(again, [57]);
    untrackChannel(late);
  } finally {
    untrackChannel(rbdA);
    untrackChannel(rbdB);
    untrackChannel(uring);
    setWakeFdWatcher(null);
  }
});
