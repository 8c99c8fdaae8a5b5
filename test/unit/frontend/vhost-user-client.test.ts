import { test } from 'node:test';
import assert from 'node:assert/strict';
import { socketPair } from '../../../src/sys/unix-socket.ts';
import { closeFd } from '../../../src/sys/fd.ts';
import { eventfdCreate, eventfdDrain, eventfdSignal } from '../../../src/sys/eventfd.ts';
import { mmapFd, munmap, viewOf } from '../../../src/sys/memory.ts';
import { VhostUserClient, VhostUserClientError } from '../../../src/frontend/vhost-user-client.ts';
import { GuestMemoryArena } from '../../../src/frontend/guest-memory-arena.ts';
import { FakeBackend, u64, type Responder } from './fake-backend.ts';

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** little-endian hex of a u32 / u64 */
function le32(v: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b.toString('hex');
}
function le64(v: bigint | number): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b.toString('hex');
}

function pair(responder: Responder = () => {}, replyTimeoutMs = 2000): { client: VhostUserClient; fake: FakeBackend; done: () => void } {
  const [a, b] = socketPair();
  const client = new VhostUserClient(a, { replyTimeoutMs });
  const fake = new FakeBackend(b, responder);
  return { client, fake, done: () => { client.close(); fake.close(); } };
}

function isCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof VhostUserClientError && e.code === code;
}

test('GET_FEATURES / SET_FEATURES: exact header and payload bytes', async () => {
  const { client, fake, done } = pair((m, f) => { if (m.request === 1) f.replyU64(m, 0x1_4000_0003n); });
  try {
    assert.equal(await client.getFeatures(), 0x1_4000_0003n);
    await client.setFeatures(0x1_4000_0001n);
    await fake.waitFor(2);
    assert.equal(hex(fake.received[0].raw), le32(1) + le32(1) + le32(0));
    assert.equal(hex(fake.received[1].raw), le32(2) + le32(1) + le32(8) + le64(0x1_4000_0001n));
    assert.equal(client.features, 0x1_4000_0001n);
  } finally {
    done();
  }
});

test('SET_MEM_TABLE: 8 + 32n payload with user addresses distinct from GPAs, one fd per region', async () => {
  const arena = new GuestMemoryArena([
    { size: 1 << 20, guestPhysAddr: 0 },
    { size: 2 << 20, guestPhysAddr: 0x1_0000_0000, userAddr: 0x7f12_3400_0000, mmapOffset: 4096 },
  ]);
  const { client, fake, done } = pair();
  try {
    await client.setMemTable(arena.regions);
    await fake.waitFor(1);
    const m = fake.received[0];
    assert.equal(m.size, 72);
    assert.equal(hex(m.raw),
      le32(5) + le32(1) + le32(72) + le32(2) + le32(0) +
      le64(0) + le64(1 << 20) + le64(0x7f00_0000_0000) + le64(0) +
      le64(0x1_0000_0000) + le64(2 << 20) + le64(0x7f12_3400_0000) + le64(4096));
    assert.equal(m.fds.length, 2);
    // The second fd is region 1's memfd: a byte written through the arena is visible through it.
    arena.bytesAt(0x1_0000_0000 + 10, 1)[0] = 0x5a;
    const addr = mmapFd(m.fds[1], (2 << 20) + 4096);
    assert.equal(new Uint8Array(viewOf(addr, (2 << 20) + 4096))[4096 + 10], 0x5a);
    munmap(addr, (2 << 20) + 4096);
  } finally {
    done();
    arena.close();
  }
});

test('vring messages: NUM, BASE, ADDR, KICK (fd and no-fd), CALL, ERR, ENABLE', async () => {
  const { client, fake, done } = pair();
  const efd = eventfdCreate();
  try {
    await client.setVringNum(2, 128);
    await client.setVringBase(2, 0xfffe);
    await client.setVringAddr({ index: 2, flags: 0, descUserAddr: 0x7f00_0000_1000, usedUserAddr: 0x7f00_0000_3000, availUserAddr: 0x7f00_0000_2000, logGuestAddr: 0 });
    await client.setVringKick(2, efd);
    await client.setVringCall(3, -1);
    await client.setVringErr(1, efd);
    await client.setVringEnable(2, true);
    await fake.waitFor(7);
    const r = fake.received;
    assert.equal(hex(r[0].raw), le32(8) + le32(1) + le32(8) + le32(2) + le32(128));
    assert.equal(hex(r[1].raw), le32(10) + le32(1) + le32(8) + le32(2) + le32(0xfffe));
    assert.equal(hex(r[2].raw), le32(9) + le32(1) + le32(40) + le32(2) + le32(0) +
      le64(0x7f00_0000_1000) + le64(0x7f00_0000_3000) + le64(0x7f00_0000_2000) + le64(0));
    assert.equal(hex(r[3].raw), le32(12) + le32(1) + le32(8) + le64(2));
    assert.equal(r[3].fds.length, 1);
    // The kick fd that arrived is the same eventfd.
    eventfdSignal(r[3].fds[0]);
    assert.equal(eventfdDrain(efd), 1);
    assert.equal(hex(r[4].raw), le32(13) + le32(1) + le32(8) + le64(0x103));
    assert.equal(r[4].fds.length, 0);
    assert.equal(hex(r[5].raw), le32(14) + le32(1) + le32(8) + le64(1));
    assert.equal(r[5].fds.length, 1);
    assert.equal(hex(r[6].raw), le32(18) + le32(1) + le32(8) + le32(2) + le32(1));
    await assert.rejects(client.setVringKick(256, efd), isCode('BAD_ARGUMENT'));
  } finally {
    done();
    closeFd(efd);
  }
});

test('REPLY_ACK: NEED_REPLY on the messages QEMU sets it on, failures surface as REQUEST_FAILED', async () => {
  let ack = 0n;
  const { client, fake, done } = pair((m, f) => { if (m.flags & 0x8) f.replyU64(m, ack); });
  try {
    await client.setProtocolFeatures(1n << 3n);
    await client.setVringEnable(0, true); // QEMU 10 sets NEED_REPLY here
    await client.setVringNum(0, 64); // and not here
    await client.setOwner({ needReply: true }); // explicit override
    ack = 1n;
    await assert.rejects(client.setVringEnable(0, false), isCode('REQUEST_FAILED'));
    await fake.waitFor(5);
    assert.deepEqual(fake.received.map((m) => [m.request, m.flags]), [[16, 1], [18, 9], [8, 1], [3, 9], [18, 9]]);
    assert.equal(hex(fake.received[0].payload), le64(8));
  } finally {
    done();
  }
});

test('replies are validated: flags exactly 0x5, request, size, fds', async () => {
  let mode = '';
  const efd = eventfdCreate();
  const { client, fake, done } = pair((m, f) => {
    if (mode === 'echo-need-reply') f.send(m.request, 0xd, u64(1));
    else if (mode === 'wrong-request') f.send(2, 0x5, u64(1));
    else if (mode === 'short') f.send(m.request, 0x5, new Uint8Array(4));
    else if (mode === 'fds') f.send(m.request, 0x5, u64(1), [efd]);
    else if (mode === 'vring-index') f.send(m.request, 0x5, new Uint8Array([5, 0, 0, 0, 9, 0, 0, 0]));
  });
  try {
    mode = 'echo-need-reply';
    await assert.rejects(client.getFeatures(), isCode('BAD_REPLY_FLAGS'));
    mode = 'wrong-request';
    await assert.rejects(client.getFeatures(), isCode('BAD_REPLY_REQUEST'));
    mode = 'short';
    await assert.rejects(client.getQueueNum(), isCode('BAD_REPLY_SIZE'));
    mode = 'fds';
    await assert.rejects(client.getStatus(), isCode('UNEXPECTED_FDS'));
    mode = 'vring-index';
    await assert.rejects(client.getVringBase(4), isCode('BAD_REPLY'));
    await fake.waitFor(5);
  } finally {
    done();
    closeFd(efd);
  }
});

test('GET_CONFIG: request bytes, exact-size reply, refusal', async () => {
  let refuse = false;
  const { client, fake, done } = pair((m, f) => {
    if (refuse) return f.reply(m, new Uint8Array(0));
    const out = new Uint8Array(12 + 4);
    out.set(m.payload.subarray(0, 12));
    out.set([1, 2, 3, 4], 12);
    f.reply(m, out);
  });
  try {
    const cfg = await client.getConfig(8, 4);
    assert.deepEqual([...cfg], [1, 2, 3, 4]);
    await fake.waitFor(1);
    assert.equal(hex(fake.received[0].raw), le32(24) + le32(1) + le32(16) + le32(8) + le32(4) + le32(0) + '00000000');
    refuse = true;
    await assert.rejects(client.getConfig(0, 57), isCode('REQUEST_FAILED'));
  } finally {
    done();
  }
});

test('a missing reply times out and the late reply does not shift later ones', async () => {
  let delayNext = true;
  let lateSent!: () => void;
  const late = new Promise<void>((r) => (lateSent = r));
  const { client, fake, done } = pair((m, f) => {
    if (m.request !== 17) return;
    if (delayNext) {
      delayNext = false;
      setTimeout(() => {
        f.replyU64(m, 111);
        lateSent();
      }, 80);
    } else {
      f.replyU64(m, 222);
    }
  }, 30);
  try {
    await assert.rejects(client.getQueueNum(), isCode('TIMEOUT'));
    await late;
    await new Promise((r) => setTimeout(r, 20)); // the late 111 arrives and is swallowed
    client.options.replyTimeoutMs = 2000;
    assert.equal(await client.getQueueNum(), 222);
    assert.equal(client.unsolicited.length, 0);
  } finally {
    done();
  }
});

test('disconnect fails pending calls and resolves closed', async () => {
  const { client, fake, done } = pair((m, f) => { if (m.request === 1) f.close(); });
  try {
    await assert.rejects(client.getFeatures(), isCode('DISCONNECTED'));
    const reason = await client.closed;
    assert.equal(reason?.code, 'DISCONNECTED');
    await assert.rejects(client.setOwner(), isCode('DISCONNECTED'));
  } finally {
    done();
  }
});

test('unsolicited messages are recorded, not matched to later requests', async () => {
  const { client, fake, done } = pair((m, f) => {
    if (m.request === 3) f.replyU64(m, 0); // reply to SET_OWNER without NEED_REPLY: a back-end bug
    if (m.request === 1) f.replyU64(m, 7);
  });
  try {
    await client.setOwner();
    await fake.waitFor(1);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(client.unsolicited.length, 1);
    assert.equal(client.unsolicited[0].request, 3);
  } finally {
    done();
  }
});

test('sendRaw sends any header (lying size field) and returns the raw reply', async () => {
  const { client, fake, done } = pair((m, f) => { if (m.request === 99) f.send(99, 0x7, new Uint8Array([1, 2, 3])); });
  try {
    await client.sendRaw(5, 0x1, new Uint8Array([0xff, 0xff, 0, 0]), [], { sizeField: 4 });
    const r = await client.sendRaw(99, 0x2, new Uint8Array(0), [], { expectReply: true });
    assert.deepEqual(r && [r.request, r.flags, r.size, [...r.payload]], [99, 7, 3, [1, 2, 3]]);
    client.sendRawBytes(new Uint8Array([1, 0, 0]));
    await fake.waitFor(2);
    assert.equal(hex(fake.received[0].raw), le32(5) + le32(1) + le32(4) + 'ffff0000');
    assert.equal(hex(fake.received[1].raw), le32(99) + le32(2) + le32(0));
  } finally {
    done();
  }
});

test('back-end request channel: SET_BACKEND_REQ_FD carries a socket, CONFIG_CHANGE_MSG is acked', async () => {
  const { client, fake, done } = pair((m, f) => { if (m.flags & 0x8) f.replyU64(m, 0); });
  try {
    await client.setProtocolFeatures((1n << 3n) | (1n << 5n));
    await client.openBackendChannel();
    await fake.waitFor(2);
    const m = fake.received[1];
    assert.deepEqual([m.request, m.flags, m.size, m.fds.length], [21, 9, 0, 1]);
    const backendSide = new FakeBackend(m.fds[0]);
    m.fds.length = 0; // now owned by backendSide
    try {
      backendSide.send(2, 0x9, new Uint8Array(0));
      await backendSide.waitFor(1);
      assert.equal(hex(backendSide.received[0].raw), le32(2) + le32(5) + le32(8) + le64(0));
      assert.equal(client.backendRequests.length, 1);
      assert.equal(client.backendRequests[0].request, 2);
    } finally {
      backendSide.close();
    }
  } finally {
    done();
  }
});

test('inflight: GET_INFLIGHT_FD payload is the 24-byte struct and the fd is handed over', async () => {
  const efd = eventfdCreate();
  const { client, fake, done } = pair((m, f) => {
    if (m.request !== 31) return;
    const out = new Uint8Array(24);
    const dv = new DataView(out.buffer);
    dv.setBigUint64(0, 4096n, true);
    dv.setUint16(16, 3, true);
    dv.setUint16(18, 128, true);
    f.reply(m, out, [efd]);
  });
  try {
    const info = await client.getInflightFd(3, 128);
    assert.deepEqual([info.mmapSize, info.mmapOffset, info.numQueues, info.queueSize], [4096n, 0n, 3, 128]);
    assert.ok(info.fd >= 0);
    await fake.waitFor(1);
    assert.equal(hex(fake.received[0].raw), le32(31) + le32(1) + le32(24) + le64(0) + le64(0) + '0300' + '8000' + '00000000');
    closeFd(info.fd);
  } finally {
    done();
    closeFd(efd);
  }
});

test('ADD_MEM_REG / REM_MEM_REG (u64 padding first; fd only with ADD), RESET_DEVICE, SET_STATUS', async () => {
  const arena = new GuestMemoryArena([{ size: 1 << 20, guestPhysAddr: 0x4000_0000, userAddr: 0x7f00_1000_0000 }]);
  const { client, fake, done } = pair();
  try {
    const r = arena.regions[0];
    await client.addMemReg(r);
    await client.remMemReg(r);
    await client.resetDevice();
    await client.setStatus(0xb);
    await fake.waitFor(4);
    const region = le64(0x4000_0000) + le64(1 << 20) + le64(0x7f00_1000_0000) + le64(0);
    assert.equal(hex(fake.received[0].raw), le32(37) + le32(1) + le32(40) + le64(0) + region);
    assert.equal(fake.received[0].fds.length, 1);
    assert.equal(hex(fake.received[1].raw), le32(38) + le32(1) + le32(40) + le64(0) + region);
    assert.equal(fake.received[1].fds.length, 0);
    assert.equal(hex(fake.received[2].raw), le32(34) + le32(1) + le32(0));
    assert.equal(hex(fake.received[3].raw), le32(39) + le32(1) + le32(8) + le64(0xb));
  } finally {
    done();
    arena.close();
  }
});

test('a reply arriving in pieces is reassembled; its fd belongs to it', async () => {
  const efd = eventfdCreate();
  const { client, fake, done } = pair((m, f) => {
    if (m.request !== 31) return;
    const whole = new Uint8Array(12 + 24);
    const dv = new DataView(whole.buffer);
    dv.setUint32(0, 31, true);
    dv.setUint32(4, 5, true);
    dv.setUint32(8, 24, true);
    dv.setBigUint64(12, 8192n, true);
    // header split mid-way, fd on the first piece, the payload later
    f.sendRawPiece(whole.subarray(0, 5), [efd]);
    // Chained: two timers of different durations may fire out of order when the loop runs late
    // (a 20 ms list left by an earlier test expired first: piece 3 arrived before piece 2 once
    // under two busy loops, and the header read size 0 from it).
    setTimeout(() => {
      f.sendRawPiece(whole.subarray(5, 20));
      setTimeout(() => f.sendRawPiece(whole.subarray(20)), 10);
    }, 10);
  });
  try {
    const info = await client.getInflightFd(2, 64);
    assert.equal(info.mmapSize, 8192n);
    assert.ok(info.fd >= 0);
    eventfdSignal(info.fd);
    assert.equal(eventfdDrain(efd), 1);
    closeFd(info.fd);
  } finally {
    done();
    closeFd(efd);
  }
});
