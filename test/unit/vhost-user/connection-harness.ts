// Shared set-up for the connection tests: a connection over socketPair() with a recording device,
// and QEMU 10.0's connect and start sequences (reference/vhost-user.md).
import assert from 'node:assert/strict';
import { componentLogger } from '../../../src/log/logger.ts';
import { socketPair } from '../../../src/sys/unix-socket.ts';
import { closeFd, fdSize } from '../../../src/sys/fd.ts';
import { inflightQueueBytes } from '../../../src/virtio/split-inflight.ts';
import { eventfdCreate } from '../../../src/sys/eventfd.ts';
import { memfdCreate } from '../../../src/sys/memory.ts';
import { VhostUserConnection } from '../../../src/vhost-user/connection.ts';
import * as M from '../../../src/vhost-user/message.ts';
import * as T from '../../../src/vhost-user/message-types.ts';
import type { VringSetup } from '../../../src/vhost-user/device.ts';
import { RecordingDevice } from './recording-device.ts';
import { TestFrontEnd, hex, openFdCount, state, u64, until } from './test-frontend.ts';

export const PROTOCOL = 1n << 30n;

export interface Harness {
  device: RecordingDevice;
  conn: VhostUserConnection;
  fe: TestFrontEnd;
  baseline: number;
  closedReason: () => string | null;
  /** fds the test keeps (its copies of eventfds/memfds), closed by finish(). */
  keep: number[];
  finish(): Promise<void>;
}

const live = new Set<VhostUserConnection>();

/** Closes connections a failed test left open (a watched socket would keep the process alive). */
export async function closeLeftovers(): Promise<void> {
  for (const c of live) await c.close('test ended');
}

export function harness(device = new RecordingDevice()): Harness {
  const baseline = openFdCount();
  const [a, b] = socketPair();
  let reason: string | null = null;
  const conn = new VhostUserConnection(a, device, componentLogger('vhost-user-test'), (r) => {
    reason = r;
  });
  conn.start();
  live.add(conn);
  const fe = new TestFrontEnd(b);
  const keep: number[] = [];
  return {
    device,
    conn,
    fe,
    baseline,
    closedReason: () => reason,
    keep,
    async finish() {
      fe.close();
      await until(() => reason !== null, 'connection teardown');
      live.delete(conn);
      for (const f of keep) closeFd(f);
      assert.equal(openFdCount(), baseline, 'every fd is closed after the disconnect');
    },
  };
}

export function eventfd(h: Harness): number {
  const fd = eventfdCreate();
  h.keep.push(fd);
  return fd;
}

export function memfd(h: Harness, size: number): number {
  const fd = memfdCreate('guest-ram', size);
  h.keep.push(fd);
  return fd;
}

export const REGION0 = { guestPhysAddr: 0, size: 0x10000, userAddr: 0x7f0000000000, mmapOffset: 0 };
export const REGION1 = { guestPhysAddr: 0x100000, size: 0x20000, userAddr: 0x7f0000100000, mmapOffset: 0 };

export function ringAddr(index: number): M.VringAddr {
  const base = 0x7f0000000000 + index * 0x4000;
  return { index, flags: 0, descUserAddr: base + 0x1000, availUserAddr: base + 0x2000, usedUserAddr: base + 0x3000, logGuestAddr: index * 0x4000 + 0x3000 };
}

/** QEMU 10.0's connect sequence (reference/vhost-user.md); returns the test's call eventfds. */
export async function qemuConnect(h: Harness): Promise<number[]> {
  const { fe, device } = h;
  assert.equal(await (fe.send(T.VHOST_USER_GET_FEATURES), fe.replyU64(T.VHOST_USER_GET_FEATURES)), device.features | PROTOCOL);
  fe.send(T.VHOST_USER_GET_PROTOCOL_FEATURES);
  const offered = await fe.replyU64(T.VHOST_USER_GET_PROTOCOL_FEATURES);
  assert.equal(offered, T.IMPLEMENTED_PROTOCOL_FEATURES);
  fe.send(T.VHOST_USER_SET_PROTOCOL_FEATURES, u64(offered));
  fe.send(T.VHOST_USER_GET_QUEUE_NUM);
  assert.equal(await fe.replyU64(T.VHOST_USER_GET_QUEUE_NUM), 4n);
  fe.send(T.VHOST_USER_GET_MAX_MEM_SLOTS);
  assert.equal(await fe.replyU64(T.VHOST_USER_GET_MAX_MEM_SLOTS), 509n);
  const [backendOurs, backendTheirs] = socketPair();
  h.keep.push(backendOurs);
  assert.equal(await fe.call(T.VHOST_USER_SET_BACKEND_REQ_FD, new Uint8Array(0), [backendTheirs]), 0n);
  closeFd(backendTheirs);
  fe.send(T.VHOST_USER_SET_OWNER);
  fe.send(T.VHOST_USER_GET_FEATURES);
  await fe.replyU64(T.VHOST_USER_GET_FEATURES);
  const calls: number[] = [];
  for (let q = 0; q < 4; q++) {
    const call = eventfd(h);
    calls.push(call);
    fe.send(T.VHOST_USER_SET_VRING_CALL, u64(q), { fds: [call] });
  }
  for (let q = 0; q < 4; q++) {
    const err = eventfdCreate();
    fe.send(T.VHOST_USER_SET_VRING_ERR, u64(q), { fds: [err] });
    closeFd(err);
  }
  fe.send(T.VHOST_USER_GET_CONFIG, M.encodeConfig(0, 8, 0, new Uint8Array(0)));
  assert.deepEqual((await fe.reply(T.VHOST_USER_GET_CONFIG)).payload, hex('00000000 08000000 00000000 0102030405060708'));
  return calls;
}

/** QEMU 10.0's start sequence with queues 2 and 3 initialised; returns the test's kick eventfds. */
export async function qemuStart(h: Harness, bases: [number, number] = [0, 5], addMemory = true): Promise<number[]> {
  const { fe, device } = h;
  const features = device.features | PROTOCOL;
  assert.equal(await fe.call(T.VHOST_USER_SET_FEATURES, u64(features)), 0n);
  fe.send(T.VHOST_USER_GET_INFLIGHT_FD, M.encodeInflight({ mmapSize: 0, mmapOffset: 0, numQueues: 4, queueSize: 128 }));
  const inflight = await fe.reply(T.VHOST_USER_GET_INFLIGHT_FD);
  assert.equal(inflight.size, 24);
  assert.equal(inflight.fds.length, 1, 'a zeroed region for the inflight records comes with the reply');
  const region = M.decodeInflight(inflight.payload);
  assert.deepEqual(region, { mmapSize: 4 * inflightQueueBytes(128), mmapOffset: 0, numQueues: 4, queueSize: 128 });
  assert.equal(fdSize(inflight.fds[0]), region.mmapSize);
  // QEMU keeps the region and hands it back at every start (and to a restarted back-end).
  assert.equal(await fe.call(T.VHOST_USER_SET_INFLIGHT_FD, M.encodeInflight(region), [inflight.fds[0]]), 0n);
  closeFd(inflight.fds[0]);
  assert.equal(await fe.call(T.VHOST_USER_SET_FEATURES, u64(features)), 0n);
  if (addMemory) {
    assert.equal(await fe.call(T.VHOST_USER_ADD_MEM_REG, M.encodeMemRegionMsg(REGION0), [memfd(h, 0x10000)]), 0n);
    assert.equal(await fe.call(T.VHOST_USER_ADD_MEM_REG, M.encodeMemRegionMsg(REGION1), [memfd(h, 0x20000)]), 0n);
  }
  const kicks: number[] = [];
  for (const q of [2, 3]) {
    fe.send(T.VHOST_USER_SET_VRING_NUM, state(q, 128));
    fe.send(T.VHOST_USER_SET_VRING_BASE, state(q, bases[q - 2]));
    fe.send(T.VHOST_USER_SET_VRING_ADDR, M.encodeVringAddr(ringAddr(q)));
    const kick = eventfd(h);
    kicks.push(kick);
    fe.send(T.VHOST_USER_SET_VRING_KICK, u64(q), { fds: [kick] });
  }
  // Rings are started but not enabled yet (PROTOCOL_FEATURES negotiated): nothing runs.
  fe.send(T.VHOST_USER_GET_FEATURES);
  await fe.replyU64(T.VHOST_USER_GET_FEATURES);
  assert.deepEqual(h.device.ops().filter((o) => o.startsWith('startRing')), []);
  for (let q = 0; q < 4; q++) assert.equal(await fe.call(T.VHOST_USER_SET_VRING_ENABLE, state(q, 1)), 0n);
  return kicks;
}

export function startSetups(d: RecordingDevice): VringSetup[] {
  return d.calls.flatMap((c) => (c.op === 'startRing' ? [c.setup] : []));
}

