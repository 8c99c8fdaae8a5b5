import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLun, run, outcome, decodeSense, be16, be32, be64, TEST_UUID, RamChannel, lunInfo } from './scsi-test-kit.ts';
import { ScsiLun } from '../../../src/scsi/scsi-lun.ts';
import { ScsiConfigError } from '../../../src/scsi/scsi-errors.ts';

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

test('standard INQUIRY: 96 bytes, SPC-4, CmdQue, vendor/product/revision, version descriptors', () => {
  const { lun } = makeLun();
  const { task, dataIn } = run(lun, [0x12, 0, 0, 0, 96, 0], { inLen: 96 });
  assert.deepEqual(outcome(task), [0, -1, -1, -1]);
  assert.equal(task.transferred, 96);
  const expected = new Array<number>(96).fill(0);
  expected.splice(0, 8, 0x00, 0x00, 0x06, 0x12, 91, 0x00, 0x00, 0x02);
  expected.splice(8, 8, ...ascii('VHOSTD  '));
  expected.splice(16, 16, ...ascii('Malloc disk     '));
  expected.splice(32, 4, ...ascii('0001'));
  expected.splice(58, 6, 0x00, 0xa0, 0x04, 0x60, 0x04, 0xc0);
  assert.deepEqual([...dataIn], expected);
});

test('INQUIRY allocation length and data-in buffer both truncate; residual via transferred', () => {
  const { lun } = makeLun();
  let r = run(lun, [0x12, 0, 0, 0, 36, 0], { inLen: 96 });
  assert.equal(r.task.transferred, 36);
  assert.equal(r.dataIn[4], 91, 'additional length is not truncated');
  assert.deepEqual([...r.dataIn.subarray(36, 40)], [0, 0, 0, 0], 'nothing written past the allocation length');
  r = run(lun, [0x12, 0, 0, 0x01, 0x00, 0], { inLen: 20 });
  assert.equal(r.task.transferred, 20);
  assert.equal(r.task.status, 0);
  r = run(lun, [0x12, 0, 0, 0, 0, 0], { inLen: 96 });
  assert.equal(r.task.transferred, 0);
  assert.equal(r.task.status, 0);
  r = run(lun, [0x12, 0, 0, 0, 96, 0]); // no data-in buffer at all
  assert.equal(r.task.transferred, 0);
  assert.equal(r.task.status, 0);
});

test('INQUIRY bad fields: page code without EVPD, CMDDT, unsupported VPD page', () => {
  const { lun } = makeLun();
  let r = run(lun, [0x12, 0, 0x80, 0, 96, 0], { inLen: 96 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(decodeSense(r.task.sense).sks, 0xc00002, 'field pointer: CDB byte 2');
  r = run(lun, [0x12, 0x02, 0, 0, 96, 0], { inLen: 96 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(decodeSense(r.task.sense).sks, 0xc90001, 'field pointer: CDB byte 1 bit 1');
  r = run(lun, [0x12, 0x01, 0x89, 0, 96, 0], { inLen: 96 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(r.task.transferred, 0);
});

test('VPD 0x00 lists the supported pages in order', () => {
  const { lun } = makeLun();
  const { task, dataIn } = run(lun, [0x12, 1, 0x00, 0, 255, 0], { inLen: 255 });
  assert.equal(task.transferred, 10);
  assert.deepEqual([...dataIn.subarray(0, 10)], [0, 0, 0, 6, 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
});

test('VPD 0x80 serial number is the UUID hex', () => {
  const { lun } = makeLun();
  const { task, dataIn } = run(lun, [0x12, 1, 0x80, 0, 255, 0], { inLen: 255 });
  assert.equal(task.transferred, 36);
  assert.deepEqual([...dataIn.subarray(0, 4)], [0, 0x80, 0, 32]);
  assert.equal(Buffer.from(dataIn.subarray(4, 36)).toString('latin1'), '6f1a3c2e9b4d4e218a7f0c5d9e8b7a61');
});

test('VPD 0x83: NAA 6 then T10 vendor id designators, derived from the UUID', () => {
  const { lun } = makeLun();
  const { task, dataIn } = run(lun, [0x12, 1, 0x83, 0, 255, 0], { inLen: 255 });
  assert.equal(task.transferred, 4 + 20 + 48);
  assert.deepEqual([...dataIn.subarray(0, 4)], [0, 0x83, 0, 68]);
  // NAA: code set binary, association LU, type NAA, length 16
  assert.deepEqual([...dataIn.subarray(4, 8)], [0x01, 0x03, 0x00, 16]);
  assert.equal(Buffer.from(dataIn.subarray(8, 24)).toString('hex'), '60256482e9b4de218a7f0c5d9ee4605d');
  assert.equal(dataIn[8] >> 4, 6, 'NAA 6 (IEEE Registered Extended)');
  // T10 vendor id: ASCII, association LU, type 1, length 44
  assert.deepEqual([...dataIn.subarray(24, 28)], [0x02, 0x01, 0x00, 44]);
  assert.equal(Buffer.from(dataIn.subarray(28, 72)).toString('latin1'), 'VHOSTD  ' + TEST_UUID);
});

test('identification is stable per UUID and differs between UUIDs', () => {
  const a = makeLun().lun;
  const b = makeLun({ id: 3, info: { bdevName: 'other', productName: 'x' } }).lun;
  const c = makeLun({ info: { uuid: '6f1a3c2e-9b4d-4e21-8a7f-0c5d9e8b7a62' } }).lun;
  const page = (l: ScsiLun, p: number) => [...run(l, [0x12, 1, p, 0, 255, 0], { inLen: 255 }).dataIn];
  assert.deepEqual(page(a, 0x83), page(b, 0x83));
  assert.deepEqual(page(a, 0x80), page(b, 0x80));
  assert.notDeepEqual(page(a, 0x83), page(c, 0x83));
  assert.notDeepEqual(page(a, 0x80), page(c, 0x80));
});

test('VPD 0xB0 block limits as sd and sg_vpd decode them', () => {
  const { lun } = makeLun({ blockSize: 4096, info: { optimalIoBoundary: 32, maxTransferBlocks: 256, physicalBlockExponent: 0 } });
  const { task, dataIn } = run(lun, [0x12, 1, 0xb0, 0, 255, 0], { inLen: 255 });
  assert.equal(task.transferred, 64);
  assert.deepEqual([...dataIn.subarray(0, 4)], [0, 0xb0, 0, 0x3c]);
  assert.equal(dataIn[4], 0x01, 'WSNZ');
  assert.equal(dataIn[5], 16, 'max COMPARE AND WRITE length: 64 KiB scratch / 4 KiB');
  assert.equal(be16(dataIn, 6), 1, 'optimal transfer length granularity');
  assert.equal(be32(dataIn, 8), 256, 'maximum transfer length');
  assert.equal(be32(dataIn, 12), 32, 'optimal transfer length');
  assert.equal(be32(dataIn, 20), 0xffffffff, 'maximum unmap LBA count');
  assert.equal(be32(dataIn, 24), 256, 'maximum unmap block descriptor count');
  assert.equal(be32(dataIn, 28), 1, 'optimal unmap granularity');
  assert.equal(be32(dataIn, 32), 0, 'no unmap granularity alignment');
  assert.equal(be64(dataIn, 36), 0x400000, 'maximum write same length');

  const noUnmap = makeLun({ info: { unmapSupported: false, unmapReadsZero: false } }).lun;
  const d2 = run(noUnmap, [0x12, 1, 0xb0, 0, 255, 0], { inLen: 255 }).dataIn;
  assert.equal(be32(d2, 20), 0);
  assert.equal(be32(d2, 24), 0);
  assert.equal(d2[5], 128, '64 KiB / 512');
});

test('VPD 0xB1 non-rotating and 0xB2 thin provisioning bits', () => {
  const { lun } = makeLun();
  let r = run(lun, [0x12, 1, 0xb1, 0, 255, 0], { inLen: 255 });
  assert.equal(r.task.transferred, 64);
  assert.deepEqual([...r.dataIn.subarray(0, 8)], [0, 0xb1, 0, 0x3c, 0x00, 0x01, 0, 0]);
  r = run(lun, [0x12, 1, 0xb2, 0, 255, 0], { inLen: 255 });
  assert.equal(r.task.transferred, 8);
  // LBPU | LBPWS | LBPWS10 | LBPRZ, provisioning type 2 (thin)
  assert.deepEqual([...r.dataIn.subarray(0, 8)], [0, 0xb2, 0, 4, 0, 0xe4, 0x02, 0]);

  const thick = makeLun({ info: { unmapSupported: false, unmapReadsZero: false } }).lun;
  r = run(thick, [0x12, 1, 0xb2, 0, 255, 0], { inLen: 255 });
  assert.deepEqual([...r.dataIn.subarray(0, 8)], [0, 0xb2, 0, 4, 0, 0, 0, 0]);
  const noRz = makeLun({ info: { unmapReadsZero: false } }).lun;
  r = run(noRz, [0x12, 1, 0xb2, 0, 255, 0], { inLen: 255 });
  assert.equal(r.dataIn[5], 0xe0);
});

test('product name is truncated/padded to 16 ASCII bytes', () => {
  const { lun } = makeLun({ info: { productName: 'A very long product name\u00e9' } });
  const { dataIn } = run(lun, [0x12, 0, 0, 0, 96, 0], { inLen: 96 });
  assert.equal(Buffer.from(dataIn.subarray(16, 32)).toString('latin1'), 'A very long prod');
  const l2 = makeLun({ info: { productName: 'x\u00e9' } }).lun;
  assert.equal(Buffer.from(run(l2, [0x12, 0, 0, 0, 96, 0], { inLen: 96 }).dataIn.subarray(16, 32)).toString('latin1'), 'x_              ');
});

test('LUN construction validates its info with typed errors', () => {
  const ch = new RamChannel(512, 8);
  assert.throws(() => new ScsiLun(0, lunInfo({ uuid: 'nope' }), ch), (e: unknown) => e instanceof ScsiConfigError && e.code === 'SCSI_BAD_LUN_INFO' && /uuid/.test(e.message));
  assert.throws(() => new ScsiLun(16384, lunInfo(), ch), (e: unknown) => e instanceof ScsiConfigError && e.code === 'SCSI_BAD_LUN_ID');
  assert.throws(() => new ScsiLun(0, lunInfo({ optimalIoBoundary: -1 }), ch), (e: unknown) => e instanceof ScsiConfigError && /optimalIoBoundary/.test(e.message));
  assert.throws(() => new ScsiLun(0, lunInfo(), new RamChannel(520, 8)), (e: unknown) => e instanceof ScsiConfigError && e.code === 'SCSI_BAD_BLOCK_SIZE');
});
