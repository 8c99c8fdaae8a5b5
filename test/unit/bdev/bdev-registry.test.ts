import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BdevRegistry } from '../../../src/bdev/bdev-registry.ts';
import { BdevError } from '../../../src/bdev/bdev-error.ts';
import { NullBdev } from '../../../src/bdev/modules/null.ts';
import { MallocBdev } from '../../../src/bdev/modules/malloc.ts';
import type { Bdev } from '../../../src/bdev/bdev.ts';

const U1 = '7e5a8c1b-2d3f-4a6b-9c8d-0e1f2a3b4c5d';
const U2 = '11111111-2222-4333-8444-555555555555';

function code(c: string) {
  return (e: unknown) => e instanceof BdevError && e.code === c;
}

test('register, look up by name, UUID (any case) and list in order', () => {
  const r = new BdevRegistry();
  const a = new NullBdev({ name: 'n0', numBlocks: 8, blockSize: 512, uuid: U1.toUpperCase() });
  const b = new NullBdev({ name: 'n1', numBlocks: 8, blockSize: 4096, uuid: U2 });
  r.register(a);
  r.register(b);
  assert.equal(a.uuid, U1, 'UUIDs are kept lower-case as SPDK prints them');
  assert.equal(r.get('n0'), a);
  assert.equal(r.get(U1), a);
  assert.equal(r.get(U1.toUpperCase()), a);
  assert.equal(r.get('N0'), undefined, 'names are case-sensitive');
  assert.deepEqual(r.list().map((x) => x.name), ['n0', 'n1']);
  assert.deepEqual(r.aliasesOf(a), [U1]);
  assert.equal(r.size, 2);
});

test('duplicate name or UUID is BDEV_EXISTS and leaves the registry unchanged', () => {
  const r = new BdevRegistry();
  r.register(new NullBdev({ name: 'n0', numBlocks: 8, blockSize: 512, uuid: U1 }));
  assert.throws(() => r.register(new NullBdev({ name: 'n0', numBlocks: 8, blockSize: 512 })), code('BDEV_EXISTS'));
  assert.throws(
    () => r.register(new NullBdev({ name: 'other', numBlocks: 8, blockSize: 512, uuid: U1 })),
    (e: unknown) => e instanceof BdevError && e.code === 'BDEV_EXISTS' && /uuid/.test(e.message),
  );
  // A name equal to another bdev's UUID collides too (one namespace).
  assert.throws(() => r.register(new NullBdev({ name: U1, numBlocks: 8, blockSize: 512 })), code('BDEV_EXISTS'));
  assert.equal(r.size, 1);
  assert.equal(r.get('other'), undefined);
});

test('added / removed events fire; unregister destroys', () => {
  const r = new BdevRegistry();
  const events: string[] = [];
  r.on('added', (b) => events.push(`+${b.name}`));
  r.on('removed', (b) => events.push(`-${b.name}`));
  const m = new MallocBdev({ name: 'm0', numBlocks: 16, blockSize: 512, uuid: U2 });
  r.register(m);
  assert.ok(m.fd >= 0);
  r.unregister(U2);
  assert.deepEqual(events, ['+m0', '-m0']);
  assert.equal(m.fd, -1, 'destroy() closed the memfd');
  assert.equal(r.get('m0'), undefined);
  assert.equal(r.get(U2), undefined);
  assert.throws(() => r.unregister('m0'), code('BDEV_NOT_FOUND'));
});

test('claims: exclusive, block unregister, released only by the holder', () => {
  const r = new BdevRegistry();
  const b: Bdev = new NullBdev({ name: 'n0', numBlocks: 8, blockSize: 512 });
  r.register(b);
  r.claim('n0', 'vhost.0');
  assert.equal(b.claimedBy, 'vhost.0');
  assert.throws(() => r.claim('n0', 'vhost.1'), code('BDEV_CLAIMED'));
  assert.throws(() => r.unregister('n0'), code('BDEV_CLAIMED'));
  assert.throws(() => r.release('n0', 'vhost.1'), code('BDEV_CLAIMED'));
  r.release('n0', 'vhost.0');
  assert.equal(b.claimedBy, null);
  assert.throws(() => r.release('n0'), code('BDEV_NOT_CLAIMED'));
  assert.throws(() => r.claim('nope', 'x'), code('BDEV_NOT_FOUND'));
  r.unregister('n0');
  assert.equal(r.size, 0);
});

test('unregister with a module checks it (bdev_malloc_delete on a null bdev)', () => {
  const r = new BdevRegistry();
  r.register(new NullBdev({ name: 'n0', numBlocks: 8, blockSize: 512 }));
  assert.throws(() => r.unregister('n0', 'malloc'), code('BDEV_WRONG_MODULE'));
  assert.equal(r.unregister('n0', 'null').name, 'n0');
});

test('waitFor resolves when the bdev appears, or undefined after the timeout', async () => {
  const r = new BdevRegistry();
  const p = r.waitFor('late', 1000);
  setTimeout(() => r.register(new NullBdev({ name: 'late', numBlocks: 1, blockSize: 512 })), 10);
  assert.equal((await p)?.name, 'late');
  const t0 = Date.now();
  assert.equal(await r.waitFor('never', 30), undefined);
  assert.ok(Date.now() - t0 >= 25);
  assert.equal(r.listenerCount('added'), 0, 'waiters clean up their listeners');
});

test('bad geometry and names are BDEV_INVALID_PARAM', () => {
  assert.throws(() => new NullBdev({ name: '', numBlocks: 8, blockSize: 512 }), code('BDEV_INVALID_PARAM'));
  assert.throws(() => new NullBdev({ name: 'x', numBlocks: 0, blockSize: 512 }), code('BDEV_INVALID_PARAM'));
  assert.throws(() => new NullBdev({ name: 'x', numBlocks: 8, blockSize: 520 }), code('BDEV_INVALID_PARAM'));
  assert.throws(() => new NullBdev({ name: 'x', numBlocks: 8, blockSize: 256 }), code('BDEV_INVALID_PARAM'));
  assert.throws(() => new NullBdev({ name: 'x', numBlocks: 8, blockSize: 131072 }), code('BDEV_INVALID_PARAM'));
  assert.throws(() => new NullBdev({ name: 'x', numBlocks: 1.5, blockSize: 512 }), code('BDEV_INVALID_PARAM'));
  assert.throws(() => new NullBdev({ name: 'x', numBlocks: 2 ** 52, blockSize: 4096 }), code('BDEV_INVALID_PARAM'));
  assert.throws(() => new NullBdev({ name: 'x', numBlocks: 8, blockSize: 512, uuid: 'not-a-uuid' }), code('BDEV_INVALID_PARAM'));
  assert.throws(() => new NullBdev({ name: 'a\nb', numBlocks: 8, blockSize: 512 }), code('BDEV_INVALID_PARAM'));
  // 512-multiples that are not powers of two are allowed, as in SPDK.
  assert.equal(new NullBdev({ name: 'x', numBlocks: 8, blockSize: 1536 }).blockSize, 1536);
  // The null UUID means "generate one", as in SPDK.
  assert.notEqual(new NullBdev({ name: 'x', numBlocks: 8, blockSize: 512, uuid: '00000000-0000-0000-0000-000000000000' }).uuid, '00000000-0000-0000-0000-000000000000');
});

test('waitFor with a timeout beyond setTimeout range still waits', async () => {
  const r = new BdevRegistry();
  const p = r.waitFor('big', 2 ** 40);
  await new Promise((res) => setTimeout(res, 20));
  r.register(new NullBdev({ name: 'big', numBlocks: 1, blockSize: 512 }));
  assert.equal((await p)?.name, 'big');
});
