// The NBD reply parser on byte streams a server could send, in any fragmentation: simple and
// structured replies, reads assembled from data and hole chunks in any order, error chunks, and
// the hostile cases (a cookie not in flight, a chunk outside the request, bad magic) that must
// break the stream rather than touch memory or complete the wrong request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NbdReplyParser, type NbdReplyHandler } from '../../../src/bdev/modules/nbd-reply-parser.ts';
import { NbdSlot, OP_READ, OP_WRITE, SLOT_SENT } from '../../../src/bdev/modules/nbd-slot.ts';
import { SgList } from '../../../src/iovec/sg-list.ts';
import { BDEV_EIO, BDEV_ENOSPC } from '../../../src/bdev/bdev.ts';

function slots(n: number): NbdSlot[] {
  return Array.from({ length: n }, (_, i) => new NbdSlot(i));
}

function inFlight(s: NbdSlot, op: number, byteOffset: number, len: number, buf?: Uint8Array): void {
  s.state = SLOT_SENT;
  s.gen = 7;
  s.op = op;
  s.byteOffset = byteOffset;
  s.partOffset = 0;
  s.partLength = len;
  s.byteLength = len;
  s.status = 0;
  s.covered = 0;
  if (buf) {
    const sg = new SgList(2);
    sg.push(buf, 0, buf.length);
    s.sg = sg;
    s.sgOffset = 0;
  }
}

class Recorder implements NbdReplyHandler {
  done: [number, number][] = [];
  shutdown: number[] = [];
  partDone(s: NbdSlot): void {
    this.done.push([s.index, s.status]);
  }
  serverShutdown(s: NbdSlot): void {
    this.shutdown.push(s.index);
  }
}

function simple(err: number, gen: number, idx: number, data?: Uint8Array): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(0x67446698, 0);
  h.writeUInt32BE(err, 4);
  h.writeUInt32BE(gen, 8);
  h.writeUInt32BE(idx, 12);
  return data ? Buffer.concat([h, data]) : h;
}

function chunk(flags: number, type: number, gen: number, idx: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt32BE(0x668e33ef, 0);
  h.writeUInt16BE(flags, 4);
  h.writeUInt16BE(type, 6);
  h.writeUInt32BE(gen, 8);
  h.writeUInt32BE(idx, 12);
  h.writeUInt32BE(payload.length, 16);
  return Buffer.concat([h, payload]);
}

function dataChunk(flags: number, gen: number, idx: number, offset: number, data: Uint8Array): Buffer {
  const p = Buffer.alloc(8 + data.length);
  p.writeBigUInt64BE(BigInt(offset), 0);
  p.set(data, 8);
  return chunk(flags, 1, gen, idx, p);
}

function holeChunk(flags: number, gen: number, idx: number, offset: number, len: number): Buffer {
  const p = Buffer.alloc(12);
  p.writeBigUInt64BE(BigInt(offset), 0);
  p.writeUInt32BE(len, 8);
  return chunk(flags, 2, gen, idx, p);
}

/** Feeds the stream in pieces of `step` bytes. */
function feed(p: NbdReplyParser, stream: Buffer, step: number): boolean {
  for (let o = 0; o < stream.length; o += step) if (!p.feed(stream, o, Math.min(step, stream.length - o))) return false;
  return true;
}

for (const step of [1, 3, 17, 100_000]) {
  test(`nbd reply parser, pieces of ${step} bytes: simple replies, a read with data, errors`, () => {
    const s = slots(4);
    const r = new Recorder();
    const p = new NbdReplyParser(s, r);
    const buf = new Uint8Array(1024);
    inFlight(s[1], OP_READ, 4096, 1024, buf);
    inFlight(s[2], OP_WRITE, 0, 512);
    inFlight(s[3], OP_WRITE, 0, 512);
    const data = new Uint8Array(1024).map((_, i) => i & 0xff);
    const stream = Buffer.concat([simple(0, 7, 2), simple(0, 7, 1, data), simple(28, 7, 3)]);
    assert.equal(feed(p, stream, step), true);
    assert.deepEqual(r.done, [[2, 0], [1, 0], [3, BDEV_ENOSPC]]);
    assert.deepEqual(buf, data);
    assert.equal(p.replies, 3);
  });

  test(`nbd reply parser, pieces of ${step} bytes: a structured read of data and hole chunks out of order`, () => {
    const s = slots(2);
    const r = new Recorder();
    const p = new NbdReplyParser(s, r);
    const buf = new Uint8Array(3000).fill(0xee);
    inFlight(s[1], OP_READ, 1 << 20, 3000, buf);
    const a = new Uint8Array(1000).fill(1);
    const c = new Uint8Array(1000).fill(3);
    const stream = Buffer.concat([dataChunk(0, 7, 1, (1 << 20) + 2000, c), holeChunk(0, 7, 1, (1 << 20) + 1000, 1000), dataChunk(0, 7, 1, 1 << 20, a), chunk(1, 0, 7, 1, Buffer.alloc(0))]);
    assert.equal(feed(p, stream, step), true);
    assert.deepEqual(r.done, [[1, 0]]);
    assert.deepEqual(buf.subarray(0, 1000), a);
    assert.deepEqual(buf.subarray(1000, 2000), new Uint8Array(1000));
    assert.deepEqual(buf.subarray(2000), c);
  });
}

test('nbd reply parser: a structured read that does not cover the request fails with EIO; an error chunk fails it', () => {
  const s = slots(3);
  const r = new Recorder();
  const p = new NbdReplyParser(s, r);
  inFlight(s[1], OP_READ, 0, 2048, new Uint8Array(2048));
  inFlight(s[2], OP_READ, 0, 512, new Uint8Array(512));
  const err = Buffer.alloc(6 + 5);
  err.writeUInt32BE(5, 0);
  err.writeUInt16BE(5, 4);
  err.write('oops!', 6);
  const stream = Buffer.concat([dataChunk(1, 7, 1, 0, new Uint8Array(1024)), chunk(1, 0x8001, 7, 2, err)]);
  assert.equal(p.feed(stream, 0, stream.length), true);
  assert.deepEqual(r.done, [[1, BDEV_EIO], [2, BDEV_EIO]]);
});

test('nbd reply parser: ESHUTDOWN asks for a resend instead of failing the request', () => {
  const s = slots(2);
  const r = new Recorder();
  const p = new NbdReplyParser(s, r);
  inFlight(s[1], OP_WRITE, 0, 512);
  const stream = simple(108, 7, 1);
  assert.equal(p.feed(stream, 0, stream.length), true);
  assert.deepEqual(r.shutdown, [1]);
  assert.deepEqual(r.done, []);
});

test('nbd reply parser: hostile replies break the stream and complete nothing', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['cookie of a free slot', simple(0, 7, 0), /not a request in flight/],
    ['stale generation', simple(0, 6, 1), /not a request in flight/],
    ['index past the table', simple(0, 7, 99), /not a request in flight/],
    ['bad magic', Buffer.alloc(16, 0x41), /bad reply magic/],
    ['data chunk outside the request', dataChunk(1, 7, 1, 4096, new Uint8Array(16)), /outside the request/],
    ['data chunk before the request', dataChunk(1, 7, 1, 0, new Uint8Array(16)), /outside the request/],
    ['hole chunk past the end', holeChunk(1, 7, 1, 8192 + 1000, 100), /outside the request/],
    ['unknown chunk type', chunk(1, 77, 7, 1, Buffer.alloc(4)), /unexpected structured reply chunk type/],
    ['huge error chunk', chunk(1, 0x8001, 7, 1, Buffer.alloc(70000)), /error chunk/],
  ];
  for (const [what, stream, re] of cases) {
    const s = slots(2);
    const r = new Recorder();
    const p = new NbdReplyParser(s, r);
    const buf = new Uint8Array(1024).fill(9);
    inFlight(s[1], OP_READ, 8192, 1024, buf);
    assert.equal(p.feed(stream, 0, stream.length), false, what);
    assert.match(String(p.error), re, what);
    assert.deepEqual(r.done, [], what);
    assert.deepEqual(buf, new Uint8Array(1024).fill(9), `${what}: memory untouched`);
  }
});
