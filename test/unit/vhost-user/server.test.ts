import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectUnix, listenUnix } from '../../../src/sys/unix-socket.ts';
import { closeFd } from '../../../src/sys/fd.ts';
import { VhostUserServer, VhostUserServerError } from '../../../src/vhost-user/server.ts';
import * as T from '../../../src/vhost-user/message-types.ts';
import { RecordingDevice } from './recording-device.ts';
import { TestFrontEnd, openFdCount, until } from './test-frontend.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'vhostd-vu-'));
}

test('one front-end at a time; the next one waits in the backlog until the first leaves', async () => {
  const dir = tempDir();
  const baseline = openFdCount();
  try {
    const path = join(dir, 'scsi0.sock');
    const device = new RecordingDevice();
    const server = new VhostUserServer(path, device);
    const events: string[] = [];
    server.on('connect', () => events.push('connect'));
    server.on('disconnect', (reason) => events.push(`disconnect: ${reason}`));
    server.listen();
    assert.equal(server.connected, false);

    const first = new TestFrontEnd(connectUnix(path));
    await until(() => server.connected, 'first connection');
    first.send(T.VHOST_USER_GET_QUEUE_NUM);
    assert.equal(await first.replyU64(T.VHOST_USER_GET_QUEUE_NUM), 4n);

    // QEMU reconnecting while the old session lives: connect() succeeds (backlog) but nobody answers.
    const second = new TestFrontEnd(connectUnix(path));
    second.send(T.VHOST_USER_GET_QUEUE_NUM);
    await second.nothing(50);
    assert.deepEqual(device.ops(), ['connected']);

    first.close();
    await until(() => events.length === 3, 'second connection');
    assert.deepEqual(events, ['connect', 'disconnect: front-end closed the connection', 'connect']);
    assert.equal(await second.replyU64(T.VHOST_USER_GET_QUEUE_NUM), 4n);
    assert.deepEqual(device.ops(), ['connected', 'disconnected', 'connected']);

    await server.close();
    assert.equal(server.connected, false);
    assert.equal(existsSync(path), false, 'close() removes the socket file');
    await second.closedByPeer();
    second.close();
    assert.deepEqual(device.ops(), ['connected', 'disconnected', 'connected', 'disconnected']);
    assert.equal(events.at(-1), 'disconnect: server closed');
    assert.equal(openFdCount(), baseline);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listen() replaces a stale socket file but nothing else', async () => {
  const dir = tempDir();
  try {
    const stale = join(dir, 'stale.sock');
    closeFd(listenUnix(stale)); // the file stays, nobody listens
    const s1 = new VhostUserServer(stale, new RecordingDevice());
    s1.listen();
    const c = new TestFrontEnd(connectUnix(stale));
    await until(() => s1.connected, 'connection on the re-created socket');

    // A socket something listens on is left alone.
    const s2 = new VhostUserServer(stale, new RecordingDevice());
    assert.throws(() => s2.listen(), (e: unknown) => e instanceof VhostUserServerError && e.code === 'SOCKET_PATH_IN_USE');
    assert.equal(s1.connected, true);

    const file = join(dir, 'file.sock');
    writeFileSync(file, 'not a socket');
    const s3 = new VhostUserServer(file, new RecordingDevice());
    assert.throws(() => s3.listen(), (e: unknown) => e instanceof VhostUserServerError && e.code === 'NOT_A_SOCKET');
    assert.equal(existsSync(file), true);

    c.close();
    await s1.close();
    await s1.close(); // idempotent
    assert.throws(() => s1.listen(), (e: unknown) => e instanceof VhostUserServerError && e.code === 'SERVER_CLOSED');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
