import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recvWithFds, sendWithFds, socketPair } from '../../../src/sys/unix-socket.ts';
import { GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import { VhostUserClient } from '../../../src/frontend/vhost-user-client.ts';
import { FRONTEND_PROTOCOL_FEATURES, QemuLikeSession, connectLikeQemu } from '../../../src/frontend/qemu-like-session.ts';
import { FRONTEND_BLK_FEATURES, connectLikeQemuBlk, type QemuBlkConnection } from '../../../src/frontend/qemu-like-blk.ts';
import { DriverPackedQueue } from '../../../src/frontend/driver-packed-queue.ts';
import { FakeBackend, standardResponder, type Received, type StandardBackendState } from './fake-backend.ts';

const F_PROTOCOL = 1n << 30n;
const F_VERSION_1 = 1n << 32n;
const F_EVENT_IDX = 1n << 29n;
const F_PACKED = 1n << 34n;
const BLK_FLUSH = 1n << 9n;
const BLK_MQ = 1n << 12n;
const BLK_SECURE_ERASE = 1n << 16n; // not taken by the front-end

function config(capacity: bigint): Uint8Array {
  const c = new Uint8Array(64);
  const v = new DataView(c.buffer);
  v.setBigUint64(0, capacity, true);
  v.setUint32(12, 126, true); // seg_max
  v.setUint32(20, 512, true); // blk_size
  v.setUint16(34, 2, true); // num_queues
  c[56] = 1; // write_zeroes_may_unmap
  return c;
}

function state(over: Partial<StandardBackendState> = {}): StandardBackendState {
  return {
    features: F_VERSION_1 | F_PROTOCOL | F_EVENT_IDX | F_PACKED | BLK_FLUSH | BLK_MQ | BLK_SECURE_ERASE,
    protocolFeatures: FRONTEND_PROTOCOL_FEATURES,
    queueNum: 2,
    maxMemSlots: 32,
    config: config(2048n),
    status: 0,
    vringBases: new Map(),
    ...over,
  };
}

function setup(st: StandardBackendState): { client: VhostUserClient; fake: FakeBackend } {
  const [a, b] = socketPair();
  return { client: new VhostUserClient(a), fake: new FakeBackend(b, standardResponder(st)) };
}

const u32 = (m: Received, off: number): number => new DataView(m.payload.buffer).getUint32(off, true);
const u64 = (m: Received, off: number): bigint => new DataView(m.payload.buffer).getBigUint64(off, true);

/** Reads one reply on the back-end request socket, polling (the front-end answers asynchronously). */
async function readBackendReply(fd: number): Promise<Uint8Array> {
  const buf = new Uint8Array(20);
  let got = 0;
  const deadline = Date.now() + 2000;
  while (got < 20) {
    if (Date.now() > deadline) throw new Error(`back-end reply: ${got} of 20 bytes`);
    const r = recvWithFds(fd, buf, got, 20 - got);
    if (r === null) await new Promise((res) => setTimeout(res, 5));
    else got += r.bytes;
  }
  return buf;
}

function configChangeMsg(): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, 2, true); // VHOST_USER_BACKEND_CONFIG_CHANGE_MSG
  v.setUint32(4, 0x9, true); // version 1 | NEED_REPLY
  return b;
}

test('blk on packed rings: QEMU\'s sequence, features with RING_PACKED, wrap counters in SET_VRING_BASE, event areas in SET_VRING_ADDR', async () => {
  const arena = new GuestMemoryArena();
  const st = state();
  const { client, fake } = setup(st);
  let conn: QemuBlkConnection | null = null;
  try {
    conn = await connectLikeQemuBlk({ client, arena, numQueues: 2, queueSize: 64, packed: true });
    assert.deepEqual([conn.config.capacity, conn.config.segMax, conn.config.numQueues, conn.config.writeZeroes?.mayUnmap], [2048, 126, 2, 1]);
    await conn.stop();
    await fake.waitFor(41); // SET_STATUS(0) has no reply
    const seq = fake.received.map((m) => `${m.request}/${m.flags}`);
    const perQueue = (...reqs: string[]) => [0, 1].flatMap(() => reqs);
    assert.deepEqual(seq, [
      '1/1', '15/1', '16/1', '17/1', '36/1', '21/9', '3/1', '1/1', ...perQueue('13/1', '14/1'), '24/1',
      '2/1', '40/1', '39/1', '31/1', '2/1', '40/1', '39/1', '37/9', '37/9',
      ...perQueue('8/1', '10/1', '9/1', '12/1'), ...perQueue('18/9'), '40/1', '39/1', ...perQueue('13/1'),
      ...perQueue('18/9'), ...perQueue('11/1'), '39/1',
    ]);
    const getConfig = fake.received[12];
    assert.equal(getConfig.size, 12 + 57);
    assert.deepEqual([u32(getConfig, 0), u32(getConfig, 4), u32(getConfig, 8)], [0, 57, 0]);
    const setFeatures = fake.received.find((m) => m.request === 2);
    assert.ok(setFeatures);
    assert.equal(u64(setFeatures, 0), F_VERSION_1 | F_PROTOCOL | F_EVENT_IDX | F_PACKED | BLK_FLUSH | BLK_MQ);
    assert.equal(FRONTEND_BLK_FEATURES & BLK_SECURE_ERASE, 0n);
    const bases = fake.received.filter((m) => m.request === 10).map((m) => [u32(m, 0), u32(m, 4)]);
    assert.deepEqual(bases, [[0, 0x80008000], [1, 0x80008000]]);
    const q1 = conn.session.queues[1];
    assert.ok(q1 instanceof DriverPackedQueue);
    const addr = fake.received.filter((m) => m.request === 9)[1];
    assert.equal(u32(addr, 0), 1);
    assert.equal(Number(u64(addr, 8)), arena.gpaToUser(q1.descGpa));
    assert.equal(Number(u64(addr, 16)), arena.gpaToUser(q1.deviceEventGpa));
    assert.equal(Number(u64(addr, 24)), arena.gpaToUser(q1.driverEventGpa));
    assert.equal(q1.eventIdx, true);
    assert.equal(conn.driver.requestQueues.length, 2);
    assert.equal(st.status, 0);
  } finally {
    conn?.close();
    fake.close();
    arena.close();
  }
});

test('packed rings the back-end does not offer: FEATURE_NOT_OFFERED at connect', async () => {
  const arena = new GuestMemoryArena();
  const { client, fake } = setup(state({ features: F_VERSION_1 | F_PROTOCOL }));
  try {
    await assert.rejects(QemuLikeSession.connect({ client, arena, queueSizes: [8], packed: true }),
      (e: unknown) => (e as { code?: string }).code === 'FEATURE_NOT_OFFERED');
  } finally {
    fake.close();
    arena.close();
  }
});

test('CONFIG_CHANGE_MSG: re-read config before the reply while started; ignored (success) while stopped', async () => {
  const arena = new GuestMemoryArena();
  const st = state();
  const { client, fake } = setup(st);
  const inner = fake.responder;
  let replyBeforeGetConfig: boolean | null = null;
  let backendFd = -1;
  fake.responder = (m, f) => {
    if (m.request === 24 && backendFd >= 0) replyBeforeGetConfig = recvWithFds(backendFd, new Uint8Array(20), 0, 20) !== null;
    inner(m, f);
  };
  let conn: QemuBlkConnection | null = null;
  try {
    conn = await connectLikeQemuBlk({ client, arena });
    const reqFd = fake.received.find((m) => m.request === 21)?.fds[0];
    assert.ok(reqFd !== undefined);
    backendFd = reqFd;
    st.config = config(8192n); // the disk grew
    const changed = conn.waitForConfigChange(2000);
    sendWithFds(backendFd, configChangeMsg());
    assert.equal((await changed).capacity, 8192);
    assert.equal(Buffer.from(await readBackendReply(backendFd)).toString('hex'), '02000000' + '05000000' + '08000000' + '0000000000000000');
    assert.equal(replyBeforeGetConfig, false);
    assert.deepEqual([conn.session.configGeneration, conn.session.configChangeMessages], [1, 1]);
    assert.equal(conn.session.client.backendRequests.length, 1);

    await conn.stop();
    const before = fake.received.length;
    st.config = config(1n);
    sendWithFds(backendFd, configChangeMsg());
    assert.equal(Buffer.from(await readBackendReply(backendFd)).subarray(12).toString('hex'), '0000000000000000');
    assert.equal(fake.received.slice(before).some((m) => m.request === 24), false);
    assert.deepEqual([conn.session.configGeneration, conn.session.configChangeMessages, conn.config.capacity], [1, 2, 8192]);
  } finally {
    conn?.close();
    fake.close();
    arena.close();
  }
});

test('CONFIG_CHANGE_MSG on a session without a config space (scsi) fails, as in QEMU', async () => {
  const arena = new GuestMemoryArena();
  const { client, fake } = setup(state({ queueNum: 3 }));
  let s: QemuLikeSession | null = null;
  try {
    s = await connectLikeQemu({ client, arena, queueSizes: [8, 8, 8] });
    const fd = fake.received.find((m) => m.request === 21)?.fds[0];
    assert.ok(fd !== undefined);
    sendWithFds(fd, configChangeMsg());
    assert.equal(Buffer.from(await readBackendReply(fd)).subarray(12).toString('hex'), '0100000000000000');
    assert.equal(s.configChangeMessages, 1);
  } finally {
    s?.close();
    fake.close();
    arena.close();
  }
});
