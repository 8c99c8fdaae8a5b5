// Combining the answers of the reactors a relayed TMF ran on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combineTmfResponses } from '../../../src/controller/scsi-tmf-relay.ts';
import { SCSI_TMF_FUNCTION_COMPLETE as C, SCSI_TMF_FUNCTION_REJECTED as R, SCSI_TMF_FUNCTION_SUCCEEDED as S, SCSI_TMF_INCORRECT_LUN as L } from '../../../src/scsi/scsi-constants.ts';

const ABORT_TASK = 0;
const LUN_RESET = 5;
const QUERY_TASK = 6;
const QUERY_TASK_SET = 7;

test('QUERY TASK / QUERY TASK SET succeed when any reactor holds a matching task', () => {
  assert.equal(combineTmfResponses(QUERY_TASK, [C, S]), S);
  assert.equal(combineTmfResponses(QUERY_TASK_SET, [S, C]), S);
  assert.equal(combineTmfResponses(QUERY_TASK, [C, C]), C);
});

test('INCORRECT LUN wins, then REJECTED; other functions complete', () => {
  assert.equal(combineTmfResponses(LUN_RESET, [C, L]), L);
  assert.equal(combineTmfResponses(QUERY_TASK, [S, L]), L);
  assert.equal(combineTmfResponses(ABORT_TASK, [R, C]), R);
  assert.equal(combineTmfResponses(ABORT_TASK, [C, C]), C);
  assert.equal(combineTmfResponses(ABORT_TASK, [S, C]), C, 'SUCCEEDED means something only for the queries');
});
