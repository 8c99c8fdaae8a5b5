import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLun, run, outcome, decodeSense, put, be16, be32, RamChannel, lunInfo } from './scsi-test-kit.ts';
import { ScsiTarget } from '../../../src/scsi/scsi-target.ts';
import { ScsiLun } from '../../../src/scsi/scsi-lun.ts';
import { ScsiConfigError } from '../../../src/scsi/scsi-errors.ts';
import type { ScsiTask } from '../../../src/scsi/scsi-task.ts';

const TUR = [0, 0, 0, 0, 0, 0];
const INQUIRY = [0x12, 0, 0, 0, 96, 0];
const REQUEST_SENSE = [0x03, 0, 0, 0, 252, 0];
const reportLuns = (select: number, alloc: number) => put([0xa0, 0, select, 0, 0, 0, 0, 0, 0, 0, 0, 0], 6, 4, alloc);
const READ_CAPACITY_16 = [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];

function targetWith(ids: number[]): ScsiTarget {
  const t = new ScsiTarget(0, 'Target 0');
  for (const id of ids) {
    const lun = new ScsiLun(id, lunInfo(), new RamChannel(512, 16));
    lun.unitAttention.clear();
    t.addLun(lun);
  }
  for (const id of ids) t.getLun(id)!.unitAttention.clear();
  return t;
}

const onLun = (t: ScsiTarget, id: number) => ({ execute: (task: ScsiTask) => t.execute(id, task) });

test('unit attention after power on: INQUIRY/REPORT LUNS pass, the next command gets 29/00 once', () => {
  const { lun } = makeLun({ keepUnitAttention: true });
  assert.equal(run(lun, INQUIRY, { inLen: 96 }).task.status, 0);
  assert.equal(run(lun, reportLuns(0, 64), { inLen: 64 }).task.status, 0);
  const r = run(lun, TUR);
  assert.deepEqual(outcome(r.task), [2, 6, 0x29, 0x00]);
  assert.deepEqual(outcome(run(lun, TUR).task), [0, -1, -1, -1]);
});

test('REQUEST SENSE reports and clears a pending unit attention; fixed and descriptor formats', () => {
  const { lun } = makeLun({ keepUnitAttention: true });
  let r = run(lun, REQUEST_SENSE, { inLen: 252 });
  assert.equal(r.task.status, 0);
  assert.equal(r.task.transferred, 18);
  assert.deepEqual([...r.dataIn.subarray(0, 18)], [0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0]);
  assert.deepEqual(outcome(run(lun, TUR).task), [0, -1, -1, -1]);
  r = run(lun, REQUEST_SENSE, { inLen: 252 });
  assert.deepEqual([...r.dataIn.subarray(0, 18)], [0x70, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 'NO SENSE');
  lun.resized(16);
  r = run(lun, [0x03, 0x01, 0, 0, 252, 0], { inLen: 252 });
  assert.equal(r.task.transferred, 8);
  assert.deepEqual([...r.dataIn.subarray(0, 8)], [0x72, 0x06, 0x2a, 0x09, 0, 0, 0, 0]);
  r = run(lun, [0x03, 0, 0, 0, 8, 0], { inLen: 252 });
  assert.equal(r.task.transferred, 8, 'allocation length');
});

test('capacity change queues CAPACITY DATA HAS CHANGED; the new size is used', () => {
  const { lun, ch } = makeLun({ numBlocks: 64 });
  lun.resized(128);
  assert.equal(ch.numBlocks, 128);
  let r = run(lun, READ_CAPACITY_16, { inLen: 32 });
  assert.deepEqual(outcome(r.task), [2, 6, 0x2a, 0x09]);
  r = run(lun, READ_CAPACITY_16, { inLen: 32 });
  assert.equal(be32(r.dataIn, 4), 127);
  assert.equal(run(lun, [0x28, 0, 0, 0, 0, 100, 0, 0, 1, 0], { inLen: 512 }).task.status, 0);
  lun.resized(128);
  assert.equal(run(lun, TUR).task.status, 0, 'same size: no new unit attention');
  assert.throws(() => lun.resized(-1), (e: unknown) => e instanceof ScsiConfigError && e.code === 'SCSI_BAD_NUM_BLOCKS');
});

test('REPORT LUNS: peripheral and flat addressing, select report, allocation length', () => {
  const t = targetWith([300, 0, 1]);
  let r = run(onLun(t, 1), reportLuns(0, 1024), { inLen: 1024 });
  assert.equal(r.task.transferred, 32);
  assert.deepEqual([...r.dataIn.subarray(0, 32)], [
    0, 0, 0, 24, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 0, 0, 0, 0, 0, 0,
    0x41, 0x2c, 0, 0, 0, 0, 0, 0,
  ]);
  r = run(onLun(t, 0), reportLuns(2, 1024), { inLen: 1024 });
  assert.equal(r.task.transferred, 32);
  r = run(onLun(t, 0), reportLuns(1, 1024), { inLen: 1024 });
  assert.equal(r.task.transferred, 8);
  assert.deepEqual([...r.dataIn.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0], 'no well-known LUs');
  r = run(onLun(t, 0), reportLuns(0, 16), { inLen: 1024 });
  assert.equal(r.task.transferred, 16);
  assert.equal(be32(r.dataIn, 0), 24, 'list length reports all LUNs');
  r = run(onLun(t, 0), reportLuns(0, 15), { inLen: 1024 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(decodeSense(r.task.sense).sks, 0xc00006);
  r = run(onLun(t, 0), reportLuns(3, 1024), { inLen: 1024 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  // a missing LUN answers REPORT LUNS too
  r = run(onLun(t, 7), reportLuns(0, 1024), { inLen: 1024 });
  assert.equal(r.task.transferred, 32);
});

test('LUN set changes: REPORTED LUNS DATA HAS CHANGED on the others, lists update', () => {
  const t = targetWith([0]);
  const extra = new ScsiLun(2, lunInfo(), new RamChannel(512, 16));
  t.addLun(extra);
  assert.deepEqual(outcome(run(onLun(t, 0), TUR).task), [2, 6, 0x3f, 0x0e]);
  assert.deepEqual(outcome(run(onLun(t, 2), TUR).task), [2, 6, 0x29, 0x00], 'the new LUN reports power on');
  assert.equal(be32(run(onLun(t, 0), reportLuns(0, 64), { inLen: 64 }).dataIn, 0), 16);
  t.removeLun(2);
  assert.deepEqual(outcome(run(onLun(t, 0), TUR).task), [2, 6, 0x3f, 0x0e]);
  assert.equal(be32(run(onLun(t, 0), reportLuns(0, 64), { inLen: 64 }).dataIn, 0), 8);
  assert.deepEqual(t.lunIds(), [0]);
  assert.throws(() => t.addLun(t.getLun(0)!), (e: unknown) => e instanceof ScsiConfigError && e.code === 'SCSI_LUN_EXISTS');
  assert.throws(() => t.removeLun(9), (e: unknown) => e instanceof ScsiConfigError && e.code === 'SCSI_LUN_NOT_FOUND');
  assert.throws(() => new ScsiTarget(256, 'x'), (e: unknown) => e instanceof ScsiConfigError && e.code === 'SCSI_BAD_TARGET');
});

test('null LUN: INQUIRY 0x7F, REQUEST SENSE and other commands say LOGICAL UNIT NOT SUPPORTED', () => {
  const t = targetWith([0]);
  const missing = onLun(t, 4);
  let r = run(missing, INQUIRY, { inLen: 96 });
  assert.equal(r.task.status, 0);
  assert.equal(r.task.transferred, 96);
  assert.equal(r.dataIn[0], 0x7f);
  r = run(missing, [0x12, 1, 0, 0, 255, 0], { inLen: 255 });
  assert.deepEqual([...r.dataIn.subarray(0, 5)], [0x7f, 0, 0, 1, 0]);
  r = run(missing, [0x12, 1, 0x83, 0, 255, 0], { inLen: 255 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  r = run(missing, REQUEST_SENSE, { inLen: 252 });
  assert.equal(r.task.status, 0);
  assert.deepEqual([r.dataIn[0], r.dataIn[2], r.dataIn[12], r.dataIn[13]], [0x70, 0x05, 0x25, 0x00]);
  for (const cdb of [TUR, [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], READ_CAPACITY_16]) {
    r = run(missing, cdb, { inLen: 512 });
    assert.deepEqual(outcome(r.task), [2, 5, 0x25, 0x00]);
    assert.equal(r.task.transferred, 0);
  }
});

test('TEST UNIT READY, START STOP UNIT, PREVENT ALLOW succeed; unknown opcodes and PR are INVALID COMMAND OPERATION CODE', () => {
  const { lun } = makeLun();
  for (const cdb of [TUR, [0x1b, 0, 0, 0, 1, 0], [0x1e, 0, 0, 0, 1, 0]]) assert.deepEqual(outcome(run(lun, cdb).task), [0, -1, -1, -1]);
  for (const cdb of [
    [0x5e, 0, 0, 0, 0, 0, 0, 0x10, 0, 0],
    [0x5f, 0, 0, 0, 0, 0, 0, 0, 0x18, 0],
    [0x04, 0, 0, 0, 0, 0],
    [0xc0, 0, 0, 0, 0, 0],
    [0x7f, 0, 0, 0, 0, 0, 0, 0x18],
  ]) {
    const r = run(lun, cdb);
    assert.deepEqual(outcome(r.task), [2, 5, 0x20, 0x00], `0x${cdb[0].toString(16)}`);
  }
  const r = run(lun, [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], { inLen: 256 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0], 'other MAINTENANCE IN service actions');
});

const rsoc = (options: number, opcode: number, sa: number, alloc: number) => put(put([0xa3, 0x0c, options, opcode, 0, 0, 0, 0, 0, 0, 0, 0], 4, 2, sa), 6, 4, alloc);

test('REPORT SUPPORTED OPERATION CODES: all commands', () => {
  const { lun } = makeLun();
  let r = run(lun, rsoc(0, 0, 0, 4096), { inLen: 4096 });
  assert.equal(r.task.status, 0);
  const len = be32(r.dataIn, 0);
  assert.equal(len % 8, 0);
  assert.equal(r.task.transferred, 4 + len);
  const ops = [];
  for (let o = 4; o < 4 + len; o += 8) ops.push([r.dataIn[o], be16(r.dataIn, o + 2), r.dataIn[o + 5], be16(r.dataIn, o + 6)]);
  assert.deepEqual(ops[0], [0x00, 0, 0, 6]);
  assert.ok(ops.some((e) => e[0] === 0x42 && e[3] === 10), 'UNMAP listed');
  assert.ok(ops.some((e) => e[0] === 0x9e && e[1] === 0x10 && e[2] === 0x01 && e[3] === 16), 'READ CAPACITY(16) with SERVACTV');
  assert.ok(ops.some((e) => e[0] === 0x89 && e[3] === 16), 'COMPARE AND WRITE');
  assert.ok(!ops.some((e) => e[0] === 0x5e || e[0] === 0x5f), 'no PR yet');
  // RCTD: 20-byte descriptors with CTDP
  r = run(lun, [0xa3, 0x0c, 0x80, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], { inLen: 4096 });
  assert.equal(be32(r.dataIn, 0), (len / 8) * 20);
  assert.equal(r.dataIn[4 + 5], 0x02);
  assert.equal(be16(r.dataIn, 4 + 8), 10, 'timeouts descriptor length');
  const thick = makeLun({ info: { unmapSupported: false, unmapReadsZero: false } }).lun;
  r = run(thick, rsoc(0, 0, 0, 4096), { inLen: 4096 });
  assert.equal(be32(r.dataIn, 0), len - 8, 'UNMAP not listed without unmap support');
  r = run(lun, rsoc(0, 0, 0, 10), { inLen: 4096 });
  assert.equal(r.task.transferred, 10);
});

test('REPORT SUPPORTED OPERATION CODES: one command (options 1, 2, 3) as sd asks for WRITE SAME(16)', () => {
  const { lun } = makeLun();
  let r = run(lun, rsoc(1, 0x93, 0, 512), { inLen: 512 });
  assert.equal(r.task.transferred, 20);
  assert.deepEqual([...r.dataIn.subarray(0, 20)], [0, 3, 0, 16, 0x93, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
  r = run(lun, rsoc(1, 0x5e, 0, 512), { inLen: 512 });
  assert.deepEqual([...r.dataIn.subarray(0, 4)], [0, 1, 0, 0], 'PERSISTENT RESERVE IN not supported');
  r = run(lun, rsoc(1, 0x9e, 0, 512), { inLen: 512 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0], 'option 1 on an opcode with service actions');
  r = run(lun, rsoc(2, 0x9e, 0x10, 512), { inLen: 512 });
  assert.deepEqual([...r.dataIn.subarray(0, 6)], [0, 3, 0, 16, 0x9e, 0x1f]);
  r = run(lun, rsoc(2, 0x9e, 0x11, 512), { inLen: 512 });
  assert.equal(r.dataIn[1], 1);
  r = run(lun, rsoc(2, 0x28, 0, 512), { inLen: 512 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0], 'option 2 on an opcode without service actions');
  r = run(lun, rsoc(3, 0x28, 0, 512), { inLen: 512 });
  assert.deepEqual([...r.dataIn.subarray(0, 4)], [0, 3, 0, 10]);
  r = run(lun, rsoc(5, 0x28, 0, 512), { inLen: 512 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  r = run(lun, [0xa3, 0x0c, 0x81, 0x12, 0, 0, 0, 0, 1, 0, 0, 0], { inLen: 512 });
  assert.equal(r.dataIn[1], 0x83, 'CTDP | supported');
  assert.equal(be16(r.dataIn, 2), 6);
  assert.equal(r.task.transferred, 4 + 6 + 12);
});
