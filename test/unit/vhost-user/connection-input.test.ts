import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeFd } from '../../../src/sys/fd.ts';
import { eventfdCreate } from '../../../src/sys/eventfd.ts';
import { memfdCreate } from '../../../src/sys/memory.ts';
import * as M from '../../../src/vhost-user/message.ts';
import * as T from '../../../src/vhost-user/message-types.ts';
import { closeLeftovers, PROTOCOL, harness, eventfd, memfd, REGION0, REGION1, qemuConnect } from './connection-harness.ts';
import { hex, openFdCount, state, u64, until } from './test-frontend.ts';

after(closeLeftovers);

test('ADD_MEM_REG / REM_MEM_REG keep the table and re-send it whole', async () => {
  const h = harness();
  await qemuConnect(h);
  const { fe, device } = h;
  assert.equal(await fe.call(T.VHOST_USER_ADD_MEM_REG, M.encodeMemRegionMsg(REGION0), [memfd(h, 0x10000)]), 0n);
  assert.equal(await fe.call(T.VHOST_USER_ADD_MEM_REG, M.encodeMemRegionMsg(REGION1), [memfd(h, 0x20000)]), 0n);
  device.clear();
  // Overlapping guest range, file too small, unknown region, missing fd: all refused, table unchanged.
  const overlap = { guestPhysAddr: 0x8000, size: 0x10000, userAddr: 0x7f1000000000, mmapOffset: 0 };
  assert.equal(await fe.call(T.VHOST_USER_ADD_MEM_REG, M.encodeMemRegionMsg(overlap), [memfd(h, 0x10000)]), 1n);
  const big = { guestPhysAddr: 0x200000, size: 0x20000, userAddr: 0x7f2000000000, mmapOffset: 0x1000 };
  assert.equal(await fe.call(T.VHOST_USER_ADD_MEM_REG, M.encodeMemRegionMsg(big), [memfd(h, 0x20000)]), 1n);
  assert.equal(await fe.call(T.VHOST_USER_REM_MEM_REG, M.encodeMemRegionMsg({ ...REGION1, userAddr: 0x7f0000200000 })), 1n);
  assert.equal(await fe.call(T.VHOST_USER_ADD_MEM_REG, M.encodeMemRegionMsg({ ...big, mmapOffset: 0 })), 1n);
  assert.deepEqual(device.ops(), []);
  // REM matches by gpa + size + user address; the mmap offset is ignored and a stray fd is closed.
  assert.equal(await fe.call(T.VHOST_USER_REM_MEM_REG, M.encodeMemRegionMsg({ ...REGION0, mmapOffset: 0x999 }), [eventfd(h)]), 0n);
  assert.equal(await fe.call(T.VHOST_USER_ADD_MEM_REG, M.encodeMemRegionMsg({ ...big, mmapOffset: 0 }), [memfd(h, 0x20000)]), 0n);
  const tables = device.calls.flatMap((c) => (c.op === 'setMemory' ? [c.regions] : []));
  assert.deepEqual(tables, [[REGION1], [REGION1, { ...big, mmapOffset: 0 }]]);
  await h.finish();
});

test('SET_MEM_TABLE: missing fds are rejected and the fds that came are closed', async () => {
  const h = harness();
  await qemuConnect(h);
  const before = openFdCount();
  const one = memfdCreate('one', 0x10000);
  assert.equal(await h.fe.call(T.VHOST_USER_SET_MEM_TABLE, M.encodeMemTable([REGION0, REGION1]), [one]), 1n);
  closeFd(one);
  assert.equal(openFdCount(), before);
  assert.deepEqual(h.device.ops().filter((o) => o === 'setMemory'), []);
  // The same table with both fds is accepted.
  assert.equal(await h.fe.call(T.VHOST_USER_SET_MEM_TABLE, M.encodeMemTable([REGION0, REGION1]), [memfd(h, 0x10000), memfd(h, 0x20000)]), 0n);
  assert.deepEqual(h.device.ops().filter((o) => o === 'setMemory'), ['setMemory']);
  await h.finish();
});

test('extra fds are closed; missing kick fd is refused', async () => {
  const h = harness();
  await qemuConnect(h);
  const before = openFdCount();
  const extra = [eventfdCreate(), eventfdCreate()];
  assert.equal(await h.fe.call(T.VHOST_USER_SET_OWNER, new Uint8Array(0), extra), 0n);
  const polling = eventfdCreate();
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_KICK, u64(0x102), [polling]), 0n); // no-fd bit set, fd ignored
  assert.equal(await h.fe.call(T.VHOST_USER_SET_VRING_KICK, u64(1)), 1n); // fd missing
  for (const f of [...extra, polling]) closeFd(f);
  assert.equal(openFdCount(), before);
  await h.finish();
});

test('bad sizes, bad values and unknown requests fail without hurting the connection', async () => {
  const h = harness();
  await qemuConnect(h);
  const { fe } = h;
  assert.equal(await fe.call(T.VHOST_USER_SET_VRING_NUM, hex('02000000')), 1n);
  assert.equal(await fe.call(T.VHOST_USER_SET_FEATURES, new Uint8Array(16)), 1n);
  assert.equal(await fe.call(T.VHOST_USER_SET_VRING_NUM, state(2, 100)), 1n); // not a power of 2
  assert.equal(await fe.call(T.VHOST_USER_SET_VRING_NUM, state(9, 128)), 1n); // no ring 9
  // Any non-zero value enables (SPDK's initiator sends the ring size), as in rte_vhost and libvhost-user.
  assert.equal(await fe.call(T.VHOST_USER_SET_VRING_ENABLE, state(0, 512)), 0n);
  assert.equal(await fe.call(T.VHOST_USER_SET_VRING_ENABLE, state(0, 0)), 0n);
  assert.equal(await fe.call(T.VHOST_USER_SET_STATUS, u64(0x100)), 1n);
  assert.equal(await fe.call(99, hex('01020304')), 1n);
  assert.equal(await fe.call(T.VHOST_USER_IOTLB_MSG, new Uint8Array(24)), 1n);
  assert.equal(await fe.call(T.VHOST_USER_SET_LOG_BASE, new Uint8Array(16), [memfd(h, 4096)]), 1n);
  // Features: never-offered bits are refused; VERSION_1 and bit 2 are accepted even if not offered.
  h.device.features = 1n << 28n;
  assert.equal(await fe.call(T.VHOST_USER_SET_FEATURES, u64((1n << 28n) | (1n << 40n))), 1n);
  assert.equal(await fe.call(T.VHOST_USER_SET_FEATURES, u64((1n << 28n) | (1n << 32n) | (1n << 2n) | PROTOCOL)), 0n);
  assert.equal(h.conn.features, (1n << 28n) | (1n << 32n) | (1n << 2n) | PROTOCOL);
  // Without NEED_REPLY a failing message gets no reply at all.
  fe.send(T.VHOST_USER_SET_VRING_NUM, hex('02000000'));
  await fe.nothing();
  fe.send(T.VHOST_USER_SET_STATUS, u64(0x0b));
  fe.send(T.VHOST_USER_GET_STATUS);
  assert.equal(await fe.replyU64(T.VHOST_USER_GET_STATUS), 0x0bn);
  assert.equal(h.closedReason(), null);
  await h.finish();
});

test('GET_CONFIG replies 12 + the requested size, or as much as the request carried; a refusal is an empty payload', async () => {
  const h = harness();
  await qemuConnect(h);
  h.fe.send(T.VHOST_USER_GET_CONFIG, M.encodeConfig(4, 20, 0, new Uint8Array(0)));
  const r = await h.fe.reply(T.VHOST_USER_GET_CONFIG);
  assert.equal(r.size, 32);
  assert.deepEqual(r.payload, hex('04000000 14000000 00000000 05060708090a0b0c0d0e0f10 0000000000000000'));
  // SPDK's virtio-user initiator sends the whole struct (12 + 256 bytes) and wants as much back.
  h.fe.send(T.VHOST_USER_GET_CONFIG, M.encodeConfig(0, 8, 0, new Uint8Array(0), 268));
  const spdk = await h.fe.reply(T.VHOST_USER_GET_CONFIG);
  assert.equal(spdk.size, 268);
  assert.deepEqual(spdk.payload.subarray(0, 20), hex('00000000 08000000 00000000 0102030405060708'));
  assert.ok(spdk.payload.subarray(20).every((b) => b === 0));
  h.device.configRefused = true;
  h.fe.send(T.VHOST_USER_GET_CONFIG, M.encodeConfig(0, 8, 0, new Uint8Array(0)));
  assert.equal((await h.fe.reply(T.VHOST_USER_GET_CONFIG)).size, 0);
  assert.equal(await h.fe.call(T.VHOST_USER_SET_CONFIG, M.encodeConfig(0, 1, 0, new Uint8Array([1]))), 1n);
  await h.finish();
});

test('a GET without a failure reply closes the connection; so does a framing error', async () => {
  const h = harness();
  await qemuConnect(h);
  h.fe.send(T.VHOST_USER_GET_VRING_BASE, state(200, 0));
  await h.fe.closedByPeer();
  await until(() => h.closedReason() !== null, 'teardown');
  assert.match(h.closedReason() ?? '', /GET_VRING_BASE/);
  assert.deepEqual(h.device.ops().slice(-1), ['disconnected']);
  await h.finish();

  const v = harness();
  v.fe.sendRaw(hex('01000000 02000000 00000000')); // version 2
  await v.fe.closedByPeer();
  await until(() => v.closedReason() !== null, 'teardown');
  assert.match(v.closedReason() ?? '', /BAD_VERSION/);
  await v.finish();

  const big = harness();
  const fd = eventfdCreate();
  big.fe.sendRaw(hex('05000000 01000000 00200000'), [fd]); // 8 KiB payload announced
  closeFd(fd);
  await big.fe.closedByPeer();
  await until(() => big.closedReason() !== null, 'teardown');
  assert.match(big.closedReason() ?? '', /PAYLOAD_TOO_LARGE/);
  await big.finish();
});

test('a message split across reads keeps the fds that came with its first part', async () => {
  const h = harness();
  await qemuConnect(h);
  const bytes = M.encodeMessage(T.VHOST_USER_ADD_MEM_REG, T.VHOST_USER_VERSION | T.VHOST_USER_NEED_REPLY_MASK, M.encodeMemRegionMsg(REGION0));
  h.fe.sendRaw(bytes.subarray(0, 5), [memfd(h, 0x10000)]);
  await new Promise((r) => setTimeout(r, 10));
  h.fe.sendRaw(bytes.subarray(5, 30));
  await new Promise((r) => setTimeout(r, 10));
  h.fe.sendRaw(bytes.subarray(30));
  assert.equal(await h.fe.replyU64(T.VHOST_USER_ADD_MEM_REG), 0n);
  assert.deepEqual(h.device.ops().slice(-1), ['setMemory']);
  await h.finish();
});

