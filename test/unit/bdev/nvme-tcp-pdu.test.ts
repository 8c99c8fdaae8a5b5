// NVMe/TCP PDUs: the host-side encoders' fields, the controller-to-host parser fed whole and one
// byte at a time (same events either way), header and data digests, and the malformed streams it
// must refuse; SPDK's rules for the reconnect timeouts; status mapping; queue ID allocation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c } from '../../../src/blob/crc32c.ts';
import { BDEV_EINVAL, BDEV_EIO, BDEV_ENOSPC, BDEV_ENOTSUP } from '../../../src/bdev/bdev.ts';
import {
  CAPSULE_CMD_HLEN,
  dataOffset,
  encodeCapsuleHeader,
  encodeH2cDataHeader,
  encodeIcReq,
  FLAG_DDGST,
  FLAG_HDGST,
  FLAG_LAST_PDU,
  FLAG_SUCCESS,
  NvmeTcpPduParser,
  PDU_C2H_DATA,
  PDU_C2H_TERM_REQ,
  PDU_CAPSULE_CMD,
  PDU_CAPSULE_RESP,
  PDU_H2C_DATA,
  PDU_ICRESP,
  PDU_R2T,
  type IcRespInfo,
  type NvmeTcpPduHandler,
} from '../../../src/bdev/modules/nvme-tcp-pdu.ts';
import { nvmeStatusName, nvmeStatusRetryable, nvmeStatusToBdev, parseIdentifyNamespace } from '../../../src/bdev/modules/nvme-spec.ts';
import { CTL_MAX_QID, CTL_WORDS, releaseQid, takeQid } from '../../../src/bdev/modules/nvme-shared.ts';
import { checkResiliency } from '../../../src/rpc/nvme-methods.ts';

class Recorder implements NvmeTcpPduHandler {
  events: string[] = [];
  data: number[] = [];
  /** Commands whose C2HData the handler accepts (cid -> data length). */
  reads = new Map<number, number>();
  icResp(i: IcRespInfo): void {
    this.events.push(`ic pfv=${i.pfv} cpda=${i.cpda} hd=${i.headerDigest} dd=${i.dataDigest} max=${i.maxH2cData}`);
  }
  capsuleResp(b: Uint8Array, at: number): void {
    const cid = b[at + 12] | (b[at + 13] << 8);
    const status = b[at + 14] | (b[at + 15] << 8);
    this.events.push(`resp cid=${cid} status=${status}`);
  }
  c2hStart(cid: number, off: number, len: number, last: boolean, success: boolean): boolean {
    const n = this.reads.get(cid);
    if (n === undefined || off + len > n) return false;
    this.events.push(`c2h cid=${cid} off=${off} len=${len} last=${last} success=${success}`);
    return true;
  }
  c2hData(b: Uint8Array, at: number, len: number): void {
    for (let i = 0; i < len; i++) this.data.push(b[at + i]);
  }
  c2hEnd(): void {
    this.events.push('c2h end');
  }
  r2t(cid: number, ttag: number, off: number, len: number): void {
    this.events.push(`r2t cid=${cid} ttag=${ttag} off=${off} len=${len}`);
  }
  termReq(fes: number, fei: number): void {
    this.events.push(`term fes=${fes} fei=${fei}`);
  }
}

function le32(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset).setUint32(at, v >>> 0, true);
}

function header(type: number, flags: number, hlen: number, pdo: number, plen: number): Uint8Array {
  const b = new Uint8Array(plen);
  b[0] = type;
  b[1] = flags;
  b[2] = hlen;
  b[3] = pdo;
  le32(b, 4, plen);
  return b;
}

function icResp(cpda: number, dgst: number, maxH2c: number): Uint8Array {
  const b = header(PDU_ICRESP, 0, 128, 0, 128);
  b[10] = cpda;
  b[11] = dgst;
  le32(b, 12, maxH2c);
  return b;
}

function capsuleResp(cid: number, status: number, hdgst: boolean): Uint8Array {
  const hd = hdgst ? 4 : 0;
  const b = header(PDU_CAPSULE_RESP, hdgst ? FLAG_HDGST : 0, 24, 0, 24 + hd);
  b[8 + 12] = cid & 0xff;
  b[8 + 13] = cid >> 8;
  b[8 + 14] = status & 0xff;
  b[8 + 15] = status >> 8;
  if (hdgst) le32(b, 24, crc32c(b, 0, 24));
  return b;
}

function c2hData(cid: number, off: number, data: Uint8Array, flags: number, hdgst: boolean, ddgst: boolean, pad = 0): Uint8Array {
  const hd = hdgst ? 4 : 0;
  const pdo = 24 + hd + pad;
  const b = header(PDU_C2H_DATA, flags | (hdgst ? FLAG_HDGST : 0) | (ddgst ? FLAG_DDGST : 0), 24, pdo, pdo + data.length + (ddgst ? 4 : 0));
  b[8] = cid & 0xff;
  b[9] = cid >> 8;
  le32(b, 12, off);
  le32(b, 16, data.length);
  if (hdgst) le32(b, 24, crc32c(b, 0, 24));
  b.set(data, pdo);
  if (ddgst) le32(b, pdo + data.length, crc32c(data));
  return b;
}

function r2t(cid: number, ttag: number, off: number, len: number, hdgst: boolean): Uint8Array {
  const b = header(PDU_R2T, hdgst ? FLAG_HDGST : 0, 24, 0, 24 + (hdgst ? 4 : 0));
  b[8] = cid;
  b[10] = ttag;
  le32(b, 12, off);
  le32(b, 16, len);
  if (hdgst) le32(b, 24, crc32c(b, 0, 24));
  return b;
}

const concat = (parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));

function parseAll(stream: Uint8Array, digests: boolean, byteByByte: boolean): { rec: Recorder; ok: boolean; error: string | null } {
  const rec = new Recorder();
  rec.reads.set(7, 8192);
  const p = new NvmeTcpPduParser(rec);
  p.headerDigest = digests;
  p.dataDigest = digests;
  let ok = true;
  if (byteByByte) {
    for (let i = 0; i < stream.length && ok; i++) ok = p.feed(stream, i, 1);
  } else ok = p.feed(stream, 0, stream.length);
  return { rec, ok, error: p.error };
}

test('the parser sees the same PDUs fed whole or one byte at a time, with and without digests', () => {
  const data = Uint8Array.from({ length: 6000 }, (_, i) => (i * 7) & 0xff);
  for (const dg of [false, true]) {
    const stream = concat([
      capsuleResp(3, 0, dg),
      c2hData(7, 0, data.subarray(0, 4096), 0, dg, dg),
      c2hData(7, 4096, data.subarray(4096), FLAG_LAST_PDU | FLAG_SUCCESS, dg, dg, 4),
      r2t(9, 5, 8192, 65536, dg),
      capsuleResp(9, 0x0101, dg),
    ]);
    const whole = parseAll(stream, dg, false);
    const bytes = parseAll(stream, dg, true);
    assert.equal(whole.ok, true, String(whole.error));
    assert.deepEqual(bytes.rec.events, whole.rec.events);
    assert.deepEqual(whole.rec.events, [
      'resp cid=3 status=0',
      'c2h cid=7 off=0 len=4096 last=false success=false',
      'c2h end',
      'c2h cid=7 off=4096 len=1904 last=true success=true',
      'c2h end',
      'r2t cid=9 ttag=5 off=8192 len=65536',
      'resp cid=9 status=257',
    ]);
    assert.deepEqual(Uint8Array.from(whole.rec.data), data);
    assert.deepEqual(Uint8Array.from(bytes.rec.data), data);
  }
});

test('ICResp fields, and a C2HTermReq reaches the handler', () => {
  const r = parseAll(concat([icResp(1, 3, 131072)]), false, true);
  assert.deepEqual(r.rec.events, ['ic pfv=0 cpda=1 hd=true dd=true max=131072']);
  const term = header(PDU_C2H_TERM_REQ, 0, 24, 0, 24 + 8);
  term[8] = 2;
  term[10] = 9;
  const t = parseAll(concat([term, capsuleResp(1, 0, false)]), false, false);
  assert.deepEqual(t.rec.events, ['term fes=2 fei=9', 'resp cid=1 status=0']);
});

test('malformed streams are refused with a reason', () => {
  const data = new Uint8Array(512).fill(1);
  const badDigest = c2hData(7, 0, data, FLAG_LAST_PDU, true, true);
  badDigest[badDigest.length - 1] ^= 1;
  const badHeaderDigest = capsuleResp(1, 0, true);
  badHeaderDigest[25] ^= 1;
  const wrongHlen = capsuleResp(1, 0, false);
  wrongHlen[2] = 30;
  const unknownType = header(0x0f, 0, 24, 0, 24);
  const h2cFromController = header(PDU_H2C_DATA, 0, 24, 24, 24 + 8);
  const successNotLast = c2hData(7, 0, data, FLAG_SUCCESS, false, false);
  const outside = c2hData(7, 8000, data, FLAG_LAST_PDU, false, false);
  const unknownCid = c2hData(8, 0, data, FLAG_LAST_PDU, false, false);
  const shortPlen = capsuleResp(1, 0, false);
  le32(shortPlen, 4, 20);
  const cases: [Uint8Array, boolean, RegExp][] = [
    [badDigest, true, /data digest mismatch/],
    [badHeaderDigest, true, /header digest mismatch/],
    [wrongHlen, false, /header length 30/],
    [unknownType, false, /unexpected PDU type 0xf/],
    [h2cFromController, false, /unexpected PDU type 0x6/],
    [successNotLast, false, /SUCCESS but not LAST_PDU/],
    [outside, false, /outside any read in flight/],
    [unknownCid, false, /command 8/],
    [shortPlen, false, /shorter than its header/],
  ];
  for (const [pdu, dg, why] of cases) {
    for (const byByte of [false, true]) {
      const r = parseAll(pdu, dg, byByte);
      assert.equal(r.ok, false, `${why} (byte by byte: ${byByte})`);
      assert.match(String(r.error), why);
    }
  }
});

test('host PDU encoders: ICReq, a command capsule with and without in-capsule data, H2CData', () => {
  const b = new Uint8Array(256);
  const dv = new DataView(b.buffer);
  assert.equal(encodeIcReq(dv, 0, true, false), 128);
  assert.deepEqual([b[0], b[2], dv.getUint32(4, true), b[11]], [0, 128, 128, 1]);
  encodeCapsuleHeader(dv, 0, 0, false, false);
  assert.deepEqual([b[0], b[1], b[2], b[3], dv.getUint32(4, true)], [PDU_CAPSULE_CMD, 0, 72, 0, 72]);
  // In-capsule data with both digests and CPDA 3 (data at a multiple of 16).
  const at = dataOffset(CAPSULE_CMD_HLEN + 4, 3);
  assert.equal(at, 80);
  encodeCapsuleHeader(dv, 0, 4096, true, true, at);
  assert.deepEqual([b[1], b[3], dv.getUint32(4, true)], [FLAG_HDGST | FLAG_DDGST, 80, 80 + 4096 + 4]);
  encodeH2cDataHeader(dv, 0, 17, 3, 8192, 4096, true, false, true, 24);
  assert.deepEqual([b[0], b[1], b[2], b[3], dv.getUint32(4, true), dv.getUint16(8, true), dv.getUint16(10, true), dv.getUint32(12, true), dv.getUint32(16, true)], [
    PDU_H2C_DATA, FLAG_DDGST | FLAG_LAST_PDU, 24, 24, 24 + 4096 + 4, 17, 3, 8192, 4096,
  ]);
});

test("SPDK's rules for ctrlr_loss_timeout_sec, reconnect_delay_sec and fast_io_fail_timeout_sec", () => {
  const good: [number, number, number][] = [[0, 0, 0], [-1, 1, 0], [-1, 1, 30], [10, 1, 0], [10, 2, 10], [10, 10, 10]];
  for (const ok of good) assert.doesNotThrow(() => checkResiliency(...ok), ok.join());
  for (const [bad, why] of [
    [[-2, 1, 0], /-1 \(forever\)/],
    [[0, 1, 0], /must be 0/],
    [[0, 0, 5], /must be 0/],
    [[-1, 0, 0], /reconnect_delay_sec above 0/],
    [[10, 20, 0], /longer than ctrlr_loss_timeout_sec/],
    [[10, 1, 20], /fast_io_fail_timeout_sec 20 is longer/],
    [[10, 5, 2], /shorter than reconnect_delay_sec/],
  ] as const) {
    assert.throws(() => checkResiliency(...(bad as [number, number, number])), (e: unknown) => e instanceof Error && why.test(e.message), bad.join());
  }
});

test('completion status names and the bdev status each maps to', () => {
  const st = (sct: number, sc: number, dnr = false): number => (sct << 9) | (sc << 1) | (dnr ? 0x8000 : 0);
  assert.equal(nvmeStatusToBdev(st(0, 0x80)), BDEV_EINVAL);
  assert.equal(nvmeStatusToBdev(st(0, 0x81)), BDEV_ENOSPC);
  assert.equal(nvmeStatusToBdev(st(0, 0x01)), BDEV_ENOTSUP);
  assert.equal(nvmeStatusToBdev(st(2, 0x81)), BDEV_EIO);
  assert.match(nvmeStatusName(st(2, 0x81)), /UNRECOVERED_READ_ERROR \(sct 0x2, sc 0x81\)/);
  assert.match(nvmeStatusName(st(1, 0x84)), /CONNECT_INVALID_HOST/);
  assert.equal(nvmeStatusRetryable(st(0, 0x08)), true);
  assert.equal(nvmeStatusRetryable(st(0, 0x08, true)), false);
  assert.equal(nvmeStatusRetryable(st(3, 0x00)), true);
  assert.equal(nvmeStatusRetryable(st(0, 0x06)), false);
});

test('Identify Namespace: size, the LBA format in use, identifiers', () => {
  const b = new Uint8Array(4096);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, 2097152n, true);
  b[26] = 1; // format 1
  dv.setUint16(128 + 4, 0, true);
  b[128 + 4 + 2] = 12; // 4096-byte blocks
  b.fill(0xab, 104, 120);
  b[33] = 1;
  const ns = parseIdentifyNamespace(b);
  assert.deepEqual([ns.nsze, ns.lbaBytes, ns.metadataBytes, ns.nguid, ns.deallocReadsZero], [2097152, 4096, 0, 'ab'.repeat(16), true]);
});

test('I/O queue IDs: lowest free first, none past what the controller granted, reused after release', () => {
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  Atomics.store(ctl, CTL_MAX_QID, 40);
  const got = Array.from({ length: 40 }, () => takeQid(ctl));
  assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => i + 1));
  assert.equal(takeQid(ctl), 0);
  releaseQid(ctl, 33);
  assert.equal(takeQid(ctl), 33);
});
