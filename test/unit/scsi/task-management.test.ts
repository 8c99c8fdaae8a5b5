import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLun, run, buildTask, outcome, cdb10, cdb16, pattern, RamChannel, lunInfo } from './scsi-test-kit.ts';
import type { ScsiTmfWaiter } from '../../../src/scsi/task-management.ts';
import { ScsiTarget } from '../../../src/scsi/scsi-target.ts';
import { ScsiLun } from '../../../src/scsi/scsi-lun.ts';
import {
  SCSI_TMF_FUNCTION_COMPLETE,
  SCSI_TMF_FUNCTION_SUCCEEDED,
  SCSI_TMF_INCORRECT_LUN,
} from '../../../src/scsi/scsi-constants.ts';

const BS = 512;

class TmfRecorder implements ScsiTmfWaiter {
  readonly responses: number[] = [];
  scsiTmfDone(response: number): void {
    this.responses.push(response);
  }
}

test('ABORT TASK of an in-flight async READ: completes once, aborted, only after the bdev finished; then the TMF', () => {
  const { lun, ch } = makeLun();
  ch.async = true;
  const order: string[] = [];
  const a = buildTask(cdb10(0x28, 0, 1), { inLen: BS, tagLo: 7, tagHi: 1 });
  const b = buildTask(cdb10(0x28, 1, 1), { inLen: BS, tagLo: 8, tagHi: 1 });
  a.task.waiter = { scsiTaskDone: (t) => order.push(`task:${t.tagLo}:${t.aborted}`) };
  lun.execute(a.task);
  lun.execute(b.task);
  const tmf = new TmfRecorder();
  lun.abortTask(7, 1, { scsiTmfDone: (r) => (order.push(`tmf:${r}`), tmf.scsiTmfDone(r)) });
  assert.deepEqual(order, [], 'the bdev may still write into the buffer: nothing completes yet');
  assert.equal(a.task.aborted, true);
  assert.equal(b.task.aborted, false);
  lun.poll();
  assert.deepEqual(order, ['task:7:true', `tmf:${SCSI_TMF_FUNCTION_COMPLETE}`]);
  assert.equal(b.rec.done.length, 1);
  assert.equal(b.task.aborted, false);
  assert.equal(b.task.status, 0);
  lun.poll();
  assert.equal(order.length, 2, 'no second completion');
  assert.equal(lun.activeTasks, 0);
});

test('an aborted multi-step command stops at the next step (no flush after an aborted FUA write)', () => {
  const { lun, ch } = makeLun();
  ch.async = true;
  const w = buildTask(cdb10(0x2a, 0, 1, 0x08), { out: pattern(BS, 1), tagLo: 3 });
  lun.execute(w.task);
  const tmf = new TmfRecorder();
  lun.abortTask(3, 0, tmf);
  lun.poll();
  assert.deepEqual(ch.calls.map((c) => c.op), ['write']);
  assert.equal(w.rec.done.length, 1);
  assert.equal(w.task.aborted, true);
  assert.deepEqual(tmf.responses, [SCSI_TMF_FUNCTION_COMPLETE]);
});

test('ABORT TASK of an unknown tag, or with nothing in flight, completes at once', () => {
  const { lun, ch } = makeLun();
  ch.async = true;
  const tmf = new TmfRecorder();
  lun.abortTask(1, 2, tmf);
  assert.deepEqual(tmf.responses, [SCSI_TMF_FUNCTION_COMPLETE]);
  const r = buildTask(cdb10(0x28, 0, 1), { inLen: BS, tagLo: 5 });
  lun.execute(r.task);
  lun.abortTask(6, 0, tmf);
  assert.deepEqual(tmf.responses, [SCSI_TMF_FUNCTION_COMPLETE, SCSI_TMF_FUNCTION_COMPLETE]);
  assert.equal(r.task.aborted, false);
  lun.poll();
  assert.equal(r.task.status, 0);
});

test('ABORT TASK of a deferred task completes it immediately; the running one continues', () => {
  const { lun, ch } = makeLun({ numBlocks: 512 });
  ch.async = true;
  const first = buildTask(cdb16(0x93, 0, 10), { out: pattern(BS, 1), tagLo: 1 });
  const second = buildTask(cdb16(0x93, 100, 10), { out: pattern(BS, 2), tagLo: 2 });
  lun.execute(first.task);
  lun.execute(second.task);
  assert.equal(ch.calls.length, 1, 'second WRITE SAME waits for the scratch buffer');
  const tmf = new TmfRecorder();
  lun.abortTask(2, 0, tmf);
  assert.equal(second.rec.done.length, 1);
  assert.equal(second.task.aborted, true);
  assert.deepEqual(tmf.responses, [SCSI_TMF_FUNCTION_COMPLETE]);
  lun.poll();
  assert.equal(first.rec.done.length, 1);
  assert.equal(first.task.status, 0);
  assert.equal(ch.calls.length, 1, 'the aborted WRITE SAME never reached the bdev');
  assert.ok(ch.store.subarray(100 * BS, 110 * BS).every((x) => x === 0));
});

test('ABORT TASK SET aborts everything; the TMF completes after the last bdev completion', () => {
  const { lun, ch } = makeLun();
  ch.async = true;
  const tasks = [0, 1, 2].map((i) => buildTask(cdb10(0x28, i, 1), { inLen: BS, tagLo: i }));
  for (const t of tasks) lun.execute(t.task);
  const tmf = new TmfRecorder();
  lun.abortTaskSet(tmf);
  assert.deepEqual(tmf.responses, []);
  lun.poll();
  for (const t of tasks) {
    assert.equal(t.rec.done.length, 1);
    assert.equal(t.task.aborted, true);
  }
  assert.deepEqual(tmf.responses, [SCSI_TMF_FUNCTION_COMPLETE]);
  // The LUN works normally afterwards
  ch.async = false;
  assert.deepEqual(outcome(run(lun, cdb10(0x28, 0, 1), { inLen: BS }).task), [0, -1, -1, -1]);
  assert.equal(lun.activeTasks, 0);
});

test('LOGICAL UNIT RESET: aborts, waits for in-flight I/O, restores mode defaults, raises 29/00', () => {
  const { lun, ch } = makeLun();
  lun.wce = false;
  lun.dSense = true;
  ch.async = true;
  const w = buildTask(cdb10(0x2a, 0, 1), { out: pattern(BS, 1) });
  lun.execute(w.task);
  const tmf = new TmfRecorder();
  lun.lunReset(tmf);
  assert.deepEqual(tmf.responses, []);
  assert.equal(lun.wce, true);
  assert.equal(lun.dSense, false);
  lun.poll();
  assert.equal(w.task.aborted, true);
  assert.deepEqual(tmf.responses, [SCSI_TMF_FUNCTION_COMPLETE]);
  ch.async = false;
  const ua = run(lun, [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(outcome(ua.task), [2, 6, 0x29, 0x00]);
  assert.equal(ua.task.sense[0], 0x70, 'fixed format again after the reset');
  assert.deepEqual(outcome(run(lun, [0, 0, 0, 0, 0, 0]).task), [0, -1, -1, -1]);
});

test('QUERY TASK / QUERY TASK SET', () => {
  const { lun, ch } = makeLun();
  ch.async = true;
  const tmf = new TmfRecorder();
  lun.queryTaskSet(tmf);
  const r = buildTask(cdb10(0x28, 0, 1), { inLen: BS, tagLo: 9, tagHi: 9 });
  lun.execute(r.task);
  lun.queryTask(9, 9, tmf);
  lun.queryTask(9, 8, tmf);
  lun.queryTaskSet(tmf);
  lun.poll();
  lun.queryTask(9, 9, tmf);
  assert.deepEqual(tmf.responses, [
    SCSI_TMF_FUNCTION_COMPLETE,
    SCSI_TMF_FUNCTION_SUCCEEDED,
    SCSI_TMF_FUNCTION_COMPLETE,
    SCSI_TMF_FUNCTION_SUCCEEDED,
    SCSI_TMF_FUNCTION_COMPLETE,
  ]);
});

test('target TMFs: INCORRECT LUN for a missing LUN; TARGET RESET waits for every LUN', () => {
  const t = new ScsiTarget(1, 'Target 1');
  const chans = [new RamChannel(512, 16), new RamChannel(512, 16)];
  chans.forEach((ch, i) => {
    ch.async = true;
    t.addLun(new ScsiLun(i, lunInfo(), ch));
  });
  const tmf = new TmfRecorder();
  t.abortTask(5, 0, 0, tmf);
  t.lunReset(5, tmf);
  t.queryTask(5, 0, 0, tmf);
  assert.deepEqual(tmf.responses, [SCSI_TMF_INCORRECT_LUN, SCSI_TMF_INCORRECT_LUN, SCSI_TMF_INCORRECT_LUN]);
  tmf.responses.length = 0;
  t.getLun(0)!.unitAttention.clear();
  t.getLun(1)!.unitAttention.clear();
  const a = buildTask(cdb10(0x28, 0, 1), { inLen: BS });
  const b = buildTask(cdb10(0x28, 0, 1), { inLen: BS });
  t.execute(0, a.task);
  t.execute(1, b.task);
  t.targetReset(tmf);
  assert.deepEqual(tmf.responses, []);
  chans[0].poll();
  assert.deepEqual(tmf.responses, []);
  assert.equal(t.poll(), 1);
  assert.deepEqual(tmf.responses, [SCSI_TMF_FUNCTION_COMPLETE]);
  assert.ok(a.task.aborted && b.task.aborted);
  const empty = new ScsiTarget(2, 'empty');
  empty.targetReset(tmf);
  assert.equal(tmf.responses.length, 2);
});

test('a completion callback may submit the next command synchronously (re-entrancy)', () => {
  const { lun, ch } = makeLun();
  const chain = buildTask(cdb10(0x2a, 0, 1), { out: pattern(BS, 5) });
  const follow = buildTask(cdb10(0x28, 0, 1), { inLen: BS });
  let calls = 0;
  chain.task.waiter = {
    scsiTaskDone: () => {
      calls++;
      lun.execute(follow.task);
    },
  };
  lun.execute(chain.task);
  assert.equal(calls, 1);
  assert.equal(follow.rec.done.length, 1);
  assert.deepEqual(follow.dataIn, pattern(BS, 5));
  assert.equal(lun.activeTasks, 0);
  assert.equal(ch.calls.length, 2);
});
