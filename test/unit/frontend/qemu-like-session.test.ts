import { test } from 'node:test';
import assert from 'node:assert/strict';
import { socketPair } from '../../../src/sys/unix-socket.ts';
import { GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import { VhostUserClient } from '../../../src/frontend/vhost-user-client.ts';
import { FRONTEND_PROTOCOL_FEATURES, QemuLikeSession, connectLikeQemu } from '../../../src/frontend/qemu-like-session.ts';
import { FakeBackend, standardResponder, type StandardBackendState } from './fake-backend.ts';

const F_PROTOCOL = 1n << 30n;
const F_VERSION_1 = 1n << 32n;
const F_INDIRECT = 1n << 28n;
const F_EVENT_IDX = 1n << 29n;
const SCSI_HOTPLUG = 1n << 1n;

function state(over: Partial<StandardBackendState> = {}): StandardBackendState {
  return {
    features: F_VERSION_1 | F_PROTOCOL | F_INDIRECT | F_EVENT_IDX | SCSI_HOTPLUG,
    protocolFeatures: FRONTEND_PROTOCOL_FEATURES | (1n << 2n), // RARP too: must be masked off
    queueNum: 4,
    maxMemSlots: 32,
    config: new Uint8Array(64),
    status: 0,
    vringBases: new Map([[2, 7]]),
    ...over,
  };
}

function setup(st: StandardBackendState): { client: VhostUserClient; fake: FakeBackend } {
  const [a, b] = socketPair();
  return { client: new VhostUserClient(a), fake: new FakeBackend(b, standardResponder(st)) };
}

test('connect, start and stop follow QEMU 10 message for message', async () => {
  const arena = new GuestMemoryArena();
  const st = state();
  const { client, fake } = setup(st);
  let s: QemuLikeSession | null = null;
  try {
    s = await connectLikeQemu({ client, arena, queueSizes: [16, 16, 32] });
    const bases = await s.stop();
    assert.deepEqual(bases, [0, 0, 7]);
    const seq = fake.received.map((m) => `${m.request}/${m.flags}`);
    const perQueue = (req: string) => [0, 1, 2].map(() => req);
    assert.deepEqual(seq, [
      // connect
      '1/1', '15/1', '16/1', '17/1', '36/1', '21/9', '3/1', '1/1',
      '13/1', '14/1', '13/1', '14/1', '13/1', '14/1',
      // start
      '2/1', '40/1', '39/1', '31/1', '2/1', '40/1', '39/1',
      '37/9', '37/9',
      '8/1', '10/1', '9/1', '12/1', '8/1', '10/1', '9/1', '12/1', '8/1', '10/1', '9/1', '12/1',
      ...perQueue('18/9'), ...perQueue('13/1'),
      // stop
      ...perQueue('18/9'), ...perQueue('11/1'),
    ]);
    const setProto = fake.received[2];
    assert.equal(new DataView(setProto.payload.buffer).getBigUint64(0, true), FRONTEND_PROTOCOL_FEATURES);
    const setFeatures = fake.received[14];
    assert.equal(new DataView(setFeatures.payload.buffer).getBigUint64(0, true), F_VERSION_1 | F_PROTOCOL | F_INDIRECT | F_EVENT_IDX);
    assert.equal(st.status, 8); // FEATURES_OK; scsi never gets DRIVER_OK
    // SET_VRING_ADDR for queue 2 carries user addresses, and the queues know EVENT_IDX is on.
    const addr = fake.received.filter((m) => m.request === 9)[2];
    const dv = new DataView(addr.payload.buffer);
    const q2 = s.queues[2];
    assert.ok(q2);
    assert.equal(Number(dv.getBigUint64(8, true)), arena.gpaToUser(q2.descGpa));
    assert.equal(Number(dv.getBigUint64(16, true)), arena.gpaToUser(q2.usedGpa));
    assert.equal(Number(dv.getBigUint64(24, true)), arena.gpaToUser(q2.availGpa));
    assert.equal(q2.eventIdx, true);
    // The kick fd arrives with SET_VRING_KICK; the guest's call fd with the last SET_VRING_CALLs.
    assert.equal(fake.received.filter((m) => m.request === 12).every((m) => m.fds.length === 1), true);
    // A restart resends SET_VRING_BASE with what GET_VRING_BASE returned.
    const before = fake.received.length;
    await s.start();
    const baseMsgs = fake.received.slice(before).filter((m) => m.request === 10).map((m) => new DataView(m.payload.buffer).getUint32(4, true));
    assert.deepEqual(baseMsgs, [0, 0, 7]);
  } finally {
    s?.close();
    fake.close();
    arena.close();
  }
});

test('without CONFIGURE_MEM_SLOTS the table goes in one SET_MEM_TABLE; uninitialised queues get only CALL/ERR/ENABLE', async () => {
  const arena = new GuestMemoryArena();
  const st = state({ protocolFeatures: (1n << 3n) | (1n << 9n) | (1n << 16n) });
  const { client, fake } = setup(st);
  let s: QemuLikeSession | null = null;
  try {
    s = await connectLikeQemu({ client, arena, queueSizes: [0, 8], configSize: 57, driverOkStatus: true });
    assert.equal(s.config?.length, 57);
    await s.stop();
    await fake.waitFor(30); // the final SET_STATUS(0) has no reply
    const seq = fake.received.map((m) => `${m.request}/${m.flags}`);
    assert.deepEqual(seq, [
      '1/1', '15/1', '16/1', '3/1', '1/1', '13/1', '14/1', '13/1', '14/1', '24/1',
      '2/1', '40/1', '39/1', '2/1', '40/1', '39/1',
      '5/9',
      '8/1', '10/1', '9/1', '12/1',
      '18/9', '18/9', '40/1', '39/1', '13/1',
      '18/9', '18/9', '11/1', '39/1',
    ]);
    const mem = fake.received[16];
    assert.equal(mem.size, 8 + 2 * 32);
    assert.equal(mem.fds.length, 2);
    assert.equal(st.status, 0); // SET_STATUS(0) after stop
  } finally {
    s?.close();
    fake.close();
    arena.close();
  }
});

test('a back-end with fewer queues than configured is refused with a typed error', async () => {
  const arena = new GuestMemoryArena();
  const { client, fake } = setup(state({ queueNum: 2 }));
  try {
    await assert.rejects(QemuLikeSession.connect({ client, arena, queueSizes: [8, 8, 8] }),
      (e: unknown) => (e as { code?: string }).code === 'TOO_MANY_QUEUES');
  } finally {
    fake.close();
    arena.close();
  }
});
