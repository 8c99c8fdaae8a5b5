// The NBD client handshake against byte streams of the kinds servers send: fixed newstyle with
// NBD_OPT_GO and structured replies, the NBD_OPT_EXPORT_NAME fallback, refusals with their
// codes, and malformed greetings and replies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NbdHandshake } from '../../../src/bdev/modules/nbd-handshake.ts';

const NBDMAGIC = Buffer.from('NBDMAGIC');
const IHAVEOPT = Buffer.from('IHAVEOPT');

function greeting(flags: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(flags);
  return Buffer.concat([NBDMAGIC, IHAVEOPT, b]);
}

function optReply(opt: number, type: number, payload = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(20);
  h.writeBigUInt64BE(0x0003e889045565a9n, 0);
  h.writeUInt32BE(opt, 8);
  h.writeUInt32BE(type, 12);
  h.writeUInt32BE(payload.length, 16);
  return Buffer.concat([h, payload]);
}

function infoExport(size: bigint, flags: number): Buffer {
  const p = Buffer.alloc(12);
  p.writeUInt16BE(0, 0);
  p.writeBigUInt64BE(size, 2);
  p.writeUInt16BE(flags, 10);
  return optReply(7, 3, p);
}

function infoBlockSize(min: number, pref: number, max: number): Buffer {
  const p = Buffer.alloc(14);
  p.writeUInt16BE(3, 0);
  p.writeUInt32BE(min, 2);
  p.writeUInt32BE(pref, 6);
  p.writeUInt32BE(max, 10);
  return optReply(7, 3, p);
}

/** Runs the handshake over `server`, one byte at a time; returns it and what the client sent. */
function run(name: string, server: Buffer): { hs: NbdHandshake; sent: Buffer } {
  const hs = new NbdHandshake(name);
  const sent: Buffer[] = [];
  for (let i = 0; i < server.length && !hs.done && !hs.failed; i++) {
    hs.feed(server.subarray(i, i + 1));
    const o = hs.takeOutput();
    if (o) sent.push(o);
  }
  return { hs, sent: Buffer.concat(sent) };
}

test('nbd handshake: fixed newstyle, structured replies, NBD_OPT_GO with block sizes', () => {
  const server = Buffer.concat([greeting(3), optReply(8, 1), infoBlockSize(512, 4096, 1 << 20), infoExport(1n << 30n, 0x1 | 0x4 | 0x20 | 0x100), optReply(7, 1)]);
  const { hs, sent } = run('disk', server);
  assert.equal(hs.failed, null);
  assert.equal(hs.done, true);
  assert.deepEqual(hs.info, { sizeBytes: 1 << 30, flags: 0x125, minBlock: 512, preferredBlock: 4096, maxPayload: 1 << 20, structuredReplies: true, exportNameFallback: false });
  // Client flags (fixed newstyle + no zeroes), NBD_OPT_STRUCTURED_REPLY, NBD_OPT_GO "disk" asking for block sizes.
  assert.equal(sent.readUInt32BE(0), 3);
  assert.equal(sent.readUInt32BE(4 + 8), 8);
  const go = 4 + 16;
  assert.equal(sent.readUInt32BE(go + 8), 7);
  assert.equal(sent.readUInt32BE(go + 12), 4 + 4 + 2 + 2);
  assert.equal(sent.subarray(go + 20, go + 24).toString(), 'disk');
  assert.equal(sent.readUInt16BE(go + 26), 3);
});

test('nbd handshake: a server without NBD_OPT_GO or without fixed newstyle gets NBD_OPT_EXPORT_NAME', () => {
  const tail = Buffer.alloc(10);
  tail.writeBigUInt64BE(4096n * 100n, 0);
  tail.writeUInt16BE(0x3, 8);
  // Fixed newstyle, GO unsupported, NO_ZEROES: 10 bytes.
  let r = run('x', Buffer.concat([greeting(3), optReply(8, 0x80000001), optReply(7, 0x80000001), tail]));
  assert.equal(r.hs.done, true);
  assert.equal(r.hs.info.exportNameFallback, true);
  assert.equal(r.hs.info.sizeBytes, 409600);
  assert.equal(r.hs.info.flags & 2, 2);
  // No fixed newstyle, no NO_ZEROES: 10 bytes then 124 zeroes, and no option but EXPORT_NAME is sent.
  r = run('x', Buffer.concat([greeting(0), tail, Buffer.alloc(124)]));
  assert.equal(r.hs.done, true);
  assert.equal(r.sent.readUInt32BE(0), 0);
  assert.equal(r.sent.readUInt32BE(4 + 8), 1);
  // A server that closes after EXPORT_NAME has no such export.
  const hs = new NbdHandshake('gone');
  hs.feed(greeting(0));
  hs.closed();
  assert.equal(hs.failed?.code, 'NBD_EXPORT_NOT_FOUND');
});

test('nbd handshake: refusals have their own codes and the client aborts cleanly', () => {
  const cases: [number, string][] = [
    [0x80000006, 'NBD_EXPORT_NOT_FOUND'],
    [0x80000002, 'NBD_REFUSED'],
    [0x80000005, 'NBD_TLS_REQUIRED'],
    [0x80000007, 'NBD_SHUTDOWN'],
    [0x80000003, 'NBD_OPTION_FAILED'],
  ];
  for (const [type, code] of cases) {
    const { hs, sent } = run('d', Buffer.concat([greeting(3), optReply(8, 1), optReply(7, type, Buffer.from('why not'))]));
    assert.equal(hs.failed?.code, code);
    assert.match(hs.failed?.message ?? '', /why not/);
    // The last thing sent is NBD_OPT_ABORT.
    assert.equal(sent.readUInt32BE(sent.length - 8), 2);
  }
});

test('nbd handshake: malformed servers fail with NBD_PROTOCOL', () => {
  const bad: [string, Buffer][] = [
    ['not NBD', Buffer.from('HTTP/1.1 200 OK\r\n\r\n')],
    ['oldstyle', Buffer.concat([NBDMAGIC, Buffer.from('0000420281861253', 'hex'), Buffer.alloc(140)])],
    ['reply to another option', Buffer.concat([greeting(3), optReply(5, 1)])],
    ['GO without export info', Buffer.concat([greeting(3), optReply(8, 1), optReply(7, 1)])],
    ['short export info', Buffer.concat([greeting(3), optReply(8, 1), optReply(7, 3, Buffer.alloc(8)), optReply(7, 1)])],
    ['bad block sizes', Buffer.concat([greeting(3), optReply(8, 1), infoBlockSize(3, 4096, 1 << 20)])],
    ['huge option reply', Buffer.concat([greeting(3), optReply(8, 1, Buffer.alloc(70000))])],
  ];
  for (const [what, server] of bad) {
    const { hs } = run('d', server);
    assert.equal(hs.failed?.code, 'NBD_PROTOCOL', what);
  }
  const zero = run('d', Buffer.concat([greeting(3), optReply(8, 1), infoExport(0n, 1), optReply(7, 1)]));
  assert.equal(zero.hs.failed?.code, 'NBD_BAD_EXPORT');
  assert.throws(() => new NbdHandshake('a'.repeat(5000)), /at most 4096/);
});
