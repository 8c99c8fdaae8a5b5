import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { socketPair } from '../../../src/sys/unix-socket.ts';
import { closeFd } from '../../../src/sys/fd.ts';
import { eventfdDrain, eventfdSignal } from '../../../src/sys/eventfd.ts';
import * as M from '../../../src/vhost-user/message.ts';
import * as T from '../../../src/vhost-user/message-types.ts';
import { closeLeftovers, PROTOCOL, harness, eventfd, memfd, REGION0, REGION1, ringAddr, qemuConnect, qemuStart, startSetups } from './connection-harness.ts';
import { TestFrontEnd, hex, state, u64 } from './test-frontend.ts';

after(closeLeftovers);

test('QEMU 10 connect/start/stop sequence drives the device', async () => {
  const h = harness();
  const calls = await qemuConnect(h);
  const kicks = await qemuStart(h);
  const d = h.device;
  const features = d.features | PROTOCOL;
  assert.deepEqual(d.ops(), ['connected', 'setFeatures', 'setInflight', 'setFeatures', 'setMemory', 'setMemory', 'startRing(2)', 'startRing(3)']);
  const mems = d.calls.flatMap((c) => (c.op === 'setMemory' ? [c] : []));
  assert.deepEqual(mems[0].regions, [REGION0]);
  assert.deepEqual(mems[1].regions, [REGION0, REGION1]);
  assert.deepEqual(mems[1].fileSizes, [0x10000, 0x20000]);
  const [s2, s3] = startSetups(d);
  const a2 = ringAddr(2);
  assert.deepEqual({ ...s2, kickFd: 0, callFd: 0 }, {
    index: 2, size: 128, descUserAddr: a2.descUserAddr, availUserAddr: a2.availUserAddr, usedUserAddr: a2.usedUserAddr,
    logGuestAddr: a2.logGuestAddr, addrFlags: 0, lastAvailIdx: 0, kickFd: 0, callFd: 0, features,
  });
  assert.equal(s3.index, 3);
  assert.equal(s3.lastAvailIdx, 5);
  // The setup's fds are the front-end's eventfds: a kick shows up on kickFd, a call on the test's fd.
  eventfdSignal(kicks[0]);
  assert.equal(eventfdDrain(s2.kickFd), 1);
  eventfdSignal(s3.callFd);
  assert.equal(eventfdDrain(calls[3]), 1);
  assert.equal(h.conn.runningRings, 2);

  // Stop: ENABLE(0) for all queues, then GET_VRING_BASE per started queue.
  d.clear();
  d.stopIndex.set(2, 77);
  d.stopIndex.set(3, 9);
  for (let q = 0; q < 4; q++) assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_ENABLE, state(q, 0)), 0n);
  assert.deepEqual(d.ops(), ['stopRing(2)', 'stopRing(3)']);
  h.fe.send(T.VHOST_USER_GET_VRING_BASE, state(2, 0));
  assert.deepEqual((await h.fe.reply(T.VHOST_USER_GET_VRING_BASE)).payload, state(2, 77));
  h.fe.send(T.VHOST_USER_GET_VRING_BASE, state(3, 0));
  assert.deepEqual((await h.fe.reply(T.VHOST_USER_GET_VRING_BASE)).payload, state(3, 9));
  assert.deepEqual(d.ops(), ['stopRing(2)', 'stopRing(3)']);
  assert.equal(h.conn.runningRings, 0);
  await h.finish();
  assert.deepEqual(d.ops(), ['stopRing(2)', 'stopRing(3)', 'disconnected']);
});

test('GET_VRING_BASE stops a running ring and replies the index the device returns', async () => {
  const h = harness();
  await qemuConnect(h);
  await qemuStart(h);
  h.device.clear();
  h.device.stopIndex.set(3, 0x1234);
  h.device.stopDelayMs = 20; // the device drains in-flight requests before it lets go
  h.fe.send(T.VHOST_USER_GET_VRING_BASE, state(3, 0));
  const r = await h.fe.reply(T.VHOST_USER_GET_VRING_BASE);
  assert.deepEqual(r.payload, hex('03000000 34120000'));
  assert.deepEqual(h.device.ops(), ['stopRing(3)']);
  // The ring needs a new KICK before it runs again; with it, it restarts from the returned index.
  h.device.stopDelayMs = 0;
  const kick = eventfd(h);
  h.fe.send(T.VHOST_USER_SET_VRING_KICK, u64(3), { fds: [kick] });
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_ENABLE, state(3, 1)), 0n);
  const setups = startSetups(h.device);
  assert.equal(setups.length, 1);
  assert.equal(setups[0].lastAvailIdx, 0x1234);
  await h.finish();
});

test('without PROTOCOL_FEATURES a ring runs as soon as it is kicked', async () => {
  const h = harness();
  const { fe } = h;
  fe.send(T.VHOST_USER_SET_FEATURES, u64(1n << 32n));
  fe.send(T.VHOST_USER_SET_MEM_TABLE, M.encodeMemTable([REGION0]), { fds: [memfd(h, 0x10000)] });
  fe.send(T.VHOST_USER_SET_VRING_NUM, state(0, 256));
  fe.send(T.VHOST_USER_SET_VRING_ADDR, M.encodeVringAddr(ringAddr(0)));
  fe.send(T.VHOST_USER_SET_VRING_KICK, u64(0x100)); // no fd: the front-end wants polling
  fe.send(T.VHOST_USER_GET_FEATURES);
  await fe.replyU64(T.VHOST_USER_GET_FEATURES);
  assert.deepEqual(h.device.ops(), ['connected', 'setFeatures', 'setMemory', 'startRing(0)']);
  const [s] = startSetups(h.device);
  assert.equal(s.kickFd, -1);
  assert.equal(s.callFd, -1);
  assert.equal(s.size, 256);
  await h.finish();
  assert.deepEqual(h.device.ops().slice(-2), ['stopRing(0)', 'disconnected']);
});

test('RESET_DEVICE stops rings, resets the device, keeps memory table and protocol features', async () => {
  const h = harness();
  await qemuConnect(h);
  await qemuStart(h);
  h.device.clear();
  // REPLY_ACK still holds after the reset (QEMU does not renegotiate it).
  assert.equal(await h.fe.call(T.VHOST_USER_RESET_DEVICE), 0n);
  assert.deepEqual(h.device.ops(), ['stopRing(2)', 'stopRing(3)', 'reset']);
  assert.equal(h.conn.protocolFeatures, T.IMPLEMENTED_PROTOCOL_FEATURES);
  h.fe.send(T.VHOST_USER_GET_STATUS);
  assert.equal(await h.fe.replyU64(T.VHOST_USER_GET_STATUS), 0n);
  // Rings are back to stopped and disabled: ENABLE alone does not start them.
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_ENABLE, state(2, 1)), 0n);
  assert.equal(h.conn.runningRings, 0);
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_ENABLE, state(2, 0)), 0n);
  // The memory table is still there: QEMU removes a region it sent before the reset.
  h.device.clear();
  assert.equal(await h.fe.call(T.VHOST_USER_REM_MEM_REG, M.encodeMemRegionMsg(REGION0)), 0n);
  const mem = h.device.calls[0];
  assert.equal(mem.op, 'setMemory');
  assert.deepEqual(mem.op === 'setMemory' && mem.regions, [REGION1]);
  // A full restart works without resending the table or the call fds (QEMU sends only the difference).
  assert.equal(await h.fe.call(T.VHOST_USER_ADD_MEM_REG, M.encodeMemRegionMsg(REGION0), [memfd(h, 0x10000)]), 0n);
  h.device.clear();
  await qemuStart(h, [0, 0], false);
  assert.deepEqual(h.device.ops(), ['setFeatures', 'setInflight', 'setFeatures', 'startRing(2)', 'startRing(3)']);
  const setups = startSetups(h.device);
  assert.deepEqual(setups.map((s) => s.index), [2, 3]);
  assert.ok(setups.every((s) => s.callFd >= 0), 'call fds survive RESET_DEVICE');
  await h.finish();
});

test('call fd changes on a running ring go to the device; a new kick restarts the ring', async () => {
  const h = harness();
  await qemuConnect(h);
  await qemuStart(h);
  const d = h.device;
  d.clear();
  const call = eventfd(h);
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_CALL, u64(2), [call]), 0n);
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_CALL, u64(3 | 0x100)), 0n);
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_CALL, u64(1), [eventfd(h)]), 0n); // ring 1 does not run
  const changes = d.calls.flatMap((c) => (c.op === 'setRingCallFd' ? [c] : []));
  assert.equal(changes.length, 2);
  assert.equal(changes[0].index, 2);
  eventfdSignal(changes[0].fd);
  assert.equal(eventfdDrain(call), 1);
  assert.deepEqual(changes[1], { op: 'setRingCallFd', index: 3, fd: -1 });

  d.clear();
  d.stopIndex.set(2, 40);
  const kick = eventfd(h);
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_KICK, u64(2), [kick]), 0n);
  assert.deepEqual(d.ops(), ['stopRing(2)', 'startRing(2)']);
  const [s] = startSetups(d);
  assert.equal(s.lastAvailIdx, 40);
  eventfdSignal(kick);
  assert.equal(eventfdDrain(s.kickFd), 1);
  // SET_VRING_NUM on a running ring is refused; SET_VRING_ADDR restarts it (logging toggles).
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_NUM, state(2, 64)), 1n);
  d.clear();
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_ADDR, M.encodeVringAddr({ ...ringAddr(2), flags: 1 })), 0n);
  assert.deepEqual(d.ops(), ['stopRing(2)', 'startRing(2)']);
  assert.equal(startSetups(d)[0].addrFlags, 1);
  await h.finish();
});

test('a device that cannot start a ring fails the message; the ring stays stopped', async () => {
  const h = harness();
  await qemuConnect(h);
  const { fe } = h;
  assert.equal(await fe.call(T.VHOST_USER_SET_FEATURES, u64(h.device.features | PROTOCOL)), 0n);
  fe.send(T.VHOST_USER_SET_VRING_NUM, state(2, 128));
  fe.send(T.VHOST_USER_SET_VRING_ADDR, M.encodeVringAddr(ringAddr(2)));
  assert.equal(await fe.call(T.VHOST_USER_SET_VRING_KICK, u64(2), [eventfd(h)]), 0n);
  h.device.failStart = true;
  assert.equal(await fe.call(T.VHOST_USER_SET_VRING_ENABLE, state(2, 1)), 1n);
  assert.equal(h.conn.runningRings, 0);
  h.device.failStart = false;
  assert.equal(await fe.call(T.VHOST_USER_SET_VRING_ENABLE, state(2, 1)), 0n);
  assert.equal(h.conn.runningRings, 1);
  await h.finish();
  assert.deepEqual(h.device.ops().slice(-3), ['startRing(2)', 'stopRing(2)', 'disconnected']);
});

test('disconnect in the middle of a sequence stops running rings and releases everything', async () => {
  const h = harness();
  await qemuConnect(h);
  await qemuStart(h);
  h.device.clear();
  // Half a message is in flight when the front-end goes away.
  h.fe.sendRaw(hex('02000000 01000000'), [eventfd(h)]);
  await h.finish();
  assert.deepEqual(h.device.ops(), ['stopRing(2)', 'stopRing(3)', 'disconnected']);
  assert.match(h.closedReason() ?? '', /middle of a message/);
});

test('close() from the back-end side tears down and the front-end sees EOF', async () => {
  const h = harness();
  await qemuConnect(h);
  await qemuStart(h);
  h.device.clear();
  await h.conn.close('controller deleted');
  assert.deepEqual(h.device.ops(), ['stopRing(2)', 'stopRing(3)', 'disconnected']);
  await h.fe.closedByPeer();
  assert.equal(h.closedReason(), 'controller deleted');
  await h.finish();
});

test('back-end requests go out on the SET_BACKEND_REQ_FD socket', async () => {
  const h = harness();
  assert.equal(h.conn.sendBackendRequest(T.VHOST_USER_BACKEND_CONFIG_CHANGE_MSG), false);
  const [ours, theirs] = socketPair();
  h.fe.send(T.VHOST_USER_SET_BACKEND_REQ_FD, new Uint8Array(0), { fds: [theirs] });
  closeFd(theirs);
  h.fe.send(T.VHOST_USER_GET_FEATURES);
  await h.fe.replyU64(T.VHOST_USER_GET_FEATURES);
  assert.equal(h.conn.sendBackendRequest(T.VHOST_USER_BACKEND_CONFIG_CHANGE_MSG), true);
  const channel = new TestFrontEnd(ours);
  const m = await channel.read();
  assert.deepEqual([m.request, m.flags, m.size], [2, 1, 0]);
  channel.close();
  await h.finish();
});

test('messages sent back to back wait for the device call in progress', async () => {
  const h = harness();
  await qemuConnect(h);
  await qemuStart(h);
  const d = h.device;
  d.clear();
  d.stopDelayMs = 15;
  d.stopIndex.set(2, 11);
  d.stopIndex.set(3, 12);
  h.fe.send(T.VHOST_USER_SET_VRING_ENABLE, state(2, 0));
  h.fe.send(T.VHOST_USER_SET_VRING_ENABLE, state(3, 0));
  h.fe.send(T.VHOST_USER_GET_VRING_BASE, state(2, 0));
  h.fe.send(T.VHOST_USER_GET_VRING_BASE, state(3, 0));
  assert.deepEqual((await h.fe.reply(T.VHOST_USER_GET_VRING_BASE)).payload, state(2, 11));
  assert.deepEqual((await h.fe.reply(T.VHOST_USER_GET_VRING_BASE)).payload, state(3, 12));
  assert.deepEqual(d.ops(), ['stopRing(2)', 'stopRing(3)']);
  await h.finish();
});
