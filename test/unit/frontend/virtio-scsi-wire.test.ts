import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as W from '../../../src/frontend/virtio-scsi-wire.ts';
import * as C from '../../../src/frontend/scsi-cdb.ts';

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

test('LUN addressing: single-level flat LUN and the REPORT LUNS well-known LUN', () => {
  const b = new Uint8Array(8);
  W.putLun(b, 0, 2, 300);
  assert.equal(hex(b), '0102412c00000000');
  W.putLun(b, 0, 0, 0);
  assert.equal(hex(b), '0100400000000000');
  W.putReportLunsWellKnownLun(b, 0, 7);
  assert.equal(hex(b), '0107c10100000000');
});

test('command request header: 51 bytes with id, task attribute and a zero-padded 32-byte CDB', () => {
  const hdr = new Uint8Array(W.cmdReqSize());
  assert.equal(hdr.length, 51);
  W.putLun(hdr, 0, 1, 5);
  const cdb = new Uint8Array(16);
  const n = C.cdbRw10(cdb, C.READ_10, 0x12345678, 8);
  W.putCmdReqAfterLun(hdr, 0, 0x0102030405, W.VIRTIO_SCSI_S_ORDERED, 3, 4, cdb, n, 32);
  assert.equal(hex(hdr),
    '0101400500000000' + '0504030201000000' + '01' + '03' + '04' +
    '28001234567800000800' + '00'.repeat(22));
});

test('command response: fixed part decoded little-endian, 108 bytes by default', () => {
  assert.equal(W.cmdRespSize(), 108);
  const r = new Uint8Array(108);
  r.set([18, 0, 0, 0, 0x00, 0x02, 0, 0, 0x34, 0x12, 0x02, 0x00, 0x70, 0, 0x05]);
  const d = new W.CmdResp().decode(r, 0);
  assert.deepEqual([d.senseLen, d.residual, d.statusQualifier, d.status, d.response], [18, 512, 0x1234, 2, 0]);
});

test('TMF and AN requests, and events', () => {
  const tmf = new Uint8Array(W.VIRTIO_SCSI_CTRL_TMF_REQ_SIZE);
  W.putTmfReq(tmf, 0, W.VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0x99);
  W.putLun(tmf, 8, 0, 3);
  assert.equal(hex(tmf), '00000000' + '05000000' + '0100400300000000' + '9900000000000000');
  const an = new Uint8Array(W.VIRTIO_SCSI_CTRL_AN_REQ_SIZE);
  W.putAnReq(an, 0, W.VIRTIO_SCSI_T_AN_SUBSCRIBE, W.VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE);
  W.putLun(an, 4, 1, 0);
  assert.equal(hex(an), '02000000' + '0101400000000000' + '10000000');
  const ev = Buffer.from('03000080' + '0102400700000000' + '2a090000', 'hex');
  const e = W.decodeEvent(new Uint8Array(ev), 0);
  assert.deepEqual([e.event, e.eventsMissed, e.target, e.lunId, e.reason], [W.VIRTIO_SCSI_T_PARAM_CHANGE, true, 2, 7, 0x092a]);
});

test('CDBs: exact bytes for the commands the driver sends', () => {
  const c = new Uint8Array(32);
  const cdb = (n: number) => hex(c.subarray(0, n));
  assert.equal(cdb(C.cdbTestUnitReady(c)), '000000000000');
  assert.equal(cdb(C.cdbInquiry(c, true, 0x83, 0x1ff)), '12018301ff00');
  assert.equal(cdb(C.cdbReadCapacity16(c)), '9e10' + '0000000000000000' + '00000020' + '0000');
  assert.equal(cdb(C.cdbRw10(c, C.WRITE_10, 1, 0x100, true)), '2a08' + '00000001' + '00' + '0100' + '00');
  assert.equal(cdb(C.cdbRw16(c, C.READ_16, 0x1_0000_0002, 0x10000)), '8800' + '0000000100000002' + '00010000' + '0000');
  assert.equal(cdb(C.cdbSynchronizeCache10(c)), '35000000000000000000');
  assert.equal(cdb(C.cdbReportLuns(c, 2, 4096)), 'a00002000000' + '00001000' + '0000');
  assert.equal(cdb(C.cdbModeSense(c, { page: 0x08, dbd: true, allocLen: 192 })), '1a080800c000');
  assert.equal(cdb(C.cdbModeSense(c, { page: 0x3f, pc: 2, ten: true, allocLen: 1024 })), '5a00bf00000000040000');
  assert.equal(cdb(C.cdbUnmap(c, 24)), '42000000000000001800');
  const list = new Uint8Array(40);
  const n = C.unmapParameterList(list, [{ lba: 0x1_0000_0000, blocks: 8 }, { lba: 16, blocks: 1 }]);
  assert.equal(n, 40);
  assert.equal(hex(list), '0026' + '0020' + '00000000' +
    '0000000100000000' + '00000008' + '00000000' +
    '0000000000000010' + '00000001' + '00000000');
});

test('reply parsers: sense (fixed and descriptor), READ CAPACITY(16), REPORT LUNS', () => {
  const fixed = new Uint8Array(18);
  fixed.set([0x70, 0, 0x05]);
  fixed[12] = 0x21;
  assert.deepEqual(C.parseSense(fixed), { key: 5, asc: 0x21, ascq: 0 });
  assert.deepEqual(C.parseSense(new Uint8Array([0x72, 0x06, 0x2a, 0x09])), { key: 6, asc: 0x2a, ascq: 0x09 });
  assert.equal(C.parseSense(new Uint8Array([0x70, 0, 5])), null); // too short for ASC/ASCQ
  const rc = new Uint8Array(32);
  rc.set([0, 0, 0, 1, 0, 0, 0, 0xff, 0, 0, 0x10, 0, 0, 0x03, 0xc0, 0]);
  assert.deepEqual(C.parseReadCapacity16(rc), { lastLba: 0x1_0000_00ff, blockSize: 4096, logicalPerPhysicalExponent: 3, lbpme: true, lbprz: true });
  const rl = new Uint8Array(8 + 24);
  rl.set([0, 0, 0, 16]);
  rl.set([0x00, 0x00], 8);
  rl.set([0x40, 0x05], 16);
  rl.set([0xff], 24); // beyond the list length: ignored
  const luns = C.parseReportLuns(rl);
  assert.deepEqual(luns.map(C.lunNumber), [0, 5]);
});
