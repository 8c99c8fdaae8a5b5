// GET_INFLIGHT_FD / SET_INFLIGHT_FD (INFLIGHT_SHMFD): the region the back-end hands out, and the
// messages it refuses.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { closeFd } from '../../../src/sys/fd.ts';
import * as M from '../../../src/vhost-user/message.ts';
import * as T from '../../../src/vhost-user/message-types.ts';
import { inflightQueueBytes } from '../../../src/virtio/split-inflight.ts';
import { closeLeftovers, harness, memfd, PROTOCOL, qemuConnect, qemuStart } from './connection-harness.ts';
import { u64 } from './test-frontend.ts';

after(closeLeftovers);

test('the region QEMU gets is handed to the device with its shape; a second start hands it again', async () => {
  const h = harness();
  await qemuConnect(h);
  await qemuStart(h);
  const sets = h.device.calls.flatMap((c) => (c.op === 'setInflight' ? [c] : []));
  assert.deepEqual(sets, [{ op: 'setInflight', region: { mmapSize: 4 * inflightQueueBytes(128), mmapOffset: 0, numQueues: 4, queueSize: 128 }, fileSize: 4 * inflightQueueBytes(128) }]);
});

test('SET_INFLIGHT_FD with a bad shape, no fd or too small a region fails and the connection stays; a bad GET_INFLIGHT_FD hangs up', async () => {
  const h = harness();
  await qemuConnect(h);
  const { fe } = h;
  const ask = async (d: M.InflightDesc): Promise<number> => {
    fe.send(T.VHOST_USER_GET_INFLIGHT_FD, M.encodeInflight(d));
    const r = await fe.reply(T.VHOST_USER_GET_INFLIGHT_FD).catch(() => null);
    return r === null ? -1 : r.fds.length;
  };
  assert.equal(await fe.call(T.VHOST_USER_SET_FEATURES, u64(h.device.features | PROTOCOL)), 0n);
  const good = { mmapSize: 2 * inflightQueueBytes(64), mmapOffset: 0, numQueues: 2, queueSize: 64 };
  assert.equal(await fe.call(T.VHOST_USER_SET_INFLIGHT_FD, M.encodeInflight(good)), 1n, 'no fd');
  assert.equal(await fe.call(T.VHOST_USER_SET_INFLIGHT_FD, M.encodeInflight({ ...good, mmapSize: 64 }), [memfd(h, 4096)]), 1n, 'too small for 2 queues of 64');
  assert.equal(await fe.call(T.VHOST_USER_SET_INFLIGHT_FD, M.encodeInflight({ ...good, numQueues: 5 }), [memfd(h, 65536)]), 1n, 'more queues than the device has');
  assert.equal(await fe.call(T.VHOST_USER_SET_INFLIGHT_FD, M.encodeInflight({ ...good, queueSize: 0 }), [memfd(h, 65536)]), 1n, 'queue size 0');
  assert.equal(await fe.call(T.VHOST_USER_SET_INFLIGHT_FD, M.encodeInflight({ ...good, mmapOffset: 100 }), [memfd(h, 65536)]), 1n, 'unaligned offset');
  assert.equal(h.device.calls.filter((c) => c.op === 'setInflight').length, 0);
  assert.equal(await fe.call(T.VHOST_USER_SET_INFLIGHT_FD, M.encodeInflight(good), [memfd(h, good.mmapSize)]), 0n);
  assert.equal(h.conn.closed, false);
  assert.equal(await ask({ ...good, numQueues: 0 }), -1, 'GET_INFLIGHT_FD for 0 queues has no failure reply: the back-end hangs up');
  assert.equal(h.conn.closed, true);
});

test('GET_INFLIGHT_FD gives a zeroed region of the size it announces', async () => {
  const h = harness();
  await qemuConnect(h);
  h.fe.send(T.VHOST_USER_GET_INFLIGHT_FD, M.encodeInflight({ mmapSize: 0, mmapOffset: 0, numQueues: 3, queueSize: 256 }));
  const r = await h.fe.reply(T.VHOST_USER_GET_INFLIGHT_FD);
  const d = M.decodeInflight(r.payload);
  assert.deepEqual(d, { mmapSize: 3 * inflightQueueBytes(256), mmapOffset: 0, numQueues: 3, queueSize: 256 });
  const bytes = readFileSync(`/proc/self/fd/${r.fds[0]}`);
  assert.equal(bytes.length, d.mmapSize);
  assert.equal(bytes.every((b) => b === 0), true);
  closeFd(r.fds[0]);
});
