import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as M from '../../../src/vhost-user/message.ts';
import * as T from '../../../src/vhost-user/message-types.ts';
import { VhostUserProtocolError } from '../../../src/vhost-user/protocol-error.ts';
import { hex } from './test-frontend.ts';

function code(c: string) {
  return (e: unknown) => e instanceof VhostUserProtocolError && e.code === c;
}

const MEM_TABLE_2 = hex(`
  05000000 01000000 48000000
  02000000 00000000
  0000000000000000 00000a0000000000 0000000000 7f0000 0000000000000000
  0000100000000000 0000f03f00000000 0000100000 7f0000 0000100000000000`);

test('SET_MEM_TABLE with two regions: header and payload bytes', () => {
  const h = M.decodeHeader(MEM_TABLE_2.subarray(0, 12));
  assert.deepEqual(h, { request: T.VHOST_USER_SET_MEM_TABLE, flags: 1, size: 72 });
  const payload = MEM_TABLE_2.subarray(12);
  M.validatePayloadSize(h.request, payload);
  const regions = M.decodeMemTable(payload);
  assert.deepEqual(regions, [
    { guestPhysAddr: 0, size: 0xa0000, userAddr: 0x7f0000000000, mmapOffset: 0 },
    { guestPhysAddr: 0x100000, size: 0x3ff00000, userAddr: 0x7f0000100000, mmapOffset: 0x100000 },
  ]);
  assert.deepEqual(M.encodeMessage(T.VHOST_USER_SET_MEM_TABLE, 1, M.encodeMemTable(regions)), MEM_TABLE_2);
});

test('SET_MEM_TABLE size rules: 8 + 32n exactly, at most 8 regions', () => {
  const payload = MEM_TABLE_2.subarray(12);
  assert.throws(() => M.validatePayloadSize(T.VHOST_USER_SET_MEM_TABLE, payload.subarray(0, 71)), code('BAD_SIZE'));
  assert.throws(() => M.validatePayloadSize(T.VHOST_USER_SET_MEM_TABLE, payload.subarray(0, 4)), code('BAD_SIZE'));
  const nine = new Uint8Array(8 + 32 * 9);
  nine[0] = 9;
  assert.throws(() => M.validatePayloadSize(T.VHOST_USER_SET_MEM_TABLE, nine), code('TOO_MANY_REGIONS'));
  const zero = new Uint8Array(8);
  M.validatePayloadSize(T.VHOST_USER_SET_MEM_TABLE, zero);
  assert.deepEqual(M.decodeMemTable(zero), []);
});

const VRING_ADDR = hex(`
  09000000 01000000 28000000
  02000000 01000000
  0010000000 7f0000
  0030000000 7f0000
  0020000000 7f0000
  0030000000000000`);

test('SET_VRING_ADDR: index, flags, then desc, used, avail, log', () => {
  const h = M.decodeHeader(VRING_ADDR.subarray(0, 12));
  assert.deepEqual(h, { request: 9, flags: 1, size: 40 });
  const a = M.decodeVringAddr(VRING_ADDR.subarray(12));
  assert.deepEqual(a, { index: 2, flags: 1, descUserAddr: 0x7f0000001000, usedUserAddr: 0x7f0000003000, availUserAddr: 0x7f0000002000, logGuestAddr: 0x3000 });
  assert.deepEqual(M.encodeMessage(9, 1, M.encodeVringAddr(a)), VRING_ADDR);
  assert.throws(() => M.validatePayloadSize(9, VRING_ADDR.subarray(12, 44)), code('BAD_SIZE'));
  const huge = VRING_ADDR.slice(12);
  huge[15] = 0x80; // desc address bit 63
  assert.throws(() => M.decodeVringAddr(huge), code('BAD_VALUE'));
});

test('GET_CONFIG request and reply bytes', () => {
  const req = hex('18000000 01000000 14000000  00000000 08000000 00000000  0000000000000000');
  const h = M.decodeHeader(req.subarray(0, 12));
  M.validatePayloadSize(h.request, req.subarray(12));
  const c = M.decodeConfig(req.subarray(12));
  assert.equal(c.offset, 0);
  assert.equal(c.size, 8);
  assert.equal(c.flags, 0);
  const reply = M.encodeReply(T.VHOST_USER_GET_CONFIG, M.encodeConfig(0, 8, 0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])));
  assert.deepEqual(reply, hex('18000000 05000000 14000000  00000000 08000000 00000000  0102030405060708'));
  // Short device data is zero-padded to exactly the requested size.
  assert.deepEqual(M.encodeConfig(4, 4, 0, new Uint8Array([9])), hex('04000000 04000000 00000000 09000000'));
  // The payload must hold the size field's bytes, at most 12 + 256 (SPDK's initiator always sends 268).
  assert.throws(() => M.validatePayloadSize(T.VHOST_USER_GET_CONFIG, req.subarray(12, 28)), code('BAD_SIZE'));
  const spdkReq = new Uint8Array(12 + 256);
  spdkReq[4] = 24;
  M.validatePayloadSize(T.VHOST_USER_GET_CONFIG, spdkReq);
  assert.throws(() => M.validatePayloadSize(T.VHOST_USER_GET_CONFIG, new Uint8Array(12 + 257)), code('BAD_SIZE'));
  const big = new Uint8Array(12 + 257);
  big[4] = 1;
  big[5] = 1; // size 257
  assert.throws(() => M.validatePayloadSize(T.VHOST_USER_SET_CONFIG, big), code('BAD_SIZE'));
});

test('replies carry flags exactly 0x5', () => {
  const r = M.encodeReply(T.VHOST_USER_GET_FEATURES, M.encodeU64((1n << 32n) | (1n << 30n)));
  assert.deepEqual(r, hex('01000000 05000000 08000000 0000004001000000'));
  assert.equal(T.VHOST_USER_REPLY_FLAGS, 5);
});

test('GET_INFLIGHT_FD reply is 24 bytes (padded struct)', () => {
  const r = M.encodeReply(T.VHOST_USER_GET_INFLIGHT_FD, M.encodeInflight({ mmapSize: 0, mmapOffset: 0, numQueues: 4, queueSize: 128 }));
  assert.deepEqual(r, hex('1f000000 05000000 18000000 0000000000000000 0000000000000000 0400 8000 00000000'));
  assert.deepEqual(M.decodeInflight(r.subarray(12)), { mmapSize: 0, mmapOffset: 0, numQueues: 4, queueSize: 128 });
  assert.throws(() => M.validatePayloadSize(T.VHOST_USER_GET_INFLIGHT_FD, new Uint8Array(20)), code('BAD_SIZE'));
});

test('ADD_MEM_REG / REM_MEM_REG: u64 padding then one region', () => {
  const p = hex('0000000000000000 0000000001000000 0000100000000000 00000000 007f0000 0000000000000000');
  M.validatePayloadSize(T.VHOST_USER_ADD_MEM_REG, p);
  assert.deepEqual(M.decodeMemRegionMsg(p), { guestPhysAddr: 0x100000000, size: 0x100000, userAddr: 0x7f0000000000, mmapOffset: 0 });
  assert.deepEqual(M.encodeMemRegionMsg(M.decodeMemRegionMsg(p)), p);
  assert.throws(() => M.validatePayloadSize(T.VHOST_USER_REM_MEM_REG, p.subarray(8)), code('BAD_SIZE'));
});

test('SET_VRING_KICK/CALL/ERR payload: index bits 0-7, bit 8 no fd, nothing else', () => {
  assert.deepEqual(M.decodeVringFile(12, hex('0300000000000000')), { index: 3, noFd: false });
  assert.deepEqual(M.decodeVringFile(13, hex('0201000000000000')), { index: 2, noFd: true });
  assert.deepEqual(M.encodeVringFile(2, true), hex('0201000000000000'));
  assert.throws(() => M.decodeVringFile(13, hex('0002000000000000')), code('BAD_VALUE'));
});

test('header validation: version, reply flag, payload limit', () => {
  assert.deepEqual(M.decodeHeader(hex('01000000 09000000 00000000')), { request: 1, flags: 9, size: 0 });
  assert.throws(() => M.decodeHeader(hex('01000000 02000000 00000000')), (e: unknown) => e instanceof VhostUserProtocolError && e.code === 'BAD_VERSION' && e.framing);
  assert.throws(() => M.decodeHeader(hex('01000000 05000000 00000000')), code('BAD_FLAGS'));
  assert.throws(() => M.decodeHeader(hex('05000000 01000000 01100000')), code('PAYLOAD_TOO_LARGE'));
  assert.deepEqual(M.decodeHeader(hex('05000000 01000000 00100000')).size, 4096);
});

test('fixed payload sizes per request', () => {
  const cases: [number, number][] = [
    [T.VHOST_USER_GET_FEATURES, 0],
    [T.VHOST_USER_SET_FEATURES, 8],
    [T.VHOST_USER_SET_VRING_NUM, 8],
    [T.VHOST_USER_GET_VRING_BASE, 8],
    [T.VHOST_USER_SET_VRING_ENABLE, 8],
    [T.VHOST_USER_SET_BACKEND_REQ_FD, 0],
    [T.VHOST_USER_SET_STATUS, 8],
    [T.VHOST_USER_GET_MAX_MEM_SLOTS, 0],
  ];
  for (const [req, size] of cases) {
    M.validatePayloadSize(req, new Uint8Array(size));
    assert.throws(() => M.validatePayloadSize(req, new Uint8Array(size + 4)), code('BAD_SIZE'), T.requestName(req));
  }
});

test('request names and mandatory replies follow the spec', () => {
  assert.equal(T.requestName(21), 'SET_BACKEND_REQ_FD');
  assert.equal(T.requestName(40), 'GET_STATUS');
  assert.equal(T.requestName(99), 'REQUEST_99');
  assert.equal(T.hasMandatoryReply(T.VHOST_USER_GET_VRING_BASE), true);
  assert.equal(T.hasMandatoryReply(T.VHOST_USER_SET_VRING_BASE), false);
  // MQ, REPLY_ACK, BACKEND_REQ, CONFIG, INFLIGHT_SHMFD, RESET_DEVICE, CONFIGURE_MEM_SLOTS, STATUS.
  assert.equal(T.IMPLEMENTED_PROTOCOL_FEATURES, 0x1b229n);
});
