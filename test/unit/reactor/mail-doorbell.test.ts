import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MailDoorbell } from '../../../src/reactor/mail-doorbell.ts';

test('the doorbell reports each change of its shared counter once, including rings before the reader existed', () => {
  const writer = new MailDoorbell();
  writer.ring();
  const reader = new MailDoorbell(writer.buffer);
  assert.equal(reader.rung(), true);
  assert.equal(reader.rung(), false);
  writer.ring();
  writer.ring();
  assert.equal(reader.rung(), true);
  assert.equal(reader.rung(), false);
});
