import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rawExchange, startServer } from './rpc-harness.ts';
import { RpcClient } from '../../../src/rpc/rpc-client.ts';
import { RpcServerError, createRpcServer } from '../../../src/rpc/rpc-server.ts';
import { BdevRegistry } from '../../../src/bdev/bdev-registry.ts';
import { listenUnix } from '../../../src/sys/unix-socket.ts';
import { closeFd } from '../../../src/sys/fd.ts';

const req = (id: unknown, method: string, params?: unknown): string =>
  JSON.stringify(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params }, null, 2);

test('a request split over several writes is answered once; rpc.py-style pretty JSON works', async () => {
  const h = await startServer();
  try {
    const text = req(1, 'bdev_wait_for_examine');
    const r = await rawExchange(h.socketPath, [text.slice(0, 5), text.slice(5, 20), text.slice(20)], 1);
    assert.deepEqual(r.responses, [{ jsonrpc: '2.0', id: 1, result: true }]);
  } finally {
    await h.stop();
  }
});

test('back-to-back requests in one write are answered in order; string ids echo back', async () => {
  const h = await startServer();
  try {
    const text = req('a', 'bdev_malloc_create', { name: 'm0', num_blocks: 8, block_size: 512 }) + req(7, 'bdev_get_bdevs', { name: 'm0' });
    const r = await rawExchange(h.socketPath, [text], 2);
    assert.equal(r.responses.length, 2);
    assert.deepEqual(r.responses[0], { jsonrpc: '2.0', id: 'a', result: 'm0' });
    const second = r.responses[1] as { id: number; result: { name: string }[] };
    assert.equal(second.id, 7);
    assert.equal(second.result[0].name, 'm0');
  } finally {
    await h.stop();
  }
});

test('notifications run but get no reply, not even on error', async () => {
  const h = await startServer();
  try {
    const notify = JSON.stringify({ jsonrpc: '2.0', method: 'bdev_null_create', params: { name: 'n0', num_blocks: 8, block_size: 512 } });
    const badNotify = JSON.stringify({ jsonrpc: '2.0', method: 'no_such_method' });
    const r = await rawExchange(h.socketPath, [notify + badNotify + req(2, 'bdev_get_bdevs')], 1);
    assert.equal(r.responses.length, 1);
    const res = r.responses[0] as { id: number; result: { name: string }[] };
    assert.equal(res.id, 2);
    assert.deepEqual(res.result.map((b) => b.name), ['n0']);
  } finally {
    await h.stop();
  }
});

test('batches: one array reply without the notifications; empty batch is invalid', async () => {
  const h = await startServer();
  try {
    const batch = JSON.stringify([
      { jsonrpc: '2.0', id: 1, method: 'framework_wait_init' },
      { jsonrpc: '2.0', method: 'framework_wait_init' },
      42,
      { jsonrpc: '2.0', id: 3, method: 'nope' },
    ]);
    const r = await rawExchange(h.socketPath, [batch, '[]'], 2);
    assert.deepEqual(r.responses[0], [
      { jsonrpc: '2.0', id: 1, result: true },
      { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid request', data: { code: 'RPC_INVALID_REQUEST', detail: 'a request must be a JSON object' } } },
      { jsonrpc: '2.0', id: 3, error: { code: -32601, message: 'Method not found', data: { code: 'RPC_METHOD_NOT_FOUND', detail: "no method 'nope' (rpc_get_methods lists them)" } } },
    ]);
    assert.deepEqual(r.responses[1], {
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: 'Invalid request', data: { code: 'RPC_INVALID_REQUEST', detail: 'empty batch' } },
    });
    // A batch of notifications only: nothing at all comes back.
    const quiet = await rawExchange(h.socketPath, [JSON.stringify([{ jsonrpc: '2.0', method: 'framework_wait_init' }])], 0);
    assert.deepEqual(quiet.responses, []);
  } finally {
    await h.stop();
  }
});

test('invalid requests: -32600 with the reason; bad params: -32602 naming the field', async () => {
  const h = await startServer();
  try {
    const r = await rawExchange(
      h.socketPath,
      [
        JSON.stringify({ jsonrpc: '2.0', id: 1, method: 5 }),
        JSON.stringify({ jsonrpc: '1.0', id: 2, method: 'framework_wait_init' }),
        JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'framework_wait_init', params: 'x' }),
        JSON.stringify({ jsonrpc: '2.0', id: { x: 1 }, method: 'framework_wait_init' }),
        JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'framework_wait_init', extra: 1 }),
        JSON.stringify({ id: 6, method: 'framework_wait_init' }),
        JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'bdev_malloc_create', params: { block_size: '512', nme: 'x' } }),
        JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'bdev_get_bdevs', params: ['x'] }),
      ],
      8,
    );
    const errs = r.responses.map((x) => x as { id: unknown; result?: unknown; error?: { code: number; message: string; data?: { detail: string } } });
    assert.deepEqual(errs.map((e) => [e.id, e.error?.code ?? e.result]), [
      [1, -32600],
      [2, -32600],
      [3, -32600],
      [null, -32600],
      [5, -32600],
      [6, true], // "jsonrpc" may be absent, as SPDK allows
      [7, -32602],
      [8, -32602],
    ]);
    assert.equal(errs[0].error?.data?.detail, 'method must be a string');
    assert.equal(errs[1].error?.data?.detail, 'jsonrpc must be "2.0"');
    assert.equal(errs[4].error?.data?.detail, "unknown member 'extra' in request");
    assert.equal(
      errs[6].error?.message,
      "Invalid parameters: missing required parameter 'num_blocks'; 'block_size': expected number, received string; unknown parameter 'nme'",
    );
    assert.equal(errs[7].error?.message, 'Invalid parameters: params must be an object of named parameters');
    assert.equal(r.closed, false, 'the connection stays open after ordinary errors');
  } finally {
    await h.stop();
  }
});

test('parse errors: -32700 with id null, earlier requests still served, then the connection closes', async () => {
  const h = await startServer();
  try {
    const r = await rawExchange(h.socketPath, [req(1, 'framework_wait_init') + ' oops {"more": 1}'], 2);
    assert.equal(r.closed, true);
    assert.deepEqual(r.responses[0], { jsonrpc: '2.0', id: 1, result: true });
    const e = r.responses[1] as { id: null; error: { code: number; message: string; data: { detail: string } } };
    assert.equal(e.id, null);
    assert.equal(e.error.code, -32700);
    assert.equal(e.error.message, 'Parse error');
    assert.match(e.error.data.detail, /expected '\{' or '\['/);
    // Balanced but not JSON.
    const r2 = await rawExchange(h.socketPath, ['{"a": }'], 1);
    assert.equal((r2.responses[0] as { error: { code: number } }).error.code, -32700);
    assert.equal(r2.closed, true);
  } finally {
    await h.stop();
  }
});

test('several clients at once, each with its own stream state', async () => {
  const h = await startServer();
  try {
    const clients = await Promise.all([0, 1, 2, 3].map(() => RpcClient.connect(h.socketPath)));
    const names = await Promise.all(clients.map((c, i) => c.call('bdev_null_create', { name: `n${i}`, num_blocks: 1, block_size: 512 })));
    assert.deepEqual(names, ['n0', 'n1', 'n2', 'n3']);
    assert.equal(h.server.connections, 4);
    const lists = await Promise.all(clients.map((c) => c.call('bdev_get_bdevs')));
    for (const l of lists) assert.equal((l as unknown[]).length, 4);
    for (const c of clients) c.close();
  } finally {
    await h.stop();
  }
});

test('start: a stale socket file is replaced, a live one or a non-socket file is refused; close removes it', async () => {
  const h = await startServer();
  try {
    // Live: another server owns the path.
    const second = createRpcServer({ socketPath: h.socketPath, bdevs: new BdevRegistry() });
    await assert.rejects(second.start(), (e: unknown) => e instanceof RpcServerError && e.code === 'RPC_SOCKET_IN_USE');
    // Stale: a socket file nobody listens on.
    const stalePath = join(h.dir, 'stale.sock');
    closeFd(listenUnix(stalePath));
    assert.ok(existsSync(stalePath));
    const third = createRpcServer({ socketPath: stalePath, bdevs: new BdevRegistry() });
    await third.start();
    const c = await RpcClient.connect(stalePath);
    assert.equal(await c.call('framework_wait_init'), true);
    c.close();
    // Listened on under a staging name first (the file appears only once it accepts): none left.
    assert.deepEqual(readdirSync(h.dir).filter((f) => f.startsWith('.')), []);
    await third.close();
    assert.equal(existsSync(stalePath), false);
    // A regular file is never deleted.
    const filePath = join(h.dir, 'file');
    writeFileSync(filePath, 'keep me');
    const fourth = createRpcServer({ socketPath: filePath, bdevs: new BdevRegistry() });
    await assert.rejects(fourth.start(), (e: unknown) => e instanceof RpcServerError && e.code === 'RPC_SOCKET_PATH_EXISTS');
    assert.ok(existsSync(filePath));
  } finally {
    await h.stop();
  }
});

test('in-process call() takes the same path as the socket', async () => {
  const h = await startServer();
  try {
    assert.equal(await h.server.call('bdev_malloc_create', { num_blocks: 4, block_size: 512 }), 'Malloc0');
    await assert.rejects(h.server.call('bdev_malloc_create', { num_blocks: 4 }), (e: unknown) => {
      const err = e as { code: string; rpcCode: number; message: string };
      return err.code === 'RPC_INVALID_PARAMS' && err.rpcCode === -32602 && err.message === "Invalid parameters: missing required parameter 'block_size'";
    });
  } finally {
    await h.stop();
  }
});
