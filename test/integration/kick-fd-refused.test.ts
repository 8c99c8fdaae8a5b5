// A kick fd the reactor's epoll cannot watch (a memfd: EPERM) must fail that ENABLE and nothing
// else: the ring stays stopped, a proper KICK starts it, and the disconnect leaves the daemon up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { VhostUserClient } from '../../src/frontend/vhost-user-client.ts';
import { DriverSplitQueue } from '../../src/frontend/driver-split-queue.ts';
import { BufferList } from '../../src/frontend/driver-queue.ts';
import * as P from '../../src/frontend/vhost-user-protocol.ts';
import { memfdCreate } from '../../src/sys/memory.ts';
import { closeFd } from '../../src/sys/fd.ts';

let d: Daemon;

before(async () => {
  d = await startDaemon();
  await d.call('bdev_malloc_create', { name: 'm0', num_blocks: 4096, block_size: 512 });
  await d.call('vhost_create_blk_controller', { ctrlr: 'blk0', dev_name: 'm0' });
});

after(async () => {
  assert.equal(await d.stop(), 0, `daemon exit; stderr: ${d.stderr.join('')}`);
});

interface Session {
  c: VhostUserClient;
  arena: GuestMemoryArena;
  q: DriverSplitQueue;
  close(): void;
}

/** Negotiates and sets up ring 0 up to (not including) its KICK. */
async function setUp(): Promise<Session> {
  const arena = new GuestMemoryArena();
  const q = new DriverSplitQueue(arena, { size: 64, regionIndex: 0, indirectMax: 8 });
  const c = await VhostUserClient.connect(d.socket('blk0'), { needReply: 'always' });
  const s = { c, arena, q, close: () => { c.close(); q.close(); arena.close(); } };
  try {
    const feats = await c.getFeatures();
    const pf = await c.getProtocolFeatures();
    await c.setProtocolFeatures(pf & P.bit(P.VHOST_USER_PROTOCOL_F_REPLY_ACK));
    await c.setOwner();
    await c.setFeatures(feats & (P.bit(P.VIRTIO_F_VERSION_1) | P.bit(P.VHOST_USER_F_PROTOCOL_FEATURES)));
    await c.setMemTable(arena.regions);
    await c.setVringNum(0, q.size);
    await c.setVringBase(0, 0);
    await c.setVringAddr({ index: 0, flags: 0, descUserAddr: arena.gpaToUser(q.descGpa), usedUserAddr: arena.gpaToUser(q.deviceAreaGpa), availUserAddr: arena.gpaToUser(q.driverAreaGpa), logGuestAddr: 0 });
    return s;
  } catch (e) {
    s.close();
    throw e;
  }
}

/** Posts a 4 KiB virtio-blk READ of sector 0 and waits for its used entry. */
async function readCompletes(s: Session): Promise<void> {
  const hdr = s.arena.alloc(16, 16);
  s.arena.bytesAt(hdr, 16).fill(0);
  const out = new BufferList(1);
  out.push(hdr, 16);
  const inb = new BufferList(2);
  inb.push(s.arena.alloc(4096, 4096), 4096);
  const status = s.arena.allocFilled(1, 0xff, 16);
  inb.push(status, 1);
  s.q.add(out, inb, 1);
  s.q.kick();
  const t0 = Date.now();
  while (s.q.pollUsed() === 0) {
    assert.ok(Date.now() - t0 < 5000, 'READ not completed within 5 s');
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.equal(s.arena.bytesAt(status, 1)[0], 0, 'virtio-blk status OK');
}

test('a kick fd epoll refuses fails ENABLE only: a good KICK starts the ring, the disconnect leaves the daemon up', async () => {
  const s = await setUp();
  try {
    const notPollable = memfdCreate('not-an-eventfd', 4096);
    try {
      await s.c.setVringKick(0, notPollable);
    } finally {
      closeFd(notPollable);
    }
    await s.c.setVringCall(0, s.q.callFd);
    await assert.rejects(s.c.setVringEnable(0, true), /failure/);
    // Before the fix the reactor kept the half-started ring: this ENABLE got RING_RUNNING.
    await s.c.setVringKick(0, s.q.kickFd);
    await s.c.setVringEnable(0, true);
    await readCompletes(s);
  } finally {
    s.close();
  }
  // Before the fix the half-started ring was polled after the disconnect unmapped its memory: SIGSEGV.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(d.proc.signalCode, null, `daemon killed by ${d.proc.signalCode}`);
  const again = await setUp();
  try {
    await again.c.setVringKick(0, again.q.kickFd);
    await again.c.setVringCall(0, again.q.callFd);
    await again.c.setVringEnable(0, true);
    await readCompletes(again);
  } finally {
    again.close();
  }
  assert.ok(Array.isArray(await d.call('vhost_get_controllers')));
});
