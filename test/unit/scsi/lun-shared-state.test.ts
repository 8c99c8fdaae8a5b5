// Two instances of one LUN (as in two reactors of a spread device) over one shared state: unit
// attentions are reported once, mode parameters changed through one apply to the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScsiLun } from '../../../src/scsi/scsi-lun.ts';
import { createLunSharedState, LunSharedState } from '../../../src/scsi/lun-shared-state.ts';
import { ScsiConfigError } from '../../../src/scsi/scsi-errors.ts';
import { RamChannel, lunInfo, run, outcome } from './scsi-test-kit.ts';

const TUR = [0, 0, 0, 0, 0, 0];

function pair(): [ScsiLun, ScsiLun] {
  const shared = createLunSharedState(2);
  return [new ScsiLun(0, lunInfo(), new RamChannel(512, 64), shared), new ScsiLun(0, lunInfo(), new RamChannel(512, 64), shared)];
}

test('the power-on unit attention of a LUN with two instances is reported once, by whichever is asked first', () => {
  const [a, b] = pair();
  assert.deepEqual(outcome(run(b, TUR).task).slice(0, 3), [2, 6, 0x29]);
  assert.equal(run(a, TUR).task.status, 0, 'the second instance does not report it again');
  assert.equal(run(b, TUR).task.status, 0);
});

test('a LUN reset on both instances raises one unit attention; a capacity change on one is seen through the other', () => {
  const [a, b] = pair();
  a.unitAttention.clear();
  a.lunReset({ scsiTmfDone() {} });
  b.lunReset({ scsiTmfDone() {} });
  assert.equal(outcome(run(a, TUR).task)[2], 0x29);
  assert.equal(run(b, TUR).task.status, 0);
  a.resized(128);
  b.resized(128);
  assert.deepEqual(outcome(run(b, TUR).task).slice(0, 4), [2, 6, 0x2a, 0x09]);
  assert.equal(run(a, TUR).task.status, 0);
});

test('WCE and D_SENSE set through one instance hold for the other', () => {
  const [a, b] = pair();
  assert.equal(b.wce, true);
  a.wce = false;
  a.dSense = true;
  assert.equal(b.wce, false);
  assert.equal(b.writeThrough, true);
  assert.equal(b.dSense, true);
  // A LUN reset restores the defaults for both.
  b.lunReset({ scsiTmfDone() {} });
  assert.deepEqual([a.wce, a.dSense], [true, false]);
});

test('a shared state of the wrong kind or size is refused', () => {
  assert.throws(() => new LunSharedState(new SharedArrayBuffer(8)), (e: unknown) => e instanceof ScsiConfigError && e.code === 'SCSI_BAD_LUN_STATE');
  assert.throws(() => new ScsiLun(0, lunInfo(), new RamChannel(512, 64), new ArrayBuffer(52) as unknown as SharedArrayBuffer), ScsiConfigError);
});
