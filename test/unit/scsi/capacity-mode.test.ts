import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLun, run, outcome, decodeSense, lunInfo, be32, be64 } from './scsi-test-kit.ts';
import type { BdevChannel } from '../../../src/bdev/bdev.ts';
import { ScsiLun } from '../../../src/scsi/scsi-lun.ts';

const CACHING_WCE = [0x08, 0x12, 0x04, ...new Array<number>(17).fill(0)];
const CONTROL = [0x0a, 0x0a, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0, 0];
const IEC = [0x1c, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/** A channel that only has a size (for capacities too large to back with RAM). */
function sizeOnlyChannel(blockSize: number, numBlocks: number): BdevChannel {
  const fail = () => {
    throw new Error('no I/O expected');
  };
  return { name: 'big', blockSize, numBlocks, read: fail, write: fail, flush: fail, unmap: fail, writeZeroes: fail, poll: () => 0, inflight: () => 0, resize: fail, close: () => {} };
}

test('READ CAPACITY(10): last LBA and block length; all ones when too big', () => {
  const { lun } = makeLun({ numBlocks: 64 });
  let r = run(lun, [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], { inLen: 8 });
  assert.deepEqual([...r.dataIn], [0, 0, 0, 63, 0, 0, 2, 0]);
  assert.equal(r.task.transferred, 8);
  const big = new ScsiLun(0, lunInfo(), sizeOnlyChannel(4096, 2 ** 32 + 5));
  big.unitAttention.clear();
  r = run(big, [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], { inLen: 8 });
  assert.deepEqual([...r.dataIn], [0xff, 0xff, 0xff, 0xff, 0, 0, 0x10, 0]);
  r = run(big, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], { inLen: 32 });
  assert.equal(be64(r.dataIn, 0), 2 ** 32 + 4);
  assert.equal(be32(r.dataIn, 8), 4096);
  // LBA without PMI is an invalid field
  r = run(lun, [0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0], { inLen: 8 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
});

test('READ CAPACITY(16): LBPME/LBPRZ, physical block exponent, allocation length', () => {
  const { lun } = makeLun({ numBlocks: 64, info: { physicalBlockExponent: 3 } });
  let r = run(lun, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], { inLen: 32 });
  const expected = new Array<number>(32).fill(0);
  expected.splice(0, 16, 0, 0, 0, 0, 0, 0, 0, 63, 0, 0, 2, 0, 0, 0x03, 0xc0, 0);
  assert.deepEqual([...r.dataIn], expected);
  assert.equal(r.task.transferred, 32);
  r = run(lun, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0], { inLen: 32 });
  assert.equal(r.task.transferred, 12);
  const thick = makeLun({ info: { unmapSupported: false, unmapReadsZero: false } }).lun;
  r = run(thick, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], { inLen: 32 });
  assert.equal(r.dataIn[14], 0);
  const noRz = makeLun({ info: { unmapReadsZero: false } }).lun;
  r = run(noRz, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], { inLen: 32 });
  assert.equal(r.dataIn[14], 0x80);
  // other SERVICE ACTION IN(16) actions: invalid field (byte 1)
  r = run(lun, [0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], { inLen: 32 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(decodeSense(r.task.sense).sks, 0xcc0001);
});

test('MODE SENSE(6) all pages: header, block descriptor, caching, control, IE pages', () => {
  const { lun } = makeLun({ numBlocks: 64 });
  const r = run(lun, [0x1a, 0, 0x3f, 0, 255, 0], { inLen: 255 });
  assert.equal(r.task.transferred, 56);
  assert.deepEqual([...r.dataIn.subarray(0, 56)], [55, 0, 0x10, 8, 0, 0, 0, 64, 0, 0, 2, 0, ...CACHING_WCE, ...CONTROL, ...IEC]);
  // subpage 0xFF (all subpages) gives the same pages
  const r2 = run(lun, [0x1a, 0, 0x3f, 0xff, 255, 0], { inLen: 255 });
  assert.deepEqual([...r2.dataIn.subarray(0, 56)], [...r.dataIn.subarray(0, 56)]);
});

test('MODE SENSE(6) allocation length truncates, mode data length does not', () => {
  const { lun } = makeLun();
  const r = run(lun, [0x1a, 0x08, 0x3f, 0, 4, 0], { inLen: 255 });
  assert.equal(r.task.transferred, 4);
  assert.deepEqual([...r.dataIn.subarray(0, 5)], [47, 0, 0x10, 0, 0]);
});

test('MODE SENSE(10) with LLBAA: long block descriptor and one page', () => {
  const { lun } = makeLun({ numBlocks: 64 });
  const r = run(lun, [0x5a, 0x10, 0x08, 0, 0, 0, 0, 0, 255, 0], { inLen: 255 });
  assert.equal(r.task.transferred, 44);
  assert.deepEqual([...r.dataIn.subarray(0, 44)], [0, 42, 0, 0x10, 0x01, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 2, 0, ...CACHING_WCE]);
  const r6 = run(lun, [0x5a, 0x08, 0x1c, 0, 0, 0, 0, 0, 255, 0], { inLen: 255 });
  assert.deepEqual([...r6.dataIn.subarray(0, 20)], [0, 18, 0, 0x10, 0, 0, 0, 0, ...IEC]);
});

test('MODE SENSE page control: changeable masks, defaults, saved -> SAVING PARAMETERS NOT SUPPORTED', () => {
  const { lun } = makeLun();
  let r = run(lun, [0x1a, 0x08, 0x40 | 0x08, 0, 255, 0], { inLen: 255 });
  assert.deepEqual([...r.dataIn.subarray(4, 24)], CACHING_WCE, 'WCE changeable');
  r = run(lun, [0x1a, 0x08, 0x40 | 0x0a, 0, 255, 0], { inLen: 255 });
  assert.deepEqual([...r.dataIn.subarray(4, 16)], [0x0a, 0x0a, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0], 'D_SENSE changeable');
  r = run(lun, [0x1a, 0x08, 0x40 | 0x1c, 0, 255, 0], { inLen: 255 });
  assert.deepEqual([...r.dataIn.subarray(4, 16)], [0x1c, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 'nothing changeable');
  r = run(lun, [0x1a, 0x00, 0x40 | 0x08, 0, 255, 0], { inLen: 255 });
  assert.deepEqual([...r.dataIn.subarray(4, 12)], [0, 0, 0, 0, 0, 0, 0, 0], 'changeable block descriptor is all zero');
  lun.wce = false;
  r = run(lun, [0x1a, 0x08, 0x08, 0, 255, 0], { inLen: 255 });
  assert.equal(r.dataIn[6], 0, 'current WCE off');
  r = run(lun, [0x1a, 0x08, 0x80 | 0x08, 0, 255, 0], { inLen: 255 });
  assert.equal(r.dataIn[6], 0x04, 'default WCE on');
  r = run(lun, [0x1a, 0x08, 0xc0 | 0x08, 0, 255, 0], { inLen: 255 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x39, 0x00]);
  assert.equal(decodeSense(r.task.sense).sks, 0xcf0002);
  const noCache = makeLun({ info: { writeCache: false } }).lun;
  r = run(noCache, [0x1a, 0x08, 0x40 | 0x08, 0, 255, 0], { inLen: 255 });
  assert.equal(r.dataIn[6], 0, 'WCE not changeable without a volatile cache');
  r = run(noCache, [0x1a, 0x08, 0x08, 0, 255, 0], { inLen: 255 });
  assert.equal(r.dataIn[6], 0);
});

test('MODE SENSE unsupported page or subpage -> INVALID FIELD IN CDB', () => {
  const { lun } = makeLun();
  let r = run(lun, [0x1a, 0, 0x19, 0, 255, 0], { inLen: 255 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(decodeSense(r.task.sense).sks, 0xcd0002);
  r = run(lun, [0x1a, 0, 0x08, 0x01, 255, 0], { inLen: 255 });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(decodeSense(r.task.sense).sks, 0xc00003);
});

test('MODE SELECT(10) with a block descriptor toggles WCE; mode sense shows it', () => {
  const { lun } = makeLun();
  const list = new Uint8Array(8 + 8 + 20);
  list.set([0, 0, 0, 0, 0, 0, 0, 8]);
  list.set([0, 0, 0, 64, 0, 0, 2, 0], 8);
  list.set([0x08, 0x12, 0x00], 16);
  const r = run(lun, [0x55, 0x10, 0, 0, 0, 0, 0, 0, list.length, 0], { out: list });
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1]);
  assert.equal(r.task.transferred, list.length);
  assert.equal(lun.wce, false);
  const ms = run(lun, [0x1a, 0x08, 0x08, 0, 255, 0], { inLen: 255 });
  assert.equal(ms.dataIn[6], 0);
  list[18] = 0x04;
  run(lun, [0x55, 0x10, 0, 0, 0, 0, 0, 0, list.length, 0], { out: list });
  assert.equal(lun.wce, true);
});

test('MODE SELECT D_SENSE switches later sense data to descriptor format', () => {
  const { lun } = makeLun();
  const list = new Uint8Array(4 + 12);
  list.set([0x0a, 0x0a, 0x04, 0x10], 4);
  const r = run(lun, [0x15, 0x10, 0, 0, list.length, 0], { out: list });
  assert.equal(r.task.status, 0);
  assert.equal(lun.dSense, true);
  const bad = run(lun, [0x12, 0, 0x80, 0, 96, 0], { inLen: 96 });
  assert.equal(bad.task.sense[0], 0x72);
  assert.deepEqual(outcome(bad.task), [2, 5, 0x24, 0]);
  assert.equal(decodeSense(bad.task.sense).sks, 0xc00002);
  assert.equal(bad.task.senseLength, 16);
});

test('MODE SELECT validation: SP, list length vs buffer, block length, non-changeable fields, page length, truncation', () => {
  const { lun } = makeLun();
  const ctl = (b3: number) => {
    const l = new Uint8Array(4 + 12);
    l.set([0x0a, 0x0a, 0x00, b3], 4);
    return l;
  };
  let r = run(lun, [0x15, 0x11, 0, 0, 16, 0], { out: ctl(0x10) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0]);
  assert.equal(decodeSense(r.task.sense).sks, 0xc80001, 'SP: byte 1 bit 0');
  r = run(lun, [0x15, 0x10, 0, 0, 17, 0], { out: ctl(0x10) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x24, 0], 'parameter list longer than the data-out buffer');
  r = run(lun, [0x15, 0x10, 0, 0, 16, 0], { out: ctl(0x00) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x26, 0], 'QUEUE ALGORITHM MODIFIER is not changeable');
  assert.equal(decodeSense(r.task.sense).sks, 0x8c0007, 'parameter byte 7 bit 4');
  const withBd = new Uint8Array(4 + 8);
  withBd.set([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x10, 0]);
  r = run(lun, [0x15, 0x10, 0, 0, withBd.length, 0], { out: withBd });
  assert.deepEqual(outcome(r.task), [2, 5, 0x26, 0], 'block length 4096 on a 512 LUN');
  assert.equal(decodeSense(r.task.sense).sks, 0x800009);
  const badLen = ctl(0x10);
  badLen[5] = 0x0b;
  r = run(lun, [0x15, 0x10, 0, 0, 16, 0], { out: badLen });
  assert.deepEqual(outcome(r.task), [2, 5, 0x26, 0], 'page length');
  r = run(lun, [0x15, 0x10, 0, 0, 10, 0], { out: ctl(0x10) });
  assert.deepEqual(outcome(r.task), [2, 5, 0x1a, 0], 'page runs past the list: PARAMETER LIST LENGTH ERROR');
  const unknown = new Uint8Array(4 + 4);
  unknown.set([0x19, 0x02, 0, 0], 4);
  r = run(lun, [0x15, 0x10, 0, 0, 8, 0], { out: unknown });
  assert.deepEqual(outcome(r.task), [2, 5, 0x26, 0], 'unsupported page');
  const noCache = makeLun({ info: { writeCache: false } }).lun;
  const cache = new Uint8Array(4 + 20);
  cache.set([0x08, 0x12, 0x04], 4);
  r = run(noCache, [0x15, 0x10, 0, 0, cache.length, 0], { out: cache });
  assert.deepEqual(outcome(r.task), [2, 5, 0x26, 0], 'WCE=1 without a volatile cache');
  assert.equal(noCache.wce, false);
  r = run(lun, [0x15, 0x10, 0, 0, 0, 0]);
  assert.deepEqual(outcome(r.task), [0, -1, -1, -1], 'empty list is a no-op');
  // nothing was applied by the failed commands
  assert.equal(lun.wce, true);
  assert.equal(lun.dSense, false);
});
