import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonSplitError, JsonStreamSplitter } from '../../../src/rpc/json-stream-splitter.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

test('splits back-to-back objects with no delimiter, and arrays (batches)', () => {
  const s = new JsonStreamSplitter();
  assert.deepEqual(s.push(enc('{"a":1}{"b":[1,2,{"c":3}]}\n  [{"d":4},{"e":5}] {"f":{}}')), [
    '{"a":1}',
    '{"b":[1,2,{"c":3}]}',
    '[{"d":4},{"e":5}]',
    '{"f":{}}',
  ]);
  assert.equal(s.pending, 0);
});

test('a value arriving in many chunks, one byte at a time, comes out once, whole', () => {
  const s = new JsonStreamSplitter();
  const text = '{\n  "jsonrpc": "2.0",\n  "method": "bdev_get_bdevs",\n  "id": 1\n}';
  const out: string[] = [];
  for (const b of enc(text)) out.push(...s.push(Uint8Array.of(b)));
  assert.deepEqual(out, [text]);
  // Split inside a string and inside an escape.
  const t2 = '{"k":"a\\"}b","n":2}';
  assert.deepEqual(s.push(enc(t2.slice(0, 7))), []);
  assert.equal(s.pending, 7);
  assert.deepEqual(s.push(enc(t2.slice(7))), [t2]);
});

test('braces, brackets and escaped quotes inside strings do not count', () => {
  const s = new JsonStreamSplitter();
  const v = '{"name":"}{][","x":"\\\\","y":"\\"}","z":"\\u007b"}';
  assert.deepEqual(s.push(enc(v + v)), [v, v]);
  assert.deepEqual(JSON.parse(v), { name: '}{][', x: '\\', y: '"}', z: '{' });
});

test('multi-byte UTF-8 split across chunks decodes correctly', () => {
  const s = new JsonStreamSplitter();
  const bytes = enc('{"name":"disk-é€😀"}');
  const cut = bytes.indexOf(0xe2) + 1; // inside the euro sign
  assert.deepEqual(s.push(bytes.subarray(0, cut)), []);
  assert.deepEqual(s.push(bytes.subarray(cut)), ['{"name":"disk-é€😀"}']);
});

test('garbage at the top level is an error; values before it are kept', () => {
  const s = new JsonStreamSplitter();
  try {
    s.push(enc('{"a":1} hello'));
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof JsonSplitError);
    assert.equal(e.code, 'JSON_NOT_A_VALUE');
    assert.match(e.message, /'h'/);
    assert.deepEqual(e.completed, ['{"a":1}']);
  }
  assert.throws(() => new JsonStreamSplitter().push(enc('42')), (e: unknown) => e instanceof JsonSplitError && e.code === 'JSON_NOT_A_VALUE');
});

test('size, depth and UTF-8 limits', () => {
  const small = new JsonStreamSplitter(16);
  assert.deepEqual(small.push(enc('{"a":"0123456"}')), ['{"a":"0123456"}']);
  assert.throws(() => small.push(enc('{"a":"0123456789abcdef"')), (e: unknown) => e instanceof JsonSplitError && e.code === 'JSON_TOO_LARGE');
  const shallow = new JsonStreamSplitter(1024, 3);
  assert.deepEqual(shallow.push(enc('[[[]]]')), ['[[[]]]']);
  assert.throws(() => shallow.push(enc('[[[[')), (e: unknown) => e instanceof JsonSplitError && e.code === 'JSON_TOO_DEEP');
  assert.throws(
    () => new JsonStreamSplitter().push(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x7d)),
    (e: unknown) => e instanceof JsonSplitError && e.code === 'JSON_BAD_UTF8',
  );
});
